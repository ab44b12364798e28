import NMIR

/// Kernels of the `quant` ops, following the packed layout of ir-specs/quant.md.
enum QuantKernels {
    /// The f32 matrix a packed weight stands for: (q − zero) · scale per group, zeros where
    /// N:M pruned.
    static func dequantize(_ value: RuntimeValue, scales: Tensor, zeroPoints: Tensor?) throws -> Tensor {
        var w = try centered(value, zeroPoints: zeroPoints)
        let columns = w.shape[1]
        guard case .packed(let p) = value else { return w }
        let groups = p.type.groupsPerRow, group = p.type.group
        // Zeros (pruned, or q = zero) stay +0 without a multiply.
        for i in w.floats.indices where w.floats[i] != 0 {
            let r = i / columns, c = i % columns
            w.floats[i] *= scales.floats[r * groups + c / group]
        }
        return w
    }

    /// The integers of a packed weight, q − zero, at kept positions and 0 at N:M-pruned ones, as
    /// an f32 `[R, C]` tensor (exact: they are small). Pruned positions stay 0 after scaling,
    /// whatever the zero point.
    static func centered(_ value: RuntimeValue, zeroPoints: Tensor?) throws -> Tensor {
        guard case .packed(let w) = value else { throw InterpreterError("expected a packed weight") }
        let type = w.type
        guard let expected = WeightStore.storageByteCount(of: .packed(type)), w.bytes.count == expected else {
            throw InterpreterError("packed weight holds \(w.bytes.count) bytes, \(type) needs \(WeightStore.storageByteCount(of: .packed(type)) ?? 0)")
        }
        let rows = type.rows, columns = type.columns, groups = type.groupsPerRow
        let bits = type.bits
        var out = [Float](repeating: 0, count: rows * columns)
        let values = BitReader(bytes: w.bytes, width: bits, signed: true)
        func center(_ q: Int, row: Int, column: Int) -> Float {
            let zero = zeroPoints.map { Int($0.ints[row * groups + column / type.group]) } ?? 0
            return Float(q - zero)
        }
        if let nm = type.nm {
            let kept = columns / nm.m * nm.n
            let indexBits = Int.bitWidth - (nm.m - 1).leadingZeroBitCount
            let indexStart = (rows * kept * bits + 7) / 8 * 8
            let indices = BitReader(bytes: w.bytes, width: indexBits, signed: false, bitOffset: indexStart)
            for r in 0..<rows {
                for j in 0..<kept {
                    let slot = r * kept + j
                    let index = indices[slot]
                    guard index < nm.m else { throw InterpreterError("N:M index \(index) ≥ M = \(nm.m) in row \(r)") }
                    let column = (j / nm.n) * nm.m + index
                    out[r * columns + column] = center(values[slot], row: r, column: column)
                }
            }
        } else {
            for r in 0..<rows {
                for c in 0..<columns { out[r * columns + c] = center(values[r * columns + c], row: r, column: c) }
            }
        }
        return Tensor(shape: [rows, columns], floats: out)
    }
}

/// Reads fixed-width fields from a byte string, lowest bits first.
struct BitReader {
    let bytes: [UInt8]
    let width: Int
    let signed: Bool
    var bitOffset = 0

    subscript(i: Int) -> Int {
        var v = 0
        let start = bitOffset + i * width
        for b in 0..<width {
            let bit = start + b
            if bytes[bit >> 3] >> (bit & 7) & 1 == 1 { v |= 1 << b }
        }
        if signed, v >> (width - 1) & 1 == 1 { v -= 1 << width }
        return v
    }
}
