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
/// Act-order (`actOrder`, the reference code's `desc_act` with `static_groups`): the columns are
/// visited in order of decreasing `H[j, j]`, the inputs that carry the most energy first, so that
/// their errors can still be spread over the many columns left and no column with a large
/// Hessian weight absorbs the accumulated updates of the others. H is permuted the same way
/// before step 2. The groups stay groups of consecutive *stored* columns: every group's scale
/// (and zero point) is computed before the loop from the original weights (after step 1), and a
/// column is rounded on the grid of the group it belongs to, so the stored format, the
/// dequantization and RTN's grid rules are unchanged (no `g_idx`): the static parameters are
/// RTN's. On SmolLM2-135M act-order is what makes GPTQ beat RTN: in storage order the columns of
/// the massive-activation inputs absorb the updates of the columns before them, which is error
/// for the attention-sink token, whose input is almost only those dimensions (docs/compression.md).
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
    /// Visit columns in order of decreasing Hessian diagonal, with static groups.
    public var actOrder: Bool

    public init(quantizer: GroupQuantizer, damp: Double = 0.01, blocksize: Int = 128, actOrder: Bool = false) {
        self.quantizer = quantizer
        self.damp = damp
        self.blocksize = blocksize
        self.actOrder = actOrder
    }

    /// What steps 1–2 leave for step 3: the order in which columns are visited and U for H
    /// permuted to that order (`inverse.dead[i]` is about column `order[i]`).
    struct Factor: Sendable {
        /// `order[i]` is the stored column visited i-th; nil: storage order.
        let order: [Int]?
        let inverse: SparseGPT.InverseHessianFactor
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

    /// Steps 1–2 for a Hessian: the visiting order, the dead inputs and U. Weights that read the
    /// same input (q, k and v; gate and up) have the same Hessian and can share it.
    func factor(hessian: [Float], columns n: Int) throws(Failure) -> Factor {
        var order: [Int]? = nil
        var permuted = hessian
        if actOrder {
            let visit = Self.actOrder(hessian: hessian, columns: n)
            for a in 0..<n {
                for c in 0..<n { permuted[a * n + c] = hessian[visit[a] * n + visit[c]] }
            }
            order = visit
        }
        // The same preparation as SparseGPT's.
        do {
            return Factor(order: order, inverse: try SparseGPT.factor(hessian: permuted, k: n, damp: damp))
        } catch {
            switch error {
            case .notPositiveDefinite(let pivot): throw .notPositiveDefinite(column: order?[pivot] ?? pivot)
            }
        }
    }

    /// The columns by decreasing `H[j, j]` (a dead input counting as 1, as after step 1), ties in
    /// storage order.
    static func actOrder(hessian: [Float], columns n: Int) -> [Int] {
        let diagonal = (0..<n).map { j in hessian[j * n + j] == 0 ? 1 : hessian[j * n + j] }
        return (0..<n).sorted { diagonal[$0] > diagonal[$1] || (diagonal[$0] == diagonal[$1] && $0 < $1) }
    }

    /// Step 3 with a factor from `factor(hessian:columns:)`.
    func quantize(_ weights: [Double], rows: Int, columns: Int, factor: Factor, kept: [Bool]?) -> GroupQuantized {
        let n = columns
        var w = weights
        for i in 0..<n where factor.inverse.dead[i] {
            let j = factor.order?[i] ?? i
            for r in 0..<rows { w[r * n + j] = 0 }
        }
        let u = factor.inverse.u
        var result = GroupQuantized(rows: rows, columns: columns, groupsPerRow: quantizer.groups(columns: columns),
                                    zeroPoints: !quantizer.symmetric)
        // Act-order: static groups from the weights as step 1 left them, then the columns (and
        // the N:M mask) permuted to the visiting order.
        var groupParameters: [GroupQuantizer.Parameters]? = nil
        var keptInOrder = kept
        if let order = factor.order {
            // RTN's parameters of the same weights: the very grid RTN would use.
            let rtn = quantizer.quantizeRTN(w, rows: rows, columns: n, kept: kept)
            result.scales = rtn.scales
            result.zeros = rtn.zeros
            groupParameters = rtn.scales.indices.map { GroupQuantizer.Parameters(scale: rtn.scales[$0], zero: Int(rtn.zeros?[$0] ?? 0)) }
            var permuted = w
            for r in 0..<rows { for i in 0..<n { permuted[r * n + i] = w[r * n + order[i]] } }
            w = permuted
            if let kept {
                var k = kept
                for r in 0..<rows { for i in 0..<n { k[r * n + i] = kept[r * n + order[i]] } }
                keptInOrder = k
            }
        }
        // 3. Column by column, in tiles of rows.
        let tile = 32
        let tiles = (rows + tile - 1) / tile
        let blocks = groupParameters == nil ? blockBoundaries(columns: columns) : Self.blocks(columns: columns, size: blocksize)
        w.withUnsafeBufferPointer { wp in
            u.withUnsafeBufferPointer { up in
                result.q.withUnsafeMutableBufferPointer { qp in
                    result.scales.withUnsafeMutableBufferPointer { sp in
                        withOptionalMutableBuffer(&result.zeros) { zp in
                            withOptionalBuffer(keptInOrder) { kp in
                            withOptionalBuffer(factor.order) { op in
                            withOptionalBuffer(groupParameters) { gp in
                                let shared = TileBuffers(w: wp, u: up, q: qp, scales: sp, zeros: zp, kept: kp, order: op, groupParameters: gp)
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

    /// Blocks of `size` columns (with static groups no group constrains them).
    static func blocks(columns: Int, size: Int) -> [Range<Int>] {
        stride(from: 0, to: columns, by: max(size, 1)).map { $0..<min($0 + max(size, 1), columns) }
    }

    /// What the tiles share: each tile writes only its own rows of `q`, `scales` and `zeros`.
    /// `w` and `kept` are in visiting order; `q`, `scales` and `zeros` in storage order.
    private struct TileBuffers: @unchecked Sendable {
        let w: UnsafeBufferPointer<Double>
        let u: UnsafeBufferPointer<Double>
        let q: UnsafeMutableBufferPointer<Int8>
        let scales: UnsafeMutableBufferPointer<Float>
        let zeros: UnsafeMutableBufferPointer<Int8>?
        let kept: UnsafeBufferPointer<Bool>?
        /// Act-order: the stored column of each visited one, and the static parameters of every
        /// (row, group), row-major.
        let order: UnsafeBufferPointer<Int>?
        let groupParameters: UnsafeBufferPointer<GroupQuantizer.Parameters>?
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
                        if let order = b.order, let table = b.groupParameters {
                            let g = order[i] / group
                            for k in 0..<t { parameters[k] = table[(r0 + k) * groupsPerRow + g] }
                        } else if i % group == 0 {
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
                                b.q[(r0 + k) * n + (b.order?[i] ?? i)] = Int8(q)
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

func withOptionalBuffer<T, R>(_ array: [T]?, _ body: (UnsafeBufferPointer<T>?) -> R) -> R {
    guard let array else { return body(nil) }
    return array.withUnsafeBufferPointer { body($0) }
}
