import NMIR

/// SparseGPT (Frantar & Alistarh, "SparseGPT: Massive Language Models Can Be Accurately Pruned
/// in One-Shot", ICML 2023) with N:M masks, for one `[rows, K]` linear weight W and the Hessian
/// of its layer-wise reconstruction loss ‖W X − Ŵ X‖², H = Σ x xᵀ over the calibration tokens.
///
/// Columns are visited left to right. At the first column of each group of M, the N weights of
/// the group with the largest OBS saliency w² / [U]ⱼⱼ² are kept in each row and the other M − N
/// pruned, where U is the upper Cholesky factor of H⁻¹ (H⁻¹ = UᵀU) and w the current, already
/// updated, weights. Pruning column i sets wᵢ to 0 and moves its error δ = wᵢ / Uᵢᵢ onto the
/// columns to its right, w[i...] −= δ · U[i, i...] (the OBS update restricted to the columns not
/// yet visited). Within a block of `blockSize` columns the update is applied at once; the columns
/// after the block receive the block's accumulated errors in one pass (the paper's lazy batch
/// update), which is the same arithmetic ordered for the cache.
///
/// Preparation, as in the paper's code: an input that never fired (Hⱼⱼ = 0) gets Hⱼⱼ = 1 and its
/// column of W is zeroed (it cannot matter for the loss); then `damp · mean(diag H)` is added to
/// the diagonal. Each row is independent of the others given U.
struct SparseGPT {
    /// U, the upper Cholesky factor of the dampened H⁻¹, and the dead inputs.
    struct InverseHessianFactor: Sendable {
        let k: Int
        /// Row-major K×K; the strict lower triangle is 0.
        let u: [Double]
        let dead: [Bool]
    }

    enum Failure: Error, Equatable {
        /// The dampened Hessian is not positive definite (or holds a NaN or an infinity).
        case notPositiveDefinite(pivot: Int)
    }

    /// Computes U from H (row-major K×K, symmetric). The upper Cholesky factor of H⁻¹ is obtained
    /// without forming H⁻¹: with J the reversal permutation, factor JHJ = RᵀR (upper Cholesky);
    /// then H = (JRᵀJ)(JRJ), so H⁻¹ = (J R⁻¹ J)(J R⁻ᵀ J) = UᵀU with U = J R⁻ᵀ J, which is upper
    /// triangular with a positive diagonal and hence *the* upper Cholesky factor of H⁻¹.
    /// One factorization and one triangular inverse (K³/3 multiply-adds) instead of the
    /// factor-invert-factor of the reference code (2K³/3); the result is the same matrix.
    static func factor(hessian h: [Float], k: Int, damp: Double) throws(Failure) -> InverseHessianFactor {
        var dead = [Bool](repeating: false, count: k)
        var diagonal = [Double](repeating: 0, count: k)
        for j in 0..<k {
            let d = Double(h[j * k + j])
            dead[j] = d == 0
            diagonal[j] = dead[j] ? 1 : d
        }
        let dampening = k == 0 ? 0 : damp * diagonal.reduce(0, +) / Double(k)
        // B = J H J (upper triangle), dead diagonal set to 1, dampened.
        var b = [Double](repeating: 0, count: k * k)
        for a in 0..<k {
            let hr = k - 1 - a
            for c in a..<k { b[a * k + c] = Double(h[hr * k + (k - 1 - c)]) }
            b[a * k + a] = diagonal[hr] + dampening
        }
        var x = [Double](repeating: 0, count: k * k)
        let failedPivot: Int? = b.withUnsafeMutableBufferPointer { bp in
            guard let base = bp.baseAddress else { return nil }
            if let p = Cholesky.factorUpper(base, n: k) { return p }
            x.withUnsafeMutableBufferPointer { xp in
                if let xb = xp.baseAddress { Cholesky.invertUpper(base, into: xb, n: k) }
            }
            return nil
        }
        if let p = failedPivot { throw .notPositiveDefinite(pivot: k - 1 - p) }
        // U[a, c] = X[K−1−c, K−1−a] for a ≤ c.
        var u = [Double](repeating: 0, count: k * k)
        for a in 0..<k {
            let xc = k - 1 - a
            for c in a..<k { u[a * k + c] = x[(k - 1 - c) * k + xc] }
        }
        return InverseHessianFactor(k: k, u: u, dead: dead)
    }

    /// Prunes `weights` (row-major `rows × K`) to `pattern` in place; K must be a multiple of M.
    static func prune(_ weights: inout [Float], rows: Int, factor: InverseHessianFactor, pattern: NMPattern, blockSize: Int) {
        let k = factor.k, m = pattern.m
        guard rows > 0, k > 0 else { return }
        // Blocks hold whole groups, so a group's mask is chosen from fully updated weights.
        let block = max(1, (blockSize + m - 1) / m) * m
        var w = weights.map(Double.init)
        for j in 0..<k where factor.dead[j] { for r in 0..<rows { w[r * k + j] = 0 } }
        var errors = [Double](repeating: 0, count: rows * block)
        var saliency = [Double](repeating: 0, count: m)
        factor.u.withUnsafeBufferPointer { up in
            w.withUnsafeMutableBufferPointer { wp in
                errors.withUnsafeMutableBufferPointer { ep in
                    saliency.withUnsafeMutableBufferPointer { sp in
                        guard let u = up.baseAddress, let w = wp.baseAddress, let e = ep.baseAddress,
                              let s = sp.baseAddress else { return }
                        var i1 = 0
                        while i1 < k {
                            let i2 = min(i1 + block, k)
                            for r in 0..<rows {
                                pruneBlock(row: w + r * k, errors: e + r * block, u: u, k: k, i1: i1, i2: i2,
                                           pattern: pattern, saliency: s)
                            }
                            propagate(w: w, rows: rows, errors: e, block: block, u: u, k: k, i1: i1, i2: i2)
                            i1 = i2
                        }
                    }
                }
            }
        }
        for i in weights.indices { weights[i] = Float(w[i]) }
    }

    /// Columns i1..<i2 of one row: choose each group's mask, prune, update the rest of the block,
    /// and record the scaled errors δ for the columns after the block.
    @inline(__always)
    private static func pruneBlock(row w: UnsafeMutablePointer<Double>, errors e: UnsafeMutablePointer<Double>,
                                   u: UnsafePointer<Double>, k: Int, i1: Int, i2: Int, pattern: NMPattern,
                                   saliency s: UnsafeMutablePointer<Double>) {
        let m = pattern.m
        var kept: UInt32 = 0
        for i in i1..<i2 {
            let g = (i - i1) % m
            if g == 0 {
                for j in 0..<m {
                    let d = u[(i + j) * k + i + j]
                    s[j] = w[i + j] * w[i + j] / (d * d)
                }
                kept = NMSelection.keep(pattern.n, of: UnsafePointer(s), count: m)
            }
            if kept & (1 << UInt32(g)) != 0 {
                e[i - i1] = 0
                continue
            }
            let rowU = u + i * k
            let delta = w[i] / rowU[i]
            e[i - i1] = delta
            w[i] = 0
            if delta != 0 {
                for j in (i + 1)..<max(i + 1, i2) { w[j] -= delta * rowU[j] }
            }
        }
    }

    /// W[:, i2...] −= E · U[i1..<i2, i2...], tiled so a tile of U's rows stays in cache while the
    /// rows of W stream past it.
    private static func propagate(w: UnsafeMutablePointer<Double>, rows: Int, errors e: UnsafeMutablePointer<Double>,
                                  block: Int, u: UnsafePointer<Double>, k: Int, i1: Int, i2: Int) {
        let tile = 512
        var c0 = i2
        while c0 < k {
            let c1 = min(c0 + tile, k)
            for r in 0..<rows {
                let row = w + r * k
                for i in i1..<i2 {
                    let delta = e[r * block + i - i1]
                    if delta == 0 { continue }
                    let rowU = u + i * k
                    for j in c0..<c1 { row[j] -= delta * rowU[j] }
                }
            }
            c0 = c1
        }
    }
}
