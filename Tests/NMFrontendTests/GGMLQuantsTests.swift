import Foundation
import NMRuntime
import Testing
@testable import NMFrontend

/// Element-by-element dequantization written from the block definitions (where every bit of
/// element e lives), independent of the loop structure of `GGMLQuants`.
enum ReferenceDequantization {
    static func f16(_ b: [UInt8], _ at: Int) -> Float { Float(Float16(bitPattern: UInt16(b[at]) | UInt16(b[at + 1]) << 8)) }
    static func nibble(_ byte: UInt8, high: Bool) -> Int { Int(high ? byte >> 4 : byte & 0x0F) }
    static func bit(_ b: [UInt8], byteAt: Int, _ bit: Int) -> Int { Int(b[byteAt + bit / 8] >> UInt8(bit % 8)) & 1 }

    /// Scale and min (6 bits each) of sub-block i of the 12 packed bytes at `at` (Q4_K, Q5_K).
    static func scaleMin(_ b: [UInt8], at: Int, _ i: Int) -> (Float, Float) {
        let s = Array(b[at..<(at + 12)])
        if i < 4 { return (Float(s[i] & 63), Float(s[i + 4] & 63)) }
        let scale = Int(s[i + 4] & 0x0F) | Int(s[i - 4] >> 6) << 4
        let min = Int(s[i + 4] >> 4) | Int(s[i] >> 6) << 4
        return (Float(scale), Float(min))
    }

    /// Element `e` of one block `b`.
    static func value(_ type: GGMLType, _ b: [UInt8], _ e: Int) -> Float {
        switch type {
        case .q4_0:
            return f16(b, 0) * Float(nibble(b[2 + e % 16], high: e >= 16) - 8)
        case .q4_1:
            return f16(b, 0) * Float(nibble(b[4 + e % 16], high: e >= 16)) + f16(b, 2)
        case .q5_0:
            let q = nibble(b[6 + e % 16], high: e >= 16) | bit(b, byteAt: 2, e) << 4
            return f16(b, 0) * Float(q - 16)
        case .q5_1:
            let q = nibble(b[8 + e % 16], high: e >= 16) | bit(b, byteAt: 4, e) << 4
            return f16(b, 0) * Float(q) + f16(b, 2)
        case .q8_0:
            return f16(b, 0) * Float(Int8(bitPattern: b[2 + e]))
        case .q4_K, .q5_K:
            let sub = e / 32, j = e % 32
            let qsAt = type == .q4_K ? 16 : 48
            var q = nibble(b[qsAt + 32 * (sub / 2) + j], high: sub % 2 == 1)
            if type == .q5_K { q |= bit(b, byteAt: 16 + j, sub) << 4 }
            let (sc, m) = scaleMin(b, at: 4, sub)
            return (f16(b, 0) * sc) * Float(q) - f16(b, 2) * m
        case .q6_K:
            let h = e / 128, p = e % 128, k = p / 32, l = p % 32
            let low = nibble(b[64 * h + l + 32 * (k % 2)], high: k >= 2)
            let high = Int(b[128 + 32 * h + l] >> UInt8(2 * k)) & 3
            let scale = Float(Int8(bitPattern: b[192 + 8 * h + p / 16]))
            return (f16(b, 208) * scale) * Float((low | high << 4) - 32)
        default:
            return .nan
        }
    }

    static func dequantize(_ type: GGMLType, _ bytes: [UInt8]) -> [Float] {
        let blocks = bytes.count / type.typeSize
        return (0..<blocks).flatMap { i -> [Float] in
            let b = Array(bytes[(i * type.typeSize)..<((i + 1) * type.typeSize)])
            return (0..<type.blockSize).map { value(type, b, $0) }
        }
    }
}

@Suite struct GGMLQuantsTests {
    static let quantized: [GGMLType] = [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q5_K, .q6_K]

    /// Byte offsets of the f16 scale fields of a block.
    static func halfFields(_ type: GGMLType) -> [Int] {
        switch type {
        case .q4_0, .q5_0, .q8_0: [0]
        case .q4_1, .q5_1, .q4_K, .q5_K: [0, 2]
        case .q6_K: [208]
        default: []
        }
    }

    /// A finite half: mostly ordinary magnitudes, sometimes zero, -0, subnormal or large.
    static func randomHalfBits(_ rng: inout SplitMix64) -> UInt16 {
        switch Int.random(in: 0..<10, using: &rng) {
        case 0: return [0x0000, 0x8000, 0x0001, 0x83FF, 0x7BFF, 0xFBFF].randomElement(using: &rng) ?? 0
        default: return Float16(Float.random(in: -4...4, using: &rng) * Float.random(in: 0.0001...1, using: &rng)).bitPattern
        }
    }

    /// `blocks` random blocks of `type` with finite scales.
    static func randomBlocks(_ type: GGMLType, _ blocks: Int, _ rng: inout SplitMix64) -> [UInt8] {
        var bytes = (0..<(blocks * type.typeSize)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        for b in 0..<blocks {
            for at in halfFields(type) {
                let h = randomHalfBits(&rng)
                bytes[b * type.typeSize + at] = UInt8(h & 0xFF)
                bytes[b * type.typeSize + at + 1] = UInt8(h >> 8)
            }
        }
        return bytes
    }

    /// Random f16 / bf16 / f32 element bits without NaNs.
    static func randomPlain(_ type: GGMLType, _ count: Int, _ rng: inout SplitMix64) -> [UInt8] {
        var out: [UInt8] = []
        for _ in 0..<count {
            switch type {
            case .f16:
                var h = UInt16.random(in: 0...UInt16.max, using: &rng)
                if h & 0x7C00 == 0x7C00 && h & 0x03FF != 0 { h &= 0xFC00 }  // NaN → infinity
                out += [UInt8(h & 0xFF), UInt8(h >> 8)]
            case .bf16:
                var h = UInt16.random(in: 0...UInt16.max, using: &rng)
                if h & 0x7F80 == 0x7F80 && h & 0x007F != 0 { h &= 0xFF80 }
                out += [UInt8(h & 0xFF), UInt8(h >> 8)]
            default:
                let f = Float.random(in: -1000...1000, using: &rng)
                withUnsafeBytes(of: f.bitPattern.littleEndian) { out += $0 }
            }
        }
        return out
    }

    static func dequantize(_ type: GGMLType, _ bytes: [UInt8]) throws -> [Float] {
        let count = bytes.count / type.typeSize * type.blockSize
        return try bytes.withUnsafeBytes { try GGMLQuants.dequantize($0, type: type, count: count) }
    }

    static func half(_ f: Float) -> [UInt8] {
        let h = Float16(f).bitPattern
        return [UInt8(h & 0xFF), UInt8(h >> 8)]
    }

    // MARK: Known blocks

    @Test func knownBlocks() throws {
        // Q4_0: d = 0.5, qs[j] = j | (15 - j) << 4 → elements j: (j - 8) / 2, 16 + j: (7 - j) / 2.
        let q40 = Self.half(0.5) + (0..<16).map { UInt8($0 | (15 - $0) << 4) }
        #expect(try Self.dequantize(.q4_0, q40) == (0..<16).map { Float($0 - 8) / 2 } + (0..<16).map { Float(7 - $0) / 2 })
        // Q4_1: d = 0.25, m = -1, all nibbles 4 (low) and 12 (high) → 0 and 2.
        let q41 = Self.half(0.25) + Self.half(-1) + [UInt8](repeating: 0xC4, count: 16)
        #expect(try Self.dequantize(.q4_1, q41) == [Float](repeating: 0, count: 16) + [Float](repeating: 2, count: 16))
        // Q5_0: d = 1, qh = 0xFFFF0000 (bit 4 set for the upper 16), nibbles 0 → -16 … and 16 - 16 = 0.
        let q50 = Self.half(1) + [0x00, 0x00, 0xFF, 0xFF] + [UInt8](repeating: 0x00, count: 16)
        #expect(try Self.dequantize(.q5_0, q50) == [Float](repeating: -16, count: 16) + [Float](repeating: 0, count: 16))
        // Q5_1: d = 2, m = 0.5, qh = 1 (element 0 only), nibbles 1 → 17 * 2 + 0.5, then 1 * 2 + 0.5.
        let q51 = Self.half(2) + Self.half(0.5) + [0x01, 0, 0, 0] + [UInt8](repeating: 0x11, count: 16)
        #expect(try Self.dequantize(.q5_1, q51) == [34.5] + [Float](repeating: 2.5, count: 31))
        // Q8_0: d = -0.125, qs = -16 … 15.
        let q80 = Self.half(-0.125) + (0..<32).map { UInt8(bitPattern: Int8($0 - 16)) }
        #expect(try Self.dequantize(.q8_0, q80) == (0..<32).map { Float($0 - 16) * -0.125 })
        // Q4_K: d = 1, dmin = 0.5; sub-block scales 1…8 and mins 0…7 (4–7 split over the packed
        // bytes); every nibble 3 → (s + 1) * 3 - 0.5 * s for sub-block s.
        var scales = [UInt8](repeating: 0, count: 12)
        for s in 0..<4 { scales[s] = UInt8(s + 1); scales[s + 4] = UInt8(s) }
        for s in 4..<8 { scales[s + 4] = UInt8(s + 1) | UInt8(s) << 4 }
        let q4k = Self.half(1) + Self.half(0.5) + scales + [UInt8](repeating: 0x33, count: 128)
        #expect(try Self.dequantize(.q4_K, q4k) == (0..<256).map { e in Float(e / 32 + 1) * 3 - 0.5 * Float(e / 32) })
        // Q5_K: the same with every high bit set → 19 instead of 3.
        let q5k = Self.half(1) + Self.half(0.5) + scales + [UInt8](repeating: 0xFF, count: 32) + [UInt8](repeating: 0x33, count: 128)
        #expect(try Self.dequantize(.q5_K, q5k) == (0..<256).map { e in Float(e / 32 + 1) * 19 - 0.5 * Float(e / 32) })
        // Q6_K: d = 0.5, scales 1 … 16 (sub-blocks of 16), all quants 33 (ql 1, qh 2) → 0.5 * s * 1.
        let q6k = [UInt8](repeating: 0x11, count: 128) + [UInt8](repeating: 0xAA, count: 64)
            + (1...16).map { UInt8($0) } + Self.half(0.5)
        #expect(try Self.dequantize(.q6_K, q6k) == (0..<256).map { e in 0.5 * Float(e / 16 + 1) })
    }

    @Test func plainTypes() throws {
        let f16 = Self.half(1.5) + [0x00, 0x80] + [0x01, 0x00] + [0x00, 0x7C]
        #expect(try Self.dequantize(.f16, f16) == [1.5, -0.0, Float(Float16(bitPattern: 1)), .infinity])
        #expect(try Self.dequantize(.bf16, [0x80, 0x3F, 0xC0, 0xC0]) == [1, -6])
        #expect(try Self.dequantize(.f32, [0, 0, 0x80, 0x3F]) == [1])
        #expect(try Self.dequantize(.q8_0, []) == [])
    }

    @Test func rejectsUnsupportedTypesAndWrongSizes() throws {
        #expect(throws: GGMLQuants.UnsupportedType.self) { try Self.dequantize(.iq2_xxs, [UInt8](repeating: 0, count: 66)) }
        do {
            _ = try [UInt8](repeating: 0, count: 17).withUnsafeBytes { try GGMLQuants.dequantize($0, type: .q4_0, count: 32) }
            Issue.record("wrong size accepted")
        } catch let e as GGMLQuants.UnsupportedType {
            #expect(e.reason == "17 bytes do not hold 32 elements of Q4_0")
        }
    }

    // MARK: Random blocks, against the reference and the gguf package

    @Test(arguments: quantized)
    func randomBlocksMatchTheDefinition(type: GGMLType) throws {
        let seed = UInt64.random(in: 0..<UInt64.max)
        var rng = SplitMix64(seed: seed)
        let bytes = Self.randomBlocks(type, 24, &rng)
        let got = try Self.dequantize(type, bytes)
        let expected = ReferenceDequantization.dequantize(type, bytes)
        #expect(TestSupport.firstDifference(got, expected) == nil, "\(type), seed \(seed)")
    }

    @Test(.enabled(if: PythonGGUF.isAvailable, Comment(rawValue: PythonGGUF.skipMessage)))
    func randomTensorsMatchTheGGUFPackage() throws {
        let dir = try TestSupport.temporaryDirectory("quants-py")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let seed = UInt64.random(in: 0..<UInt64.max)
        var rng = SplitMix64(seed: seed)
        var w = GGUFTestWriter()
        w.add("general.architecture", .string("test"))
        var expected: [(name: String, values: [Float])] = []
        for type in [GGMLType.f32, .f16, .bf16] + Self.quantized {
            // Three rows of 512 elements: two k-quant super-blocks or sixteen 32-blocks per row.
            let count = 512 * 3
            let bytes = type.blockSize == 1 ? Self.randomPlain(type, count, &rng)
                : Self.randomBlocks(type, count / type.blockSize, &rng)
            let name = "t.\(type.name.lowercased())"
            w.addTensor(name, dims: [512, 3], type: type, data: bytes)
            expected.append((name, type.blockSize == 1 ? try Self.dequantize(type, bytes) : ReferenceDequantization.dequantize(type, bytes)))
        }
        let path = dir + "/random.gguf"
        try TestSupport.write(w.bytes(), to: path)
        let file = try GGUFFile.open(path: path)
        let ours = try file.tensors.map { try file.dequantize($0) }
        let theirs = try PythonGGUF.dequantize(file: path, names: [], sizes: file.tensors.map(\.elementCount), workDirectory: dir)
        for (i, t) in file.tensors.enumerated() {
            #expect(t.shape == [3, 512])
            #expect(TestSupport.firstDifference(ours[i], theirs[i]) == nil, "\(t.name) (\(t.type)) vs gguf, seed \(seed)")
            #expect(TestSupport.firstDifference(ours[i], expected[i].values) == nil, "\(t.name) vs reference, seed \(seed)")
        }
    }
}
