import Foundation
import NMRuntime
import Testing
@testable import NMFrontend

@Suite struct GGUFReaderTests {
    /// One metadata value of every type, arrays of every element type, nested and empty arrays.
    static let everyValue: [(String, GGUFValue)] = [
        ("t.uint8", .uint8(250)),
        ("t.int8", .int8(-120)),
        ("t.uint16", .uint16(65000)),
        ("t.int16", .int16(-32000)),
        ("t.uint32", .uint32(4_000_000_000)),
        ("t.int32", .int32(-2_000_000_000)),
        ("t.float32", .float32(-1.5e-3)),
        ("t.bool.true", .bool(true)),
        ("t.bool.false", .bool(false)),
        ("t.string", .string("héllo, wörld ✓")),
        ("t.string.empty", .string("")),
        ("t.uint64", .uint64(18_000_000_000_000_000_000)),
        ("t.int64", .int64(-9_000_000_000_000_000_000)),
        ("t.float64", .float64(2.718281828459045)),
        ("a.uint8", .array(.uint8([0, 1, 255]))),
        ("a.int8", .array(.int8([-128, 0, 127]))),
        ("a.uint16", .array(.uint16([0, 65535]))),
        ("a.int16", .array(.int16([-32768, 32767]))),
        ("a.uint32", .array(.uint32([1, 4_294_967_295]))),
        ("a.int32", .array(.int32([-5, 0, 7]))),
        ("a.float32", .array(.float32([1.0, -0.0, .infinity, 3.25]))),
        ("a.bool", .array(.bool([true, false, true]))),
        ("a.string", .array(.string(["a", "", "<|im_start|>", "Ġthe"]))),
        ("a.uint64", .array(.uint64([0, .max]))),
        ("a.int64", .array(.int64([.min, -1, .max]))),
        ("a.float64", .array(.float64([0.1, -1e300]))),
        ("a.empty", .array(.int32([]))),
        ("a.nested", .array(.array([.int32([1, 2]), .string(["x"]), .array([.uint8([9])]), .float32([])]))),
    ]

    static func writer(version: UInt32) -> GGUFTestWriter {
        var w = GGUFTestWriter()
        w.version = version
        w.add("general.architecture", .string("llama"))
        for (k, v) in everyValue { w.add(k, v) }
        w.addTensor("f32.weight", dims: [3, 2], type: .f32,
                    data: GGUFTestWriter.encode(.array(.float32([1, 2, 3, 4, 5, 6]))).dropFirst(12).map { $0 })
        w.addTensor("q8.weight", dims: [32], type: .q8_0, data: [0x00, 0x3C] + (0..<32).map { UInt8(bitPattern: Int8($0 - 16)) })
        return w
    }

    @Test(arguments: [UInt32(2), 3])
    func readsEveryMetadataTypeAndTensors(version: UInt32) throws {
        let dir = try TestSupport.temporaryDirectory("gguf-v\(version)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/all.gguf"
        try TestSupport.write(Self.writer(version: version).bytes(), to: path)
        let f = try GGUFFile.open(path: path)
        #expect(f.version == version)
        #expect(f.path == path)
        #expect(f.metadataKeys == ["general.architecture"] + Self.everyValue.map(\.0))
        for (k, v) in Self.everyValue { #expect(f.metadata[k] == v, "\(k)") }
        #expect(f.metadata.count == Self.everyValue.count + 1)
        #expect(f.alignment == 32 && f.dataOffset % 32 == 0)

        // Typed accessors, including integers read through another width.
        #expect(f.string("general.architecture") == "llama")
        #expect(f.uint32("t.uint32") == 4_000_000_000)
        #expect(f.uint32("t.uint8") == 250)
        #expect(f.uint32("t.int32") == nil)  // negative
        #expect(f.int("t.int64") == -9_000_000_000_000_000_000)
        #expect(f.int("t.uint64") == nil)  // too large for Int
        #expect(f.uint64("t.uint64") == 18_000_000_000_000_000_000)
        #expect(f.int32("t.int16") == -32000)
        #expect(f.float("t.float32") == -1.5e-3)
        #expect(f.double("t.float64") == 2.718281828459045)
        #expect(f.float("t.string") == nil)
        #expect(f.bool("t.bool.true") == true && f.bool("t.bool.false") == false)
        #expect(f.stringArray("a.string") == ["a", "", "<|im_start|>", "Ġthe"])
        #expect(f.int32Array("a.int32") == [-5, 0, 7])
        #expect(f.int32Array("a.uint8") == [0, 1, 255])
        #expect(f.int32Array("a.uint32") == nil)  // 4294967295 does not fit
        #expect(f.floatArray("a.float32") == [1.0, -0.0, .infinity, 3.25])
        #expect(f.array("a.nested")?.count == 4)
        #expect(f.stringArray("missing") == nil && f.value("missing") == nil)
        #expect(f.metadataError("missing", expected: "uint32").description == "\(path): error: metadata 'missing' is missing")
        #expect(f.metadataError("t.string", expected: "uint32").reason == "metadata 't.string' is string \"héllo, wörld ✓\", expected uint32")

        // Tensors: GGUF dims (ne0 first), the row-major shape, bytes and values.
        #expect(f.tensors.map(\.name) == ["f32.weight", "q8.weight"])
        let t = try #require(f.tensor(named: "f32.weight"))
        #expect(t.dims == [3, 2] && t.shape == [2, 3] && t.type == .f32 && t.byteCount == 24 && t.elementCount == 6)
        #expect(t.offset == 0 && t.fileOffset == f.dataOffset)
        #expect(try f.dequantize(t) == [1, 2, 3, 4, 5, 6])
        let q = try #require(f.tensor(named: "q8.weight"))
        #expect(q.offset == 32 && q.byteCount == 34 && q.shape == [32])
        #expect(f.withRawBytes(of: q) { Array($0.prefix(3)) } == [0x00, 0x3C, 0xF0])
        #expect(try f.dequantize(q) == (0..<32).map { Float($0 - 16) })
        #expect(f.tensor(named: "nope") == nil)
        #expect(f.fileSize == f.dataOffset + 32 + 34)
    }

    @Test func honoursGeneralAlignment() throws {
        let dir = try TestSupport.temporaryDirectory("gguf-align")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var w = GGUFTestWriter()
        w.alignment = 64
        w.add("general.alignment", .uint32(64))
        w.addTensor("a", dims: [1], type: .f32, data: [0, 0, 0x80, 0x3F])
        w.addTensor("b", dims: [2], type: .f16, data: [0x00, 0x3C, 0x00, 0xC0])
        w.addTensor("c", dims: [2], type: .bf16, data: [0x80, 0x3F, 0x20, 0x41])
        let path = dir + "/aligned.gguf"
        try TestSupport.write(w.bytes(), to: path)
        let f = try GGUFFile.open(path: path)
        #expect(f.alignment == 64 && f.dataOffset % 64 == 0)
        #expect(f.tensors.map(\.offset) == [0, 64, 128])
        #expect(try f.tensors.map { try f.dequantize($0) } == [[1], [1, -2], [1, 10]])
    }

    // MARK: Bad files

    @Test func everyPrefixOfAFileIsRejected() throws {
        let dir = try TestSupport.temporaryDirectory("gguf-prefix")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var w = GGUFTestWriter()
        w.add("general.architecture", .string("llama"))
        w.add("k.u32", .uint32(7))
        w.add("k.arr", .array(.array([.string(["ab", "c"]), .int16([1, 2])])))
        w.add("k.f64", .float64(1.5))
        w.addTensor("w", dims: [32, 2], type: .q4_0, data: (0..<36).map { UInt8($0) })
        w.addTensor("n", dims: [2], type: .f32, data: [0, 0, 0x80, 0x3F, 0, 0, 0, 0x40])
        let whole = w.bytes()
        let path = dir + "/cut.gguf"
        try TestSupport.write(whole, to: path)
        _ = try GGUFFile.open(path: path)
        for n in 0..<whole.count {
            try TestSupport.write(Array(whole.prefix(n)), to: path)
            let reason = try #require(TestSupport.ggufRejection(path), "prefix of \(n) bytes")
            #expect(reason.contains("truncated") || reason.contains("past the end of the file"), "prefix of \(n) bytes: \(reason)")
        }
    }

    /// Random byte changes must give a file that opens or an error, never a trap. The seed is
    /// printed in the failure so that a run can be replayed.
    @Test func randomlyDamagedFilesThrowOrOpen() throws {
        let dir = try TestSupport.temporaryDirectory("gguf-fuzz")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let seed = UInt64.random(in: 0..<UInt64.max)
        var rng = SplitMix64(seed: seed)
        let whole = Self.writer(version: 3).bytes()
        let path = dir + "/fuzz.gguf"
        for _ in 0..<300 {
            var bytes = whole
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let at = Int.random(in: 0..<bytes.count, using: &rng)
                bytes[at] = [0x00, 0xFF, 0x7F, 0x80, UInt8.random(in: 0...255, using: &rng)].randomElement(using: &rng) ?? 0
            }
            try TestSupport.write(bytes, to: path)
            do {
                let f = try GGUFFile.open(path: path)
                for t in f.tensors { _ = try? f.dequantize(t) }
            } catch let e as GGUFError {
                #expect(e.file == path && !e.reason.isEmpty, "seed \(seed)")
            }
        }
    }

    /// Writes `w` (or raw `bytes`) and returns the reason it is rejected.
    static func rejection(_ w: GGUFTestWriter? = nil, bytes: [UInt8]? = nil, in dir: String, _ name: String = "bad.gguf",
                          sourceLocation: Testing.SourceLocation = #_sourceLocation) throws -> String {
        let path = dir + "/" + name
        try TestSupport.write(bytes ?? w?.bytes() ?? [], to: path)
        return try #require(TestSupport.ggufRejection(path, sourceLocation: sourceLocation), sourceLocation: sourceLocation)
    }

    @Test func rejectsBadHeaders() throws {
        let dir = try TestSupport.temporaryDirectory("gguf-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var w = GGUFTestWriter()
        w.add("a", .uint32(1))

        var magic = w
        magic.magic = Array("GGML".utf8)
        #expect(try Self.rejection(magic, in: dir) == "not a GGUF file (magic is \"GGML\", expected \"GGUF\")")
        for v: UInt32 in [1, 4, 0x0300_0000 + 1] {
            var version = w
            version.version = v
            #expect(try Self.rejection(version, in: dir) == "unsupported GGUF version \(v) (supported: 2 and 3)")
        }
        var bigEndian = w
        bigEndian.version = UInt32(3).byteSwapped
        #expect(try Self.rejection(bigEndian, in: dir) == "big-endian GGUF (version 3) is not supported")
        #expect(try Self.rejection(bytes: [], in: dir)
                == "truncated file: magic at offset 0 needs 4 bytes, but the file has 0")

        // Counts that the file cannot hold.
        var tooMany = w
        tooMany.tensorCountOverride = 1 << 60
        #expect(try Self.rejection(tooMany, in: dir).hasPrefix("tensor count 1152921504606846976 at offset 24 needs at least 24 bytes each"))
        var tooManyKeys = w
        tooManyKeys.metadataCountOverride = .max
        #expect(try Self.rejection(tooManyKeys, in: dir).contains("metadata count 18446744073709551615 at offset 24"))

        // An absurd string length, in a key and in a value.
        var longKey = GGUFTestWriter()
        longKey.metadata = [(key: "k", type: GGUFValueType.string.rawValue, payload: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0x41])]
        #expect(try Self.rejection(longKey, in: dir)
                == "string length 9223372036854775807 of metadata 'k' at offset 37 runs past the end of the file (46 bytes)")
        var bytes = GGUFTestWriter().bytes()
        bytes[16] = 1  // one metadata entry …
        bytes += [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x61, 0x62, 0x63, 0x64, 0x65]  // … whose key claims 2^64-1 bytes
        #expect(try Self.rejection(bytes: bytes, in: dir)
                == "string length 18446744073709551615 of key of metadata entry 0 at offset 24 runs past the end of the file (37 bytes)")

        // Values the format does not define.
        var badType = GGUFTestWriter()
        badType.metadata = [(key: "k", type: 13, payload: [0, 0, 0, 0])]
        #expect(try Self.rejection(badType, in: dir) == "metadata 'k' has unknown value type 13")
        var badBool = GGUFTestWriter()
        badBool.metadata = [(key: "k", type: GGUFValueType.bool.rawValue, payload: [2])]
        #expect(try Self.rejection(badBool, in: dir) == "metadata 'k' at offset 37: bool byte is 2, not 0 or 1")
        var badElement = GGUFTestWriter()
        badElement.metadata = [(key: "k", type: GGUFValueType.array.rawValue, payload: [99, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0])]
        #expect(try Self.rejection(badElement, in: dir) == "metadata 'k': array has unknown element type 99 at offset 37")
        var hugeArray = GGUFTestWriter()
        hugeArray.metadata = [(key: "k", type: GGUFValueType.array.rawValue, payload: [4, 0, 0, 0] + [0, 0, 0, 0, 0, 0, 0, 0x10])]
        #expect(try Self.rejection(hugeArray, in: dir).hasPrefix("metadata 'k': array element count 1152921504606846976 at offset 49 needs at least 4 bytes each"))
        var deep = GGUFTestWriter()
        deep.add("k", .array((0..<20).reduce(GGUFArray.int8([1])) { inner, _ in .array([inner]) }))
        #expect(try Self.rejection(deep, in: dir).contains("arrays nested deeper than 16"))
        var duplicate = w
        duplicate.add("a", .uint32(2))
        #expect(try Self.rejection(duplicate, in: dir) == "duplicate metadata key 'a'")
        var alignment = w
        alignment.add("general.alignment", .uint32(48))
        #expect(try Self.rejection(alignment, in: dir) == "general.alignment 48 (uint32) is not a power of two")
    }

    @Test func rejectsBadTensorInfos() throws {
        let dir = try TestSupport.temporaryDirectory("gguf-badtensor")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let f32x2: [UInt8] = [0, 0, 0x80, 0x3F, 0, 0, 0, 0x40]
        func one(_ dims: [UInt64], type: UInt32 = 0, data: [UInt8] = f32x2, offset: UInt64? = nil) -> GGUFTestWriter {
            var w = GGUFTestWriter()
            w.add("general.architecture", .string("llama"))
            w.addTensor("first", dims: [2], type: .f32, data: f32x2)
            w.tensors.append(.init(name: "blk.0.w", dims: dims, type: type, data: data, offsetOverride: offset))
            return w
        }
        #expect(try Self.rejection(one([2], offset: 32 + 4096), in: dir)
                == "tensor 'blk.0.w' data (8 bytes at data offset 4128, file offset 160 + 4128) runs past the end of the file (200 bytes)")
        #expect(try Self.rejection(one([2], offset: .max - 31), in: dir).contains("tensor 'blk.0.w' data (8 bytes at data offset 18446744073709551584"))
        #expect(try Self.rejection(one([2], offset: 4), in: dir) == "tensor 'blk.0.w' offset 4 is not a multiple of the alignment 32")
        #expect(try Self.rejection(one([2], type: 99), in: dir) == "tensor 'blk.0.w' has unknown ggml type 99")
        #expect(try Self.rejection(one([2], type: 4), in: dir) == "tensor 'blk.0.w' has unknown ggml type 4")  // retired Q4_2
        #expect(try Self.rejection(one([1 << 40, 1 << 40]), in: dir)
                == "tensor 'blk.0.w' dimensions [1099511627776, 1099511627776] have more elements than fit in 64 bits")
        #expect(try Self.rejection(one([1 << 40, 1 << 23]), in: dir).hasSuffix("have more elements than fit in 64 bits"))
        #expect(try Self.rejection(one([(1 << 40) + 1]), in: dir) == "tensor 'blk.0.w' dimension 0 is 1099511627777, more than the limit 2^40")
        #expect(try Self.rejection(one([1 << 40, 1 << 10]), in: dir).contains("runs past the end of the file"))
        #expect(try Self.rejection(one([1, 1, 1, 1, 2]), in: dir) == "tensor 'blk.0.w' has 5 dimensions; at most 4 are allowed")
        #expect(try Self.rejection(one([16], type: GGMLType.q4_0.rawValue), in: dir)
                == "tensor 'blk.0.w' rows of 16 elements are not a multiple of the Q4_0 block size 32")
        var duplicate = one([2])
        duplicate.tensors[1].name = "first"
        #expect(try Self.rejection(duplicate, in: dir) == "duplicate tensor name 'first'")
    }

    @Test func rejectsMissingAndUnreadableFiles() throws {
        let dir = try TestSupport.temporaryDirectory("gguf-missing")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(TestSupport.ggufRejection(dir + "/none.gguf") == "cannot open file (No such file or directory)")
        #expect(TestSupport.ggufRejection(dir) == "not a regular file")
    }

    @Test func dequantizingAnUnsupportedTypeNamesTensorAndType() throws {
        let dir = try TestSupport.temporaryDirectory("gguf-unsupported")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var w = GGUFTestWriter()
        w.addTensor("blk.3.ffn_up.weight", dims: [256], type: .q2_K, data: [UInt8](repeating: 0, count: GGMLType.q2_K.typeSize))
        let path = dir + "/q2k.gguf"
        try TestSupport.write(w.bytes(), to: path)
        let f = try GGUFFile.open(path: path)
        let t = try #require(f.tensors.first)
        #expect(t.byteCount == 84)
        do {
            _ = try f.dequantize(t)
            Issue.record("Q2_K dequantized")
        } catch let e as GGUFError {
            #expect(e.description.hasPrefix("\(path): error: tensor 'blk.3.ffn_up.weight': cannot dequantize ggml type Q2_K (supported: BF16, F16, F32, Q4_0, Q4_1, Q4_K, Q5_0, Q5_1, Q5_K, Q6_K, Q8_0)"))
        }
    }
}
