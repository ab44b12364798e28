import Foundation
import Testing
@testable import NMFrontend
import NMRuntime

/// Writes small GGUF files for tests, including broken ones: metadata values are raw
/// (type tag, payload) pairs so that a test can write lengths and tags that no real writer would.
struct GGUFTestWriter {
    struct TensorEntry {
        var name: String
        var dims: [UInt64]
        var type: UInt32
        var data: [UInt8]
        /// The offset to write instead of the computed one.
        var offsetOverride: UInt64?
    }

    var version: UInt32 = 3
    var magic: [UInt8] = Array("GGUF".utf8)
    var metadata: [(key: String, type: UInt32, payload: [UInt8])] = []
    var tensors: [TensorEntry] = []
    /// The alignment used for padding (write `general.alignment` too when it is not 32).
    var alignment = 32
    var tensorCountOverride: UInt64?
    var metadataCountOverride: UInt64?

    mutating func add(_ key: String, _ value: GGUFValue) {
        metadata.append((key, value.type.rawValue, Self.encode(value)))
    }

    mutating func addTensor(_ name: String, dims: [Int], type: GGMLType, data: [UInt8]) {
        tensors.append(TensorEntry(name: name, dims: dims.map(UInt64.init), type: type.rawValue, data: data))
    }

    /// The file's bytes; the last tensor's data ends the file (no padding after it), so every
    /// shorter prefix of a file with tensors is missing something.
    func bytes() -> [UInt8] {
        var out = magic
        Self.put(version, &out)
        Self.put(tensorCountOverride ?? UInt64(tensors.count), &out)
        Self.put(metadataCountOverride ?? UInt64(metadata.count), &out)
        for m in metadata {
            Self.putString(m.key, &out)
            Self.put(m.type, &out)
            out += m.payload
        }
        var offset = 0
        var offsets: [Int] = []
        for t in tensors {
            offset = (offset + alignment - 1) / alignment * alignment
            offsets.append(offset)
            offset += t.data.count
        }
        for (t, o) in zip(tensors, offsets) {
            Self.putString(t.name, &out)
            Self.put(UInt32(t.dims.count), &out)
            for d in t.dims { Self.put(d, &out) }
            Self.put(t.type, &out)
            Self.put(t.offsetOverride ?? UInt64(o), &out)
        }
        guard !tensors.isEmpty else { return out }
        while out.count % alignment != 0 { out.append(0) }
        let dataStart = out.count
        for (t, o) in zip(tensors, offsets) {
            out += [UInt8](repeating: 0, count: dataStart + o - out.count)
            out += t.data
        }
        return out
    }

    // MARK: Encoding

    static func put<T: FixedWidthInteger>(_ v: T, _ out: inout [UInt8]) {
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }

    static func putString(_ s: String, _ out: inout [UInt8]) {
        put(UInt64(s.utf8.count), &out)
        out += Array(s.utf8)
    }

    static func encode(_ v: GGUFValue) -> [UInt8] {
        var out: [UInt8] = []
        switch v {
        case .uint8(let x): put(x, &out)
        case .int8(let x): put(x, &out)
        case .uint16(let x): put(x, &out)
        case .int16(let x): put(x, &out)
        case .uint32(let x): put(x, &out)
        case .int32(let x): put(x, &out)
        case .float32(let x): put(x.bitPattern, &out)
        case .bool(let x): out.append(x ? 1 : 0)
        case .string(let x): putString(x, &out)
        case .array(let a): out = encode(a)
        case .uint64(let x): put(x, &out)
        case .int64(let x): put(x, &out)
        case .float64(let x): put(x.bitPattern, &out)
        }
        return out
    }

    static func encode(_ a: GGUFArray) -> [UInt8] {
        var out: [UInt8] = []
        put(a.elementType.rawValue, &out)
        put(UInt64(a.count), &out)
        for e in a.values {
            out += encode(e)
        }
        return out
    }
}

/// Files, folders and random numbers for the frontend tests.
enum TestSupport {
    /// A fresh directory for one test's files.
    static func temporaryDirectory(_ tag: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.path
            + "/nmfrontend-\(tag)-\(getpid())-\(UInt64.random(in: 0..<UInt64.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// The package root, found from this file's path (Tests/NMFrontendTests/…).
    static func repositoryRoot(_ file: String = #filePath) -> String {
        URL(fileURLWithPath: file).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    /// The reason of the GGUFError that opening `path` throws, checking that the error names the
    /// file; nil (and a recorded issue) when it opens or throws something else.
    static func ggufRejection(_ path: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> String? {
        do {
            _ = try GGUFFile.open(path: path)
            Issue.record("\(path) opened, expected an error", sourceLocation: sourceLocation)
            return nil
        } catch let e as GGUFError {
            #expect(e.file == path, sourceLocation: sourceLocation)
            #expect(e.description == "\(path): error: \(e.reason)", sourceLocation: sourceLocation)
            return e.reason
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }

    /// The raw float32 values in a file that Python wrote.
    static func floats(inFile path: String) throws -> [Float] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return data.withUnsafeBytes { raw in
            (0..<(raw.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        }
    }

    /// Whether two float arrays are bit-identical; otherwise the first difference.
    static func firstDifference(_ a: [Float], _ b: [Float]) -> String? {
        guard a.count == b.count else { return "\(a.count) values vs \(b.count)" }
        if a.isEmpty { return nil }
        let same = a.withUnsafeBytes { x in
            b.withUnsafeBytes { y in
                guard let p = x.baseAddress, let q = y.baseAddress else { return false }
                return memcmp(p, q, x.count) == 0
            }
        }
        if same { return nil }
        for i in a.indices where a[i].bitPattern != b[i].bitPattern {
            return "element \(i): \(a[i]) (0x\(String(a[i].bitPattern, radix: 16))) vs \(b[i]) (0x\(String(b[i].bitPattern, radix: 16)))"
        }
        return nil
    }
}

