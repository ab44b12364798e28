/// Accumulates the body of one PTX kernel: fresh virtual registers by kind, instructions, and
/// the register declarations they need (ptxas allocates the physical registers).
struct PTXBuilder {
    private(set) var body: [String] = []
    private var counts: [String: Int] = [:]
    private var labels = 0

    /// A fresh register: "r" .b32, "rd" .b64, "f" .f32, "p" .pred, "h" .b16.
    mutating func reg(_ kind: String) -> String {
        let n = counts[kind, default: 0]
        counts[kind] = n + 1
        return "%\(kind)\(n)"
    }

    mutating func regs(_ kind: String, _ count: Int) -> [String] { (0..<count).map { _ in reg(kind) } }

    mutating func label(_ stem: String) -> String {
        labels += 1
        return "\(stem.uppercased())_\(labels)"
    }

    mutating func emit(_ line: String) { body.append("    " + line) }
    mutating func place(_ label: String) { body.append("\(label):") }

    /// A b32 register holding a constant.
    mutating func constant(_ value: UInt32) -> String {
        let r = reg("r")
        emit("mov.b32 \(r), \(hex(value));")
        return r
    }

    /// A 64-bit address: `base` + `index` (u32) · `times`.
    mutating func wide(_ base: String, _ index: String, times: Int) -> String {
        let off = reg("rd"), out = reg("rd")
        emit("mul.wide.u32 \(off), \(index), \(times);")
        emit("add.s64 \(out), \(base), \(off);")
        return out
    }

    func hex(_ v: UInt32) -> String { "0x" + String(v, radix: 16, uppercase: true) }

    var declarations: [String] {
        let types = ["p": ".pred", "h": ".b16", "r": ".b32", "rd": ".b64", "f": ".f32"]
        return counts.keys.sorted().map { "    .reg \(types[$0]!) %\($0)<\(counts[$0]!)>;" }
    }
}

/// The INT4 dequantization both linear kernels share (see KernelWeightLayout.int4Dense).
extension PTXBuilder {
    /// The constants `dequantizeInt4` needs: for the nibbles at bits 0–3 (and 16–19) of a word,
    /// the mask, f16 1024 and f16 1032; for those at bits 4–7 (and 20–23), the mask, f16 64
    /// (whose mantissa's bits 4–7 count 1s) and f16 72.
    mutating func int4Constants() -> [String] {
        [0x000F_000F, 0x6400_6400, 0x6408_6408, 0x00F0_00F0, 0x5400_5400, 0x5480_5480].map { constant($0) }
    }

    /// f32 copies of the scales of rows g (low half of `packed`) and g + 8 (high half).
    mutating func scaleFloats(_ packed: String) -> (String, String) {
        let (lo, hi) = (reg("h"), reg("h")), (f0, f1) = (reg("f"), reg("f"))
        emit("mov.b32 {\(lo), \(hi)}, \(packed);")
        emit("cvt.f32.f16 \(f0), \(lo);")
        emit("cvt.f32.f16 \(f1), \(hi);")
        return (f0, f1)
    }

    /// f16x2 copies of the scales of rows g (low half of `packed`) and g + 8 (high half).
    mutating func scalePairs(_ packed: String) -> (String, String) {
        let lo = reg("r"), hi = reg("r")
        emit("prmt.b32 \(lo), \(packed), 0, 0x1010;")
        emit("prmt.b32 \(hi), \(packed), 0, 0x3232;")
        return (lo, hi)
    }

    /// Four f16x2 A registers from one word of 8 nibbles (q + 8 each; register i takes nibbles
    /// i and i + 4): `lop3` puts an even nibble into an f16 1024 + n, an odd one (without a
    /// shift) into an f16 64 + n, subtracting 1032 or 72 gives exactly q, and the multiplication
    /// by the row's scale (skipped where `scales` is nil: the caller scales the mma's sums)
    /// rounds once. One shift a word (by 8, for nibbles 2, 3, 6, 7), not three.
    mutating func dequantizeInt4(_ word: String, constants c: [String], scales: (String, String)?) -> [String] {
        let shifted = reg("r")
        emit("shr.u32 \(shifted), \(word), 8;")
        return (0..<4).map { i in
            let odd = i % 2 == 1, v = reg("r")
            emit("lop3.b32 \(v), \(i < 2 ? word : shifted), \(c[odd ? 3 : 0]), \(c[odd ? 4 : 1]), 0xEA;")  // (src & mask) | magic
            emit("sub.f16x2 \(v), \(v), \(c[odd ? 5 : 2]);")
            if let scales { emit("mul.f16x2 \(v), \(v), \(i % 2 == 0 ? scales.0 : scales.1);") }
            return v
        }
    }
}
