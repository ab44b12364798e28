import Foundation

/// Where the tools write: stdout for results, stderr for diagnostics and reports. Tests swap in
/// buffers to read what a command printed.
public final class Console: @unchecked Sendable {
    public var writeOut: (String) -> Void
    public var writeErr: (String) -> Void

    public init(out: @escaping (String) -> Void, err: @escaping (String) -> Void) {
        writeOut = out
        writeErr = err
    }

    public static let standard = Console(
        out: { FileHandle.standardOutput.write(Data($0.utf8)) },
        err: { FileHandle.standardError.write(Data($0.utf8)) })

    /// A console that keeps what is written, for tests.
    public static func capturing() -> (Console, () -> String, () -> String) {
        let box = CaptureBox()
        let console = Console(out: { box.out += $0 }, err: { box.err += $0 })
        return (console, { box.out }, { box.err })
    }

    private final class CaptureBox: @unchecked Sendable {
        var out = ""
        var err = ""
    }
}

/// An input file's name and bytes: a path, or `-` for standard input.
public struct InputFile {
    public var name: String
    public var bytes: [UInt8]
    /// The directory relative paths inside the file (a weights file) are taken from.
    public var directory: String

    public static func read(_ path: String) throws -> InputFile {
        if path == "-" {
            let data = FileHandle.standardInput.readDataToEndOfFile()
            return InputFile(name: "<stdin>", bytes: [UInt8](data), directory: FileManager.default.currentDirectoryPath)
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ToolError("cannot read '\(path)': no such file")
        }
        guard !isDirectory.boolValue else { throw ToolError("cannot read '\(path)': it is a directory") }
        guard let data = FileManager.default.contents(atPath: path) else { throw ToolError("cannot read '\(path)'") }
        return InputFile(name: path, bytes: [UInt8](data), directory: (path as NSString).deletingLastPathComponent)
    }

    /// The input as one source, or split at lines that start with `// -----`; line numbers
    /// stay those of the whole file.
    public func sources(split: Bool) -> [SourceText] {
        guard split else { return [SourceText(name: name, bytes: bytes)] }
        var chunks: [SourceText] = []
        var chunkStart = 0, chunkLine = 1, line = 1, lineStart = 0
        let marker = Array("// -----".utf8)
        var i = 0
        while i <= bytes.count {
            if i == bytes.count || bytes[i] == 10 {
                let isMarker = i - lineStart >= marker.count && Array(bytes[lineStart..<(lineStart + marker.count)]) == marker
                if isMarker {
                    chunks.append(SourceText(name: name, bytes: Array(bytes[chunkStart..<lineStart]), firstLine: chunkLine))
                    chunkStart = min(i + 1, bytes.count)
                    chunkLine = line + 1
                }
                line += 1
                lineStart = i + 1
            }
            i += 1
        }
        chunks.append(SourceText(name: name, bytes: Array(bytes[chunkStart..<bytes.count]), firstLine: chunkLine))
        return chunks
    }
}

/// An error of a tool's own (a missing file, a bad flag), printed as `tool: error: message`.
public struct ToolError: Error, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

import NMIR

/// How a tool prints an error: diagnostics with their place, others as `nmc: error: …`.
public func errorText(_ error: Error) -> String {
    switch error {
    case let d as Diagnostic: return d.rendered(source: nil)
    case let list as DiagnosticList: return list.diagnostics.map { $0.rendered(source: nil) }.joined(separator: "\n")
    case let e as ToolError: return "nmc: error: \(e.message)"
    default:
        let text = "\(error)"
        return text.contains(": error: ") ? text : "nmc: error: \(text)"
    }
}
