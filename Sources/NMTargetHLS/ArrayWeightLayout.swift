import NMIR

/// A 4-bit weight matrix in N:M form: per row, N kept values of every M columns with their
/// indices (dense: every value, the index being the column's place among the PE's lanes).
public struct IntegerWeights: Sendable {
    public let rows: Int
    public let columns: Int
    public let pattern: PEPattern
    /// `rows × kept` values, −8 … 7.
    public var values: [Int8]
    /// `rows × kept` indices within their N:M group, 0 ..< M.
    public var indices: [UInt8]

    public var kept: Int { columns / pattern.m * pattern.n }

    public init(rows: Int, columns: Int, pattern: PEPattern, values: [Int8], indices: [UInt8]) {
        self.rows = rows
        self.columns = columns
        self.pattern = pattern
        self.values = values
        self.indices = indices
    }

    /// Reads a packed `quant.packed<RxCxi4, …>` weight (ir-specs/README.md § Storage layout).
    public init(packed type: PackedWeightType, bytes: [UInt8], denseLanes: Int) throws(HLSError) {
        guard type.bits == 4 else { throw HLSError("the HLS array takes 4-bit weights, got \(type)") }
        guard !type.zeroPoint else { throw HLSError("the HLS array takes symmetric INT4 weights (no zero points), got \(type)") }
        guard bytes.count == WeightStore.storageByteCount(of: .packed(type)) else {
            throw HLSError("\(type) needs \(WeightStore.storageByteCount(of: .packed(type)) ?? 0) bytes, got \(bytes.count)")
        }
        let pattern = try PEPattern(type.nm, denseLanes: denseLanes)
        guard type.columns % pattern.m == 0 else {
            throw HLSError("\(type): \(type.columns) columns are not a multiple of the PE's \(pattern.m) lanes")
        }
        let count = type.rows * type.keptPerRow
        var values = [Int8](repeating: 0, count: count), indices = [UInt8](repeating: 0, count: count)
        for i in 0..<count {
            let nibble = bytes[i >> 1] >> (UInt8(i & 1) * 4) & 0xF
            values[i] = Int8(nibble >= 8 ? Int(nibble) - 16 : Int(nibble))
        }
        if let nm = type.nm {
            let width = pattern.indexBits, start = (count * 4 + 7) / 8 * 8
            for i in 0..<count {
                var v = 0
                for b in 0..<width where bytes[(start + i * width + b) >> 3] >> ((start + i * width + b) & 7) & 1 == 1 { v |= 1 << b }
                guard v < nm.m else { throw HLSError("\(type): index \(v) ≥ M in row \(i / type.keptPerRow)") }
                indices[i] = UInt8(v)
            }
        } else {
            for i in 0..<count { indices[i] = UInt8(i % type.columns % pattern.m) }
        }
        self.init(rows: type.rows, columns: type.columns, pattern: pattern, values: values, indices: indices)
    }

    /// The weight at row `r`, column `c` (0 where pruned).
    public func value(row r: Int, column c: Int) -> Int {
        let group = c / pattern.m
        for n in 0..<pattern.n {
            let slot = r * kept + group * pattern.n + n
            if Int(indices[slot]) == c % pattern.m { return Int(values[slot]) }
        }
        return 0
    }
}

/// The weight stream the kernel reads: for each tile (row tile outer, fold inner), `rows` beats,
/// one per PE row; a beat holds the PE row's `cols` slots, each slot N values (4 bits) then N
/// indices (⌈log2 M⌉ bits), lowest bits first, padded to 64-bit words. Rows beyond R and idle PE
/// columns hold zeros. Beside it, the f32 scale of every (tile, PE row, segment), 0 where idle.
public struct ArrayWeightLayout: Sendable {
    public let words: [UInt64]
    public let scales: [Float]

    public init(weights w: IntegerWeights, scales: [Float], group: Int, model: SystolicArrayModel) throws(HLSError) {
        let layer = LayerShape(rows: w.rows, columns: w.columns, group: group, tokens: 1)
        let plan = try model.plan(layer)
        let p = model.array.rows, q = model.array.cols, pat = w.pattern
        let rowTiles = ceilDiv(w.rows, p), beatWords = model.beatBytes / 8
        let groups = ceilDiv(w.columns, group)
        guard scales.count == w.rows * groups else { throw HLSError("expected \(w.rows * groups) scales, got \(scales.count)") }
        var words = [UInt64](repeating: 0, count: rowTiles * plan.folds * p * beatWords)
        var tileScales = [Float](repeating: 0, count: rowTiles * plan.folds * p * plan.segmentsPerFold)
        for rt in 0..<rowTiles {
            for f in 0..<plan.folds {
                let tile = rt * plan.folds + f
                for i in 0..<p where rt * p + i < w.rows {
                    let r = rt * p + i
                    var bit = (tile * p + i) * beatWords * 64
                    func put(_ v: Int, _ width: Int) {
                        for b in 0..<width where v >> b & 1 == 1 { words[(bit + b) >> 6] |= 1 << UInt64((bit + b) & 63) }
                        bit += width
                    }
                    for j in 0..<q {
                        guard let k = plan.group(fold: f, column: j) else { bit += pat.slotBits; continue }
                        let base = r * w.kept + k * pat.n
                        for n in 0..<pat.n { put(Int(w.values[base + n]) & 0xF, 4) }
                        for n in 0..<pat.n { put(Int(w.indices[base + n]), pat.indexBits) }
                    }
                    for s in 0..<plan.segmentsPerFold {
                        guard let c = plan.chunk(fold: f, segment: s) else { continue }
                        tileScales[(tile * p + i) * plan.segmentsPerFold + s] = scales[r * groups + c.weightGroup]
                    }
                }
            }
        }
        self.words = words
        self.scales = tileScales
    }
}
