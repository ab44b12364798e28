/// Where something came from: a file (or `<stdin>`), a 1-based line and column.
public struct SourceLocation: Hashable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    /// For operations made by passes and builders rather than read from text.
    public static let unknown = SourceLocation(file: "<unknown>", line: 0, column: 0)

    public var isKnown: Bool { line > 0 }
    public var description: String { "\(file):\(line):\(column)" }
}

public enum Severity: String, Sendable {
    case error, warning, note
}

/// A message tied to a place in the input. Thrown by the parser, the verifier and passes.
public struct Diagnostic: Error, Hashable, Sendable, CustomStringConvertible {
    public var severity: Severity
    public var location: SourceLocation
    public var message: String
    /// Further messages, for example the place a value was first defined.
    public var notes: [Diagnostic]

    public init(_ severity: Severity = .error, at location: SourceLocation, _ message: String,
                notes: [Diagnostic] = []) {
        self.severity = severity
        self.location = location
        self.message = message
        self.notes = notes
    }

    /// `file:line:col: error: message`, or `file: error: message` when the place is unknown.
    public var description: String {
        let place = location.isKnown ? location.description : location.file
        return "\(place): \(severity.rawValue): \(message)"
    }

    /// The one-line form followed by the offending source line and a caret under the column,
    /// then the notes.
    public func rendered(source: SourceText?) -> String {
        var out = description
        if let source, location.isKnown, let line = source.displayLine(location.line) {
            out += "\n" + line + "\n" + caretLine(for: line, column: location.column)
        }
        for note in notes { out += "\n" + note.rendered(source: source) }
        return out
    }

    private func caretLine(for line: String, column: Int) -> String {
        // Keep tabs so the caret lines up under the same character. Columns count bytes, so pad
        // one space per character of the line's first column - 1 bytes.
        var pad = ""
        for ch in String(decoding: line.utf8.prefix(max(0, column - 1)), as: UTF8.self) {
            pad.append(ch == "\t" ? "\t" : " ")
        }
        return pad + "^"
    }
}

/// Several diagnostics at once (the verifier reports every problem it finds).
public struct DiagnosticList: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]
    public init(_ diagnostics: [Diagnostic]) { self.diagnostics = diagnostics }
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// The text of an input, kept so diagnostics can show the offending line.
public struct SourceText: Sendable {
    public let name: String
    public let bytes: [UInt8]
    /// Line number of the first line (for a chunk split out of a larger file).
    public let firstLine: Int
    private let lineStarts: [Int]

    public init(name: String, bytes: [UInt8], firstLine: Int = 1) {
        self.name = name
        self.bytes = bytes
        self.firstLine = firstLine
        var starts = [0]
        for (i, b) in bytes.enumerated() where b == UInt8(ascii: "\n") { starts.append(i + 1) }
        lineStarts = starts
    }

    public init(name: String, text: String, firstLine: Int = 1) {
        self.init(name: name, bytes: Array(text.utf8), firstLine: firstLine)
    }

    /// Line `number` as diagnostics show it: control characters other than tabs, which would
    /// garble a terminal, become `?`.
    public func displayLine(_ number: Int) -> String? {
        guard let raw = line(number) else { return nil }
        return String(String.UnicodeScalarView(raw.unicodeScalars.map {
            ($0.value < 0x20 && $0 != "\t") || $0.value == 0x7F ? "?" : $0
        }))
    }

    /// The text of line `number` (numbered as in the original file), without its newline.
    public func line(_ number: Int) -> String? {
        let index = number - firstLine
        guard index >= 0, index < lineStarts.count else { return nil }
        let start = lineStarts[index]
        var end = index + 1 < lineStarts.count ? lineStarts[index + 1] - 1 : bytes.count
        if end > start, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        return String(decoding: bytes[start..<max(start, end)], as: UTF8.self)
    }
}

extension SourceText {
    /// The line and column (1-based, in bytes) of a byte offset.
    public func location(ofOffset offset: Int) -> SourceLocation {
        var low = 0, high = lineStarts.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if lineStarts[mid] <= offset { low = mid } else { high = mid - 1 }
        }
        return SourceLocation(file: name, line: low + firstLine, column: offset - lineStarts[low] + 1)
    }
}
