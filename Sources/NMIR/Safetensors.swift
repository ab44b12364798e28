#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The safetensors format (an 8-byte little-endian header length, a JSON header naming each
/// tensor's dtype, shape and byte range, then the data). NMIR's weight store is kept in it.
public enum Safetensors {
    public struct TensorInfo: Sendable, Equatable {
        public var name: String
        /// The format's dtype name: F32, F16, BF16, I32, I8, U8, I64 …
        public var dtype: String
        public var shape: [Int]
        /// Byte range inside the data section.
        public var range: Range<Int>
    }

    public struct Contents: Sendable {
        public var tensors: [TensorInfo]
        public var metadata: [String: String]
        /// The whole file; tensor ranges are relative to `dataStart`.
        public var fileBytes: [UInt8]
        public var dataStart: Int

        public func info(_ name: String) -> TensorInfo? { tensors.first { $0.name == name } }
        public func bytes(of tensor: TensorInfo) -> ArraySlice<UInt8> {
            fileBytes[(dataStart + tensor.range.lowerBound)..<(dataStart + tensor.range.upperBound)]
        }
    }

    public struct FormatError: Error, CustomStringConvertible, Sendable {
        public var file: String
        public var reason: String
        public init(file: String, reason: String) {
            self.file = file
            self.reason = reason
        }
        public var description: String { "\(file): error: \(reason)" }
    }

    static let elementBytes: [String: Int] = [
        "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
    ]

    /// The safetensors dtype that stores an NMIR type (packed weights are raw bytes).
    public static func dtypeName(for type: NMType) -> String {
        guard case .tensor(let t) = type else { return "U8" }
        switch t.dtype {
        case .f32: return "F32"
        case .f16: return "F16"
        case .bf16: return "BF16"
        case .i32: return "I32"
        case .i8: return "I8"
        case .i4: return "U8"
        case .index: return "I64"
        }
    }

    /// Reads and validates a file: header length within the file, well-formed JSON, known dtypes,
    /// byte ranges inside the data section and matching their shape.
    public static func read(path: String) throws -> Contents {
        // Only regular files: a device or a pipe named in a text (`weights "/dev/zero"`) must not
        // be read until memory runs out.
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else {
            throw FormatError(file: path, reason: "no such file")
        }
        guard attributes[.type] as? FileAttributeType == .typeRegular else {
            throw FormatError(file: path, reason: "not a regular file")
        }
        return try parse(bytes: readWholeFile(path), name: path)
    }

    /// The bytes of a regular file, read straight into the array (a `Data` first would cost a
    /// second copy of a weights file of hundreds of megabytes).
    static func readWholeFile(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw FormatError(file: path, reason: "cannot open file: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw FormatError(file: path, reason: "cannot stat file: \(String(cString: strerror(errno)))") }
        let size = Int(status.st_size)
        var failure: String? = nil
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            count = 0
            while count < size {
                #if canImport(Glibc)
                let n = Glibc.read(fd, buffer.baseAddress! + count, size - count)
                #else
                let n = Darwin.read(fd, buffer.baseAddress! + count, size - count)
                #endif
                if n < 0 && errno == EINTR { continue }
                if n <= 0 {
                    failure = n < 0 ? "read failed: \(String(cString: strerror(errno)))" : "the file shrank while it was read (\(count) of \(size) bytes)"
                    return
                }
                count += n
            }
        }
        if let failure { throw FormatError(file: path, reason: failure) }
        return bytes
    }

    public static func parse(bytes: [UInt8], name: String) throws -> Contents {
        let header = try bytes.withUnsafeBytes { try parseHeader(file: $0, name: name) }
        return Contents(tensors: header.tensors, metadata: header.metadata, fileBytes: bytes, dataStart: header.dataStart)
    }

    /// What the header of a file says, without the data.
    public struct Header: Sendable {
        public var tensors: [TensorInfo]
        public var metadata: [String: String]
        public var dataStart: Int
    }

    /// Validates the header of a file whose bytes are `file` (a whole file, in memory or
    /// memory-mapped; only the header is read, and only it is copied): the checks of `parse`.
    public static func parseHeader(file bytes: UnsafeRawBufferPointer, name: String) throws -> Header {
        func fail(_ reason: String) -> FormatError { FormatError(file: name, reason: reason) }
        guard bytes.count >= 8 else { throw fail("file is \(bytes.count) bytes, shorter than the 8-byte header length") }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw fail("header length \(headerLength) runs past the end of the file (\(bytes.count) bytes)")
        }
        let dataStart = 8 + Int(headerLength)
        let json = Data(bytes[8..<dataStart])
        let raw: [String: HeaderValue]
        do {
            raw = try JSONDecoder().decode([String: HeaderValue].self, from: json)
        } catch {
            throw fail("header is not valid safetensors JSON (\(error))")
        }
        var tensors: [TensorInfo] = []
        var metadata: [String: String] = [:]
        let dataLength = bytes.count - dataStart
        for (key, value) in raw {
            switch value {
            case .metadata(let m):
                guard key == "__metadata__" else { throw fail("entry '\(key)' is not a tensor") }
                metadata = m
            case .tensor(let dtype, let shape, let offsets):
                guard let width = elementBytes[dtype] else { throw fail("tensor '\(key)': unknown dtype '\(dtype)'") }
                guard offsets.count == 2, offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= dataLength else {
                    throw fail("tensor '\(key)': data_offsets \(offsets) outside the \(dataLength)-byte data section")
                }
                var count = 1
                for d in shape {
                    let (p, overflow) = count.multipliedReportingOverflow(by: d)
                    guard d >= 0, !overflow else { throw fail("tensor '\(key)': bad shape \(shape)") }
                    count = p
                }
                let (size, overflow) = count.multipliedReportingOverflow(by: width)
                guard !overflow, size == offsets[1] - offsets[0] else {
                    throw fail("tensor '\(key)': \(offsets[1] - offsets[0]) bytes do not hold shape \(shape) of \(dtype)")
                }
                tensors.append(TensorInfo(name: key, dtype: dtype, shape: shape, range: offsets[0]..<offsets[1]))
            }
        }
        tensors.sort { $0.range.lowerBound < $1.range.lowerBound || ($0.range.lowerBound == $1.range.lowerBound && $0.name < $1.name) }
        return Header(tensors: tensors, metadata: metadata, dataStart: dataStart)
    }

    /// Writes tensors in the given order, back to back as the format requires (the header is padded
    /// so the data starts 8-byte aligned), to a temporary sibling that is
    /// renamed over `path` once complete.
    public static func write(path: String, tensors: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])],
                             metadata: [String: String] = [:]) throws {
        var header = "{"
        var entries: [String] = []
        if !metadata.isEmpty {
            let items = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
            entries.append("\"__metadata__\":{" + items.joined(separator: ",") + "}")
        }
        var offset = 0
        var body: [UInt8] = []
        for t in tensors {
            let start = offset
            body.append(contentsOf: t.bytes)
            offset += t.bytes.count
            entries.append("\(jsonString(t.name)):{\"dtype\":\"\(t.dtype)\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(start),\(offset)]}")
        }
        header += entries.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while (8 + headerBytes.count) % 8 != 0 { headerBytes.append(UInt8(ascii: " ")) }
        var out: [UInt8] = []
        out.reserveCapacity(8 + headerBytes.count + body.count)
        let n = UInt64(headerBytes.count)
        for i in 0..<8 { out.append(UInt8((n >> (8 * UInt64(i))) & 0xff)) }
        out += headerBytes
        out += body
        try AtomicFile.write(Data(out), to: path)
    }

    private static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    private enum HeaderValue: Decodable {
        case tensor(dtype: String, shape: [Int], offsets: [Int])
        case metadata([String: String])

        private enum Keys: String, CodingKey { case dtype, shape, data_offsets }

        init(from decoder: Decoder) throws {
            if let m = try? decoder.singleValueContainer().decode([String: String].self) {
                self = .metadata(m)
                return
            }
            let c = try decoder.container(keyedBy: Keys.self)
            self = .tensor(dtype: try c.decode(String.self, forKey: .dtype),
                           shape: try c.decode([Int].self, forKey: .shape),
                           offsets: try c.decode([Int].self, forKey: .data_offsets))
        }
    }
}

/// Writes files so that a reader never sees a partial one: the data goes to a temporary
/// sibling, which is renamed over the destination when complete.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        // A destination that exists and is not a regular file (/dev/null, a pipe, a terminal) is
        // written in place: renaming over it would replace the device with a file.
        var info = stat()
        if stat(path, &info) == 0, info.st_mode & S_IFMT != S_IFREG {
            let fd = open(path, O_WRONLY)
            guard fd >= 0 else { throw Safetensors.FormatError(file: path, reason: "cannot write the file") }
            defer { close(fd) }
            let written = data.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            guard written == data.count else { throw Safetensors.FormatError(file: path, reason: "cannot write the file") }
            return
        }
        let temporary = path + ".tmp-\(ProcessIdentity.current)"
        TemporaryPaths.shared.add(temporary)
        defer { TemporaryPaths.shared.remove(temporary) }
        let url = URL(fileURLWithPath: temporary)
        do {
            try data.write(to: url)
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            let directory = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
            let reason = FileManager.default.fileExists(atPath: directory.isEmpty ? "/" : directory)
                ? "cannot write the file" : "its directory does not exist"
            throw Safetensors.FormatError(file: path, reason: reason)
        }
        guard rename(temporary, path) == 0 else {
            try? FileManager.default.removeItem(atPath: temporary)
            throw Safetensors.FormatError(file: path, reason: "cannot rename \(temporary) into place")
        }
    }

    public static func write(_ text: String, to path: String) throws {
        try write(Data(text.utf8), to: path)
    }
}

enum ProcessIdentity {
    static var current: Int32 { getpid() }
}

/// Paths of outputs still being written (temporary siblings and staging folders). An interrupted
/// tool removes them before it exits, so an interruption leaves no partial output behind.
public final class TemporaryPaths: Sendable {
    public static let shared = TemporaryPaths()
    private let paths = Mutex(Set<String>())

    public func add(_ path: String) { paths.withLock { _ = $0.insert(path) } }
    public func remove(_ path: String) { paths.withLock { _ = $0.remove(path) } }

    /// Deletes every registered path (files or folders).
    public func removeAll() {
        let all = paths.withLock { p -> Set<String> in
            defer { p = [] }
            return p
        }
        for p in all { try? FileManager.default.removeItem(atPath: p) }
    }
}
