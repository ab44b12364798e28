import NMIR

/// `quant.linear {act_bits = B}`: the integer form of the quantized linear layer that
/// accelerators (the HLS systolic array) compute. Per token, the activations are quantized
/// symmetrically to B bits; per row and weight group, the products of the integers are summed
/// exactly; the group sums are scaled and added in group order, in f32:
///
///     sx = max|x| / (2^(B−1) − 1)                    xq = clamp(round(x / sx), ±(2^(B−1) − 1))
///     acc[r, g] = Σ_{c ∈ g} xq[c] · (q[r, c] − zero[r, g])            exact integers
///     y[r] = (Σ_g f32(acc[r, g]) · scale[r, g]) · sx                    g = 0, 1, …, left to right
///
/// `round` is to nearest, ties away from zero. A token whose max|x| is 0 has sx = 0 and xq = 0;
/// one with an infinite or NaN value gives NaN in every output. Every float operation is one
/// IEEE f32 operation in a fixed order, so another implementation can match it bit for bit.
public enum QuantizedActivations {
    /// The largest magnitude of a B-bit symmetric integer.
    public static func maxMagnitude(bits: Int) -> Int32 { Int32(1) << (bits - 1) - 1 }

    /// Quantizes one token's activations: the integers and the scale.
    public static func quantize(_ x: ArraySlice<Float>, bits: Int) -> (q: [Int32], scale: Float) {
        let qmax = maxMagnitude(bits: bits)
        var amax: Float = 0
        for v in x { amax = Swift.max(amax, Swift.abs(v)) }
        // NaN does not survive max(); any NaN input makes the token's outputs NaN.
        if x.contains(where: { $0.isNaN }) { amax = .nan }
        guard amax.isFinite, amax > 0 else { return ([Int32](repeating: 0, count: x.count), amax.isFinite ? 0 : .nan) }
        let scale = amax / Float(qmax)
        let q = x.map { v -> Int32 in
            let r = (v / scale).rounded(.toNearestOrAwayFromZero)
            return Int32(Swift.min(Swift.max(r, -Float(qmax)), Float(qmax)))
        }
        return (q, scale)
    }

    /// `y = x · wᵀ` in the integer form above. `centered` is `[R, C]`: q − zero at kept
    /// positions, 0 at pruned ones, as f32 (exact: small integers).
    static func linear(_ x: Tensor, centered: Tensor, scales: Tensor, group: Int, bits: Int) -> Tensor {
        let rows = centered.shape[0], columns = centered.shape[1]
        let tokens = columns == 0 ? 0 : x.count / columns
        let groups = (columns + group - 1) / group
        var xq = [Float](repeating: 0, count: tokens * columns)
        var tokenScale = [Float](repeating: 0, count: tokens)
        for t in 0..<tokens {
            let (q, s) = quantize(x.floats[(t * columns)..<((t + 1) * columns)], bits: bits)
            for c in 0..<columns { xq[t * columns + c] = Float(q[c]) }
            tokenScale[t] = s
        }
        var y = [Float](repeating: 0, count: tokens * rows)
        for g in 0..<groups {
            let start = g * group, width = Swift.min(group, columns - start)
            let acc = groupSums(xq, centered.floats, tokens: tokens, rows: rows, columns: columns, start: start, width: width)
            for t in 0..<tokens {
                for r in 0..<rows { y[t * rows + r] += acc[t * rows + r] * scales.floats[r * groups + g] }
            }
        }
        for t in 0..<tokens {
            for r in 0..<rows { y[t * rows + r] *= tokenScale[t] }
        }
        return Tensor(shape: Array(x.shape.dropLast()) + [rows], floats: y)
    }

    /// Σ_{c ∈ [start, start+width)} xq[t, c] · w[r, c] for every token and row, exactly. In f32 the
    /// sums are exact while every partial sum stays below 2^24, which BLAS can then compute in
    /// any order; beyond that bound the sums are taken in Int64.
    static func groupSums(_ xq: [Float], _ w: [Float], tokens: Int, rows: Int, columns: Int, start: Int, width: Int) -> [Float] {
        var xs = [Float](repeating: 0, count: tokens * width), ws = [Float](repeating: 0, count: rows * width)
        var xmax: Float = 0, wmax: Float = 0
        for t in 0..<tokens {
            for c in 0..<width { xs[t * width + c] = xq[t * columns + start + c]; xmax = Swift.max(xmax, Swift.abs(xs[t * width + c])) }
        }
        for r in 0..<rows {
            for c in 0..<width { ws[r * width + c] = w[r * columns + start + c]; wmax = Swift.max(wmax, Swift.abs(ws[r * width + c])) }
        }
        if Double(xmax) * Double(wmax) * Double(width) < Double(1 << 24) {
            return BLAS.matmulTransposedB(xs, ws, m: tokens, n: rows, k: width)
        }
        var out = [Float](repeating: 0, count: tokens * rows)
        for t in 0..<tokens {
            for r in 0..<rows {
                var s: Int64 = 0
                for c in 0..<width { s += Int64(xs[t * width + c]) * Int64(ws[r * width + c]) }
                out[t * rows + r] = Float(s)
            }
        }
        return out
    }
}
