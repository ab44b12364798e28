import Dispatch
import NMIR

/// GPTQ (Frantar et al., "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
/// Transformers", 2022): quantizes a weight `W [R, C]` column by column and, after each column,
/// moves its quantization error onto the columns not quantized yet, weighted by the inverse
/// Hessian `H = Σ x xᵀ` of the layer's inputs, so that ‖(W − Ŵ) X‖ rather than ‖W − Ŵ‖ is small.
///
/// The steps, as in the paper:
///
/// 1. Dead inputs (`H[j, j] = 0`: column j never sees a non-zero input) get `H[j, j] = 1` and
///    their weights are set to 0. Dampening adds `damp · mean(diag H)` to the diagonal.
/// 2. `U`, the upper Cholesky factor of `H⁻¹` (`H⁻¹ = Uᵀ U`), holds in row `i` the update
///    directions for column `i` given that columns `< i` are fixed. Steps 1 and 2 are
///    SparseGPT's preparation too, so `SparseGPT.factor` does them (one Cholesky factorization
///    and one triangular inverse, without forming `H⁻¹`).
/// 3. For each column `i`: quantize (a group's scale and zero point are computed when the group
///    starts, from the weights as the errors of earlier columns have left them), `err = (w − ŵ) / U[i, i]`,
///    `w[:, k] −= err · U[i, k]` for `k > i`. Updates beyond the current block of `blocksize`
///    columns are batched ("lazy batch updates") and applied when the block ends. A block also
///    ends where a group starts that would reach past it, so that every group's parameters see
///    all the updates owed to it.
///
/// With an N:M weight, positions not kept stay exactly 0: they are never quantized (q = 0), carry
/// no error and take no part in their group's scale, so errors propagate only into kept weights
/// (what lands on a pruned position is discarded, as if the mask were re-applied after every update).
///
/// Rows are independent given `U`; they are processed in tiles of rows (the tile's weights stay
/// in cache while `U` streams by), the tiles spread over the cores. Everything accumulates in Double.
public struct GPTQ: Sendable {
    public var quantizer: GroupQuantizer
    /// Fraction of the mean diagonal added to the diagonal of H.
    public var damp: Double
    /// Columns per lazy-update block.
    public var blocksize: Int

    public init(quantizer: GroupQuantizer, damp: Double = 0.01, blocksize: Int = 128) {
        self.quantizer = quantizer
        self.damp = damp
        self.blocksize = blocksize
    }

    public enum Failure: Error, Sendable, Equatable {
        /// The dampened Hessian is not positive definite (its Cholesky factorization broke down at `column`).
        case notPositiveDefinite(column: Int)
    }

    /// Quantizes `weights` (`rows × columns`, row-major) with the Hessian `hessian` (`columns ×
    /// columns`, row-major, symmetric). `kept` (N:M) marks the positions that may be non-zero.
    public func quantize(_ weights: [Double], rows: Int, columns: Int, hessian: [Float], kept: [Bool]? = nil) throws(Failure) -> GroupQuantized {
        quantize(weights, rows: rows, columns: columns, factor: try factor(hessian: hessian, columns: columns), kept: kept)
    }

    /// Steps 1–2 for a Hessian: the dead inputs and U. Weights that read the same input (q, k
    /// and v; gate and up) have the same Hessian and can share it.
    func factor(hessian: [Float], columns: Int) throws(Failure) -> SparseGPT.InverseHessianFactor {
        // The same preparation as SparseGPT's.
        do {
            return try SparseGPT.factor(hessian: hessian, k: columns, damp: damp)
        } catch {
            switch error {
            case .notPositiveDefinite(let pivot): throw .notPositiveDefinite(column: pivot)
            }
        }
    }

    /// Step 3 with a factor from `factor(hessian:columns:)`.
    func quantize(_ weights: [Double], rows: Int, columns: Int, factor: SparseGPT.InverseHessianFactor, kept: [Bool]?) -> GroupQuantized {
        let n = columns
        var w = weights
        for j in 0..<n where factor.dead[j] { for r in 0..<rows { w[r * n + j] = 0 } }
        let u = factor.u
        // 3. Column by column, in tiles of rows.
        var result = GroupQuantized(rows: rows, columns: columns, groupsPerRow: quantizer.groups(columns: columns),
                                    zeroPoints: !quantizer.symmetric)
        let tile = 32
        let tiles = (rows + tile - 1) / tile
        let blocks = blockBoundaries(columns: columns)
        w.withUnsafeBufferPointer { wp in
            u.withUnsafeBufferPointer { up in
                result.q.withUnsafeMutableBufferPointer { qp in
                    result.scales.withUnsafeMutableBufferPointer { sp in
                        withOptionalMutableBuffer(&result.zeros) { zp in
                            withOptionalBuffer(kept) { kp in
                                let shared = TileBuffers(w: wp, u: up, q: qp, scales: sp, zeros: zp, kept: kp)
                                let work: @Sendable (Int) -> Void = { t in
                                    let r0 = t * tile
                                    self.quantizeTile(rows: r0..<min(r0 + tile, rows), columns: columns, blocks: blocks, shared)
                                }
                                if tiles > 1, rows * columns * columns > 1 << 22 {
                                    DispatchQueue.concurrentPerform(iterations: tiles, execute: work)
                                } else {
                                    for t in 0..<tiles { work(t) }
                                }
                            }
                        }
                    }
                }
            }
        }
        return result
    }

    /// Where lazy-update blocks start and end: every `blocksize` columns, and before a group
    /// start that would otherwise reach past its block's end.
    func blockBoundaries(columns: Int) -> [Range<Int>] {
        let g = quantizer.group
        var blocks: [Range<Int>] = []
        var i1 = 0
        while i1 < columns {
            var i2 = min(i1 + max(blocksize, 1), columns)
            let lastStart = (i2 - 1) / g * g
            if lastStart > i1, min(lastStart + g, columns) > i2 { i2 = lastStart }
            blocks.append(i1..<i2)
            i1 = i2
        }
        return blocks
    }

    /// What the tiles share: each tile writes only its own rows of `q`, `scales` and `zeros`.
    private struct TileBuffers: @unchecked Sendable {
        let w: UnsafeBufferPointer<Double>
        let u: UnsafeBufferPointer<Double>
        let q: UnsafeMutableBufferPointer<Int8>
        let scales: UnsafeMutableBufferPointer<Float>
        let zeros: UnsafeMutableBufferPointer<Int8>?
        let kept: UnsafeBufferPointer<Bool>?
    }

    /// Runs the column loop on some rows: their weights are copied, updated and quantized.
    private func quantizeTile(rows: Range<Int>, columns n: Int, blocks: [Range<Int>], _ b: TileBuffers) {
        let t = rows.count, r0 = rows.lowerBound
        let group = quantizer.group, groupsPerRow = quantizer.groups(columns: n)
        var tileWeights = [Double](UnsafeBufferPointer(rebasing: b.w[r0 * n..<(r0 + t) * n]))
        let widest = blocks.map(\.count).max() ?? 0
        var errors = [Double](repeating: 0, count: t * widest)
        var parameters = [GroupQuantizer.Parameters](repeating: .init(scale: 1, zero: 0), count: t)
        guard let u = b.u.baseAddress else { return }
        tileWeights.withUnsafeMutableBufferPointer { tileBuffer in
            errors.withUnsafeMutableBufferPointer { errorBuffer in
                guard let wt = tileBuffer.baseAddress, let err = errorBuffer.baseAddress else { return }
                for block in blocks {
                    let i1 = block.lowerBound, i2 = block.upperBound, width = block.count
                    for i in block {
                        if i % group == 0 {
                            let count = min(group, n - i)
                            for k in 0..<t {
                                let values = UnsafeBufferPointer(start: wt + k * n + i, count: count)
                                let mask = b.kept.map { UnsafeBufferPointer(rebasing: $0[(r0 + k) * n + i..<(r0 + k) * n + i + count]) }
                                let p = quantizer.parameters(of: values, kept: mask)
                                parameters[k] = p
                                let g = (r0 + k) * groupsPerRow + i / group
                                b.scales[g] = p.scale
                                b.zeros?[g] = Int8(p.zero)
                            }
                        }
                        let d = u[i * n + i]
                        for k in 0..<t {
                            let row = wt + k * n
                            var e = 0.0
                            if b.kept?[(r0 + k) * n + i] ?? true {
                                let q = quantizer.quantize(row[i], parameters[k])
                                b.q[(r0 + k) * n + i] = Int8(q)
                                e = (row[i] - quantizer.dequantize(q, parameters[k])) / d
                            }
                            err[k * width + (i - i1)] = e
                            if e != 0 { subtractScaled(row + i + 1, e, u + i * n + i + 1, count: i2 - i - 1) }
                        }
                    }
                    // The block's errors, applied to the columns after it all at once: four rows
                    // of U per sweep over the tile, so each weight is loaded and stored once per
                    // four multiply-adds (the tile's rows stay in L2, the four U rows in L1).
                    guard i2 < n else { continue }
                    let count = n - i2
                    var j = 0
                    while j + 4 <= width {
                        let u0 = u + (i1 + j) * n + i2
                        for k in 0..<t {
                            let e = err + k * width + j
                            subtractScaled4(wt + k * n + i2, e[0], e[1], e[2], e[3], u0, u0 + n, u0 + 2 * n, u0 + 3 * n, count: count)
                        }
                        j += 4
                    }
                    while j < width {
                        let u0 = u + (i1 + j) * n + i2
                        for k in 0..<t {
                            let e = err[k * width + j]
                            if e != 0 { subtractScaled(wt + k * n + i2, e, u0, count: count) }
                        }
                        j += 1
                    }
                }
            }
        }
    }
}

/// `y[0..<count] −= a · x[0..<count]`.
@inline(__always)
private func subtractScaled(_ y: UnsafeMutablePointer<Double>, _ a: Double, _ x: UnsafePointer<Double>, count: Int) {
    for c in 0..<count { y[c] -= a * x[c] }
}

/// `y −= a0 · x0 + a1 · x1 + a2 · x2 + a3 · x3` over `count` elements.
@inline(__always)
private func subtractScaled4(_ y: UnsafeMutablePointer<Double>, _ a0: Double, _ a1: Double, _ a2: Double, _ a3: Double,
                             _ x0: UnsafePointer<Double>, _ x1: UnsafePointer<Double>, _ x2: UnsafePointer<Double>,
                             _ x3: UnsafePointer<Double>, count: Int) {
    for c in 0..<count { y[c] -= (a0 * x0[c] + a1 * x1[c]) + (a2 * x2[c] + a3 * x3[c]) }
}

private func withOptionalMutableBuffer<T, R>(_ array: inout [T]?, _ body: (UnsafeMutableBufferPointer<T>?) -> R) -> R {
    guard var contents = array else { return body(nil) }
    array = nil  // moved out and back, so the buffer is not copied
    defer { array = contents }
    return contents.withUnsafeMutableBufferPointer { body($0) }
}

private func withOptionalBuffer<T, R>(_ array: [T]?, _ body: (UnsafeBufferPointer<T>?) -> R) -> R {
    guard let array else { return body(nil) }
    return array.withUnsafeBufferPointer { body($0) }
}
