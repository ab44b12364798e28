/// Dequantization of ggml tensor types to f32, following ggml's `dequantize_row_*` (and the gguf
/// Python package's `quants.py`) operation for operation, so results are bit-identical: every
/// product and sum is rounded to f32 in the same order (`d * q + m`, never a fused multiply-add).
///
/// Block layouts (all little-endian; `f16` is IEEE half; QK_K = 256):
///
/// | type | elements | bytes | layout | value |
/// | --- | --- | --- | --- | --- |
/// | Q4_0 | 32 | 18 | d: f16, qs[16] | `d * (q - 8)`; q of element j < 16 is the low nibble of qs[j], of j + 16 the high one |
/// | Q4_1 | 32 | 20 | d: f16, m: f16, qs[16] | `d * q + m` |
/// | Q5_0 | 32 | 22 | d, qh: u32, qs[16] | `d * (q - 16)`; bit 4 of element j is bit j of qh |
/// | Q5_1 | 32 | 24 | d, m, qh: u32, qs[16] | `d * q + m` |
/// | Q8_0 | 32 | 34 | d, qs: i8[32] | `d * q` (ggml writes `q * d`; the same) |
/// | Q4_K | 256 | 144 | d, dmin, scales[12], qs[128] | 8 sub-blocks of 32 with 6-bit scale sc and min m: `(d*sc) * q - (dmin*m)` |
/// | Q5_K | 256 | 176 | d, dmin, scales[12], qh[32], qs[128] | as Q4_K with bit 4 of sub-block s from bit s of qh |
/// | Q6_K | 256 | 210 | ql[128], qh[64], scales: i8[16], d | 16 sub-blocks of 16: `(d*sc) * (q - 32)` |
public enum GGMLQuants {
    /// The types `dequantize` handles.
    public static let supportedTypes: Set<GGMLType> = [.f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q5_K, .q6_K]

    /// A type that the reader knows but cannot convert (yet); the callers name the tensor.
    public struct UnsupportedType: Error, CustomStringConvertible, Sendable {
        public var type: GGMLType
        public var reason: String
        public var description: String { reason }
    }

    /// `count` f32 values from `bytes` of `type` (`count` a multiple of the block size, `bytes`
    /// exactly `count / blockSize * typeSize` long; the GGUF reader has checked both).
    public static func dequantize(_ bytes: UnsafeRawBufferPointer, type: GGMLType, count: Int) throws -> [Float] {
        guard supportedTypes.contains(type) else {
            throw UnsupportedType(type: type, reason: "cannot dequantize ggml type \(type) (supported: \(supportedTypes.map(\.name).sorted().joined(separator: ", ")))")
        }
        guard count >= 0, count % type.blockSize == 0, bytes.count == count / type.blockSize * type.typeSize else {
            throw UnsupportedType(type: type, reason: "\(bytes.count) bytes do not hold \(count) elements of \(type)")
        }
        return [Float](unsafeUninitializedCapacity: count) { out, initialized in
            if count > 0, let src = bytes.baseAddress, let dst = out.baseAddress {
                dequantize(src.assumingMemoryBound(to: UInt8.self), type: type, blocks: count / type.blockSize, into: dst)
            }
            initialized = count
        }
    }

    /// Dequantizes `blocks` blocks of a supported `type` from `src` into `dst`.
    public static func dequantize(_ src: UnsafePointer<UInt8>, type: GGMLType, blocks: Int, into dst: UnsafeMutablePointer<Float>) {
        switch type {
        case .f32:
            UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: blocks * 4)
        case .f16:
            for i in 0..<blocks { dst[i] = half(src, 2 * i) }
        case .bf16:
            for i in 0..<blocks { dst[i] = Float(bitPattern: UInt32(u16(src, 2 * i)) << 16) }
        case .q4_0: q4_0(src, blocks, dst)
        case .q4_1: q4_1(src, blocks, dst)
        case .q5_0: q5_0(src, blocks, dst)
        case .q5_1: q5_1(src, blocks, dst)
        case .q8_0: q8_0(src, blocks, dst)
        case .q4_K: q4_K(src, blocks, dst)
        case .q5_K: q5_K(src, blocks, dst)
        case .q6_K: q6_K(src, blocks, dst)
        default: break  // `dequantize(_:type:count:)` rejects the others before getting here.
        }
    }

    // MARK: Loads

    @inline(__always) static func u16(_ p: UnsafePointer<UInt8>, _ at: Int) -> UInt16 {
        UInt16(p[at]) | UInt16(p[at + 1]) << 8
    }

    @inline(__always) static func u32(_ p: UnsafePointer<UInt8>, _ at: Int) -> UInt32 {
        UInt32(p[at]) | UInt32(p[at + 1]) << 8 | UInt32(p[at + 2]) << 16 | UInt32(p[at + 3]) << 24
    }

    /// An IEEE half at byte `at`, widened exactly to f32.
    @inline(__always) static func half(_ p: UnsafePointer<UInt8>, _ at: Int) -> Float {
        Float(Float16(bitPattern: u16(p, at)))
    }

    // MARK: 32-element blocks

    static func q4_0(_ src: UnsafePointer<UInt8>, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let x = src + b * 18, y = dst + b * 32
            let d = half(x, 0)
            let qs = x + 2
            for j in 0..<16 {
                y[j] = d * Float(Int32(qs[j] & 0x0F) - 8)
                y[j + 16] = d * Float(Int32(qs[j] >> 4) - 8)
            }
        }
    }

    static func q4_1(_ src: UnsafePointer<UInt8>, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let x = src + b * 20, y = dst + b * 32
            let d = half(x, 0), m = half(x, 2)
            let qs = x + 4
            for j in 0..<16 {
                y[j] = d * Float(qs[j] & 0x0F) + m
                y[j + 16] = d * Float(qs[j] >> 4) + m
            }
        }
    }

    static func q5_0(_ src: UnsafePointer<UInt8>, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let x = src + b * 22, y = dst + b * 32
            let d = half(x, 0)
            let qh = u32(x, 2)
            let qs = x + 6
            for j in 0..<16 {
                let h0 = Int32((qh >> UInt32(j)) & 1) << 4
                let h1 = Int32((qh >> UInt32(j + 16)) & 1) << 4
                y[j] = d * Float((Int32(qs[j] & 0x0F) | h0) - 16)
                y[j + 16] = d * Float((Int32(qs[j] >> 4) | h1) - 16)
            }
        }
    }

    static func q5_1(_ src: UnsafePointer<UInt8>, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let x = src + b * 24, y = dst + b * 32
            let d = half(x, 0), m = half(x, 2)
            let qh = u32(x, 4)
            let qs = x + 8
            for j in 0..<16 {
                let h0 = UInt32((qh >> UInt32(j)) & 1) << 4
                let h1 = UInt32((qh >> UInt32(j + 16)) & 1) << 4
                y[j] = d * Float(UInt32(qs[j] & 0x0F) | h0) + m
                y[j + 16] = d * Float(UInt32(qs[j] >> 4) | h1) + m
            }
        }
    }

    static func q8_0(_ src: UnsafePointer<UInt8>, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let x = src + b * 34, y = dst + b * 32
            let d = half(x, 0)
            let qs = x + 2
            for j in 0..<32 { y[j] = d * Float(Int8(bitPattern: qs[j])) }
        }
    }

    // MARK: k-quants (256-element super-blocks)

    /// The 6-bit scale and min of sub-block `j` (0..<8) from the 12 packed bytes of Q4_K / Q5_K:
    /// bytes 0–3 hold scales 0–3 (low 6 bits) and the top 2 bits of scales 4–7; bytes 4–7 the same
    /// for the mins; bytes 8–11 the low 4 bits of scales 4–7 (low nibble) and mins 4–7 (high nibble).
    @inline(__always) static func scaleMin(_ j: Int, _ q: UnsafePointer<UInt8>) -> (scale: UInt8, min: UInt8) {
        if j < 4 { return (q[j] & 63, q[j + 4] & 63) }
        return ((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }

    static func q4_K(_ src: UnsafePointer<UInt8>, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let x = src + b * 144, y = dst + b * 256
            let d = half(x, 0), dmin = half(x, 2)
            let scales = x + 4, qs = x + 16
            // Chunk c of 64 elements: sub-block 2c from the low nibbles of qs[32c ..< 32c+32],
            // sub-block 2c+1 from the high nibbles.
            for c in 0..<4 {
                let (sc0, m0) = scaleMin(2 * c, scales)
                let (sc1, m1) = scaleMin(2 * c + 1, scales)
                let d0 = d * Float(sc0), min0 = dmin * Float(m0)
                let d1 = d * Float(sc1), min1 = dmin * Float(m1)
                let q = qs + 32 * c, out = y + 64 * c
                for l in 0..<32 {
                    out[l] = d0 * Float(q[l] & 0x0F) - min0
                    out[l + 32] = d1 * Float(q[l] >> 4) - min1
                }
            }
        }
    }

    static func q5_K(_ src: UnsafePointer<UInt8>, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let x = src + b * 176, y = dst + b * 256
            let d = half(x, 0), dmin = half(x, 2)
            let scales = x + 4, qh = x + 16, qs = x + 48
            for c in 0..<4 {
                let (sc0, m0) = scaleMin(2 * c, scales)
                let (sc1, m1) = scaleMin(2 * c + 1, scales)
                let d0 = d * Float(sc0), min0 = dmin * Float(m0)
                let d1 = d * Float(sc1), min1 = dmin * Float(m1)
                let q = qs + 32 * c, out = y + 64 * c
                let shift0 = UInt8(2 * c), shift1 = UInt8(2 * c + 1)
                for l in 0..<32 {
                    let h0 = ((qh[l] >> shift0) & 1) << 4
                    let h1 = ((qh[l] >> shift1) & 1) << 4
                    out[l] = d0 * Float((q[l] & 0x0F) | h0) - min0
                    out[l + 32] = d1 * Float((q[l] >> 4) | h1) - min1
                }
            }
        }
    }

    static func q6_K(_ src: UnsafePointer<UInt8>, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let x = src + b * 210, y = dst + b * 256
            let d = half(x, 208)
            // Two halves of 128 elements; half h uses ql[64h ..< 64h+64], qh[32h ..< 32h+32] and
            // scales[8h ..< 8h+8]. Element l + 32k of a half (k = 0…3) takes the low (k even) or
            // high (k odd) nibble of ql[l + 32(k % 2)] and bits 2k, 2k+1 of qh[l].
            for h in 0..<2 {
                let ql = x + 64 * h, qh = x + 128 + 32 * h
                let sc = x + 192 + 8 * h
                let out = y + 128 * h
                for l in 0..<32 {
                    let s = l / 16
                    let hbits = qh[l]
                    let q0 = Int32((ql[l] & 0x0F) | ((hbits & 3) << 4)) - 32
                    let q1 = Int32((ql[l + 32] & 0x0F) | (((hbits >> 2) & 3) << 4)) - 32
                    let q2 = Int32((ql[l] >> 4) | (((hbits >> 4) & 3) << 4)) - 32
                    let q3 = Int32((ql[l + 32] >> 4) | (((hbits >> 6) & 3) << 4)) - 32
                    out[l] = (d * Float(Int8(bitPattern: sc[s]))) * Float(q0)
                    out[l + 32] = (d * Float(Int8(bitPattern: sc[s + 2]))) * Float(q1)
                    out[l + 64] = (d * Float(Int8(bitPattern: sc[s + 4]))) * Float(q2)
                    out[l + 96] = (d * Float(Int8(bitPattern: sc[s + 6]))) * Float(q3)
                }
            }
        }
    }
}
