#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Testing
@testable import NMIR

@Suite struct SafetensorsTests {
    /// A fresh directory for one test's files.
    static func temporaryDirectory(_ tag: String) throws -> String {
        let base = FileManager.default.temporaryDirectory.path
        let dir = base + "/nmir-safetensors-\(tag)-\(ProcessIdentity.current)-\(UInt64.random(in: 0..<UInt64.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A file made of a header length, the given JSON header and `data`.
    static func file(header: String, data: [UInt8], headerLength: UInt64? = nil) -> [UInt8] {
        let h = Array(header.utf8)
        let n = headerLength ?? UInt64(h.count)
        return (0..<8).map { UInt8((n >> (8 * UInt64($0))) & 0xff) } + h + data
    }

    /// The reason `Safetensors.parse` gives for rejecting `bytes`.
    static func rejection(_ bytes: [UInt8], name: String = "bad.safetensors") -> String? {
        do {
            _ = try Safetensors.parse(bytes: bytes, name: name)
            return nil
        } catch let e as Safetensors.FormatError {
            #expect(e.file == name)
            #expect(e.description == "\(name): error: \(e.reason)")
            return e.reason
        } catch {
            Issue.record("unexpected \(error)")
            return nil
        }
    }

    static let f32Bytes: [UInt8] = ([1.0, -2.5, 0.0, 3.25, 1e-05, -0.0] as [Float]).flatMap { v -> [UInt8] in
        (0..<4).map { UInt8((v.bitPattern >> (8 * UInt32($0))) & 0xff) }
    }

    @Test func writeThenReadRoundTrips() throws {
        let dir = try Self.temporaryDirectory("rt")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/w.safetensors"
        let tensors: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])] = [
            ("blk.0.attn_q.weight", "F32", [2, 3], Self.f32Bytes),
            ("ids", "I8", [3], [0x01, 0xFF, 0x7F]),
            ("scale", "F16", [], [0x00, 0x3C]),
            ("empty", "BF16", [0, 4], []),
            ("index \"q\"", "I64", [1], [1, 0, 0, 0, 0, 0, 0, 0x80]),
            ("packed", "U8", [5], [0xDE, 0xAD, 0xBE, 0xEF, 0x42]),
            ("ints", "I32", [2], [1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]),
        ]
        let metadata = ["format": "pt", "nm": "2:4", "quote\"key": "line\nbreak\\ é"]
        try Safetensors.write(path: path, tensors: tensors, metadata: metadata)

        // The temporary sibling was renamed into place.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["w.safetensors"])
        let contents = try Safetensors.read(path: path)
        #expect(contents.metadata == metadata)
        #expect(contents.dataStart % 8 == 0)
        // Tensors come back in file order, back to back with no gaps (as the Hugging Face reader requires).
        #expect(contents.tensors.map(\.name) == ["blk.0.attn_q.weight", "ids", "scale", "empty", "index \"q\"", "packed", "ints"])
        #expect(contents.tensors.map(\.range) == [0..<24, 24..<27, 27..<29, 29..<29, 29..<37, 37..<42, 42..<50])
        #expect(contents.fileBytes.count == contents.dataStart + 50)
        for t in tensors {
            let info = try #require(contents.info(t.name))
            #expect(info.dtype == t.dtype && info.shape == t.shape, "\(t.name)")
            #expect(Array(contents.bytes(of: info)) == t.bytes, "\(t.name)")
        }
        #expect(contents.info("missing") == nil)
        // Bytes read back as the same numbers.
        let q = try #require(contents.info("blk.0.attn_q.weight"))
        let raw = Array(contents.bytes(of: q))
        let floats = (0..<6).map { i in Float(bitPattern: (0..<4).reduce(UInt32(0)) { $0 | UInt32(raw[4 * i + $1]) << (8 * UInt32($1)) }) }
        #expect(floats == [1.0, -2.5, 0.0, 3.25, 1e-05, -0.0])

        // Writing again replaces the file; no metadata means no __metadata__ entry.
        try Safetensors.write(path: path, tensors: [("only", "F32", [1], [0, 0, 0x80, 0x3F])])
        let again = try Safetensors.read(path: path)
        #expect(again.metadata.isEmpty)
        #expect(again.tensors == [Safetensors.TensorInfo(name: "only", dtype: "F32", shape: [1], range: 0..<4)])
        let header = String(decoding: again.fileBytes[8..<again.dataStart], as: UTF8.self)
        #expect(header.hasPrefix("{\"only\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"))
        #expect(!header.contains("__metadata__"))
        #expect(again.fileBytes.count == again.dataStart + 4)
    }

    @Test func dtypeNamesOfNMIRTypes() {
        let expected: [(DType, String)] = [(.f32, "F32"), (.f16, "F16"), (.bf16, "BF16"), (.i32, "I32"), (.i8, "I8"), (.i4, "U8"), (.index, "I64")]
        for (dtype, name) in expected {
            #expect(Safetensors.dtypeName(for: .tensor(TensorType([2], dtype))) == name)
        }
        #expect(Safetensors.dtypeName(for: .packed(PackedWeightType(rows: 2, columns: 8, group: 4))) == "U8")
    }

    @Test func rejectsTruncatedFilesAndBadHeaders() throws {
        #expect(Self.rejection([1, 0, 0]) == "file is 3 bytes, shorter than the 8-byte header length")
        #expect(Self.rejection([]) == "file is 0 bytes, shorter than the 8-byte header length")
        let header = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}"
        // Header length past the end of the file (including one that overflows when added).
        #expect(Self.rejection(Self.file(header: header, data: [], headerLength: 1000))
                == "header length 1000 runs past the end of the file (\(8 + header.utf8.count) bytes)")
        #expect(Self.rejection(Self.file(header: "{}", data: [], headerLength: UInt64.max))
                == "header length 18446744073709551615 runs past the end of the file (10 bytes)")
        // Offsets outside the data section.
        #expect(Self.rejection(Self.file(header: header, data: [0, 0, 0, 0]))
                == "tensor 'w': data_offsets [0, 8] outside the 4-byte data section")
        #expect(Self.rejection(Self.file(header: "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", data: Array(repeating: 0, count: 8)))
                == "tensor 'w': data_offsets [8, 4] outside the 8-byte data section")
        #expect(Self.rejection(Self.file(header: "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", data: []))
                == "tensor 'w': data_offsets [-4, 0] outside the 0-byte data section")
        #expect(Self.rejection(Self.file(header: "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", data: []))
                == "tensor 'w': data_offsets [0] outside the 0-byte data section")
        // Shape and size disagree.
        #expect(Self.rejection(Self.file(header: "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,16]}}", data: Array(repeating: 0, count: 16)))
                == "tensor 'w': 16 bytes do not hold shape [2, 3] of F32")
        #expect(Self.rejection(Self.file(header: "{\"w\":{\"dtype\":\"I8\",\"shape\":[-2,-3],\"data_offsets\":[0,6]}}", data: Array(repeating: 0, count: 8)))
                == "tensor 'w': bad shape [-2, -3]")
        #expect(Self.rejection(Self.file(header: "{\"w\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,0]}}", data: []))
                == "tensor 'w': bad shape [4611686018427387904, 4]")
        // Unknown dtypes, entries that are not tensors, JSON that is not a header.
        #expect(Self.rejection(Self.file(header: "{\"w\":{\"dtype\":\"F8\",\"shape\":[1],\"data_offsets\":[0,1]}}", data: [0]))
                == "tensor 'w': unknown dtype 'F8'")
        #expect(Self.rejection(Self.file(header: "{\"x\":{\"a\":\"b\"}}", data: [])) == "entry 'x' is not a tensor")
        let notJSON = try #require(Self.rejection(Self.file(header: "{\"w\": [", data: [])))
        #expect(notJSON.hasPrefix("header is not valid safetensors JSON ("))
        let missingKey = try #require(Self.rejection(Self.file(header: "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", data: [])))
        #expect(missingKey.hasPrefix("header is not valid safetensors JSON ("))
        // An empty header is a file with no tensors.
        let empty = try Safetensors.parse(bytes: Self.file(header: "{}", data: []), name: "e")
        #expect(empty.tensors.isEmpty && empty.metadata.isEmpty && empty.dataStart == 10)
    }

    @Test func rejectsAWrittenFileCutShort() throws {
        let dir = try Self.temporaryDirectory("cut")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/w.safetensors"
        try Safetensors.write(path: path, tensors: [("w", "F32", [6], Self.f32Bytes)], metadata: ["k": "v"])
        let whole = try Safetensors.read(path: path).fileBytes
        let dataStart = try Safetensors.read(path: path).dataStart
        #expect(whole.count == dataStart + 24)
        // Cut inside the data …
        #expect(Self.rejection(Array(whole.prefix(dataStart + 10)), name: path)
                == "tensor 'w': data_offsets [0, 24] outside the 10-byte data section")
        // … inside the header …
        #expect(Self.rejection(Array(whole.prefix(20)), name: path)
                == "header length \(dataStart - 8) runs past the end of the file (20 bytes)")
        // … and inside the header length.
        #expect(Self.rejection(Array(whole.prefix(7)), name: path) == "file is 7 bytes, shorter than the 8-byte header length")
        // A missing file.
        do {
            _ = try Safetensors.read(path: dir + "/missing.safetensors")
            Issue.record("expected an error")
        } catch let e as Safetensors.FormatError {
            #expect(e.description == "\(dir)/missing.safetensors: error: no such file")
        }
    }
}
