/// How a layer's input dimension is folded onto the array's PE columns.
///
/// PE column j of a fold takes one N:M group (M consecutive input columns) of every output row.
/// Partial sums run along a PE row; since every weight group (G input columns) has its own scale,
/// a sum must not mix two weight groups. So the PE columns are cut into *segments* of S columns,
/// each ending in its own output, S = min(G / M, cols): a segment holds (a piece of) one weight
/// group. A fold packs ⌊cols / S⌋ segments; the pieces (*chunks*) of the weight groups, in input
/// order, fill the folds' segments one after another.
///
///     G = 128, M = 8, cols = 32:  S = 16, 2 segments per fold, each one weight group
///     G = 128, M = 1 (dense), cols = 32:  S = 32, each weight group is 4 chunks in 4 folds
public struct FoldPlan: Sendable, Equatable {
    /// A piece of one weight group that one segment computes.
    public struct Chunk: Sendable, Equatable {
        /// The weight group (its scale's column).
        public var weightGroup: Int
        /// The first N:M group (input columns M·firstGroup ..< M·(firstGroup + count)).
        public var firstGroup: Int
        public var count: Int
    }

    public let pattern: PEPattern
    public let cols: Int
    public let segmentWidth: Int
    public let segmentsPerFold: Int
    public let chunks: [Chunk]

    public init(layer: LayerShape, pattern: PEPattern, cols: Int) throws(HLSError) {
        let m = pattern.m
        guard layer.columns % m == 0 else {
            throw HLSError("layer \(layer): \(layer.columns) input columns are not a multiple of M = \(m) (\(pattern))")
        }
        guard layer.group % m == 0 else {
            throw HLSError("layer \(layer): weight group \(layer.group) is not a multiple of M = \(m) (\(pattern)); a PE's group must not straddle two scales")
        }
        let perWeightGroup = layer.group / m
        let width = min(perWeightGroup, cols)
        var chunks: [Chunk] = []
        let totalGroups = layer.columns / m
        var g = 0
        while g * perWeightGroup < totalGroups {
            let start = g * perWeightGroup, end = min(start + perWeightGroup, totalGroups)
            var first = start
            while first < end {
                chunks.append(Chunk(weightGroup: g, firstGroup: first, count: min(width, end - first)))
                first += width
            }
            g += 1
        }
        self.pattern = pattern
        self.cols = cols
        self.segmentWidth = width
        self.segmentsPerFold = cols / width
        self.chunks = chunks
    }

    public var folds: Int { (chunks.count + segmentsPerFold - 1) / segmentsPerFold }

    /// The chunk that segment `segment` of fold `fold` computes, nil when it idles.
    public func chunk(fold: Int, segment: Int) -> Chunk? {
        guard segment < segmentsPerFold else { return nil }
        let i = fold * segmentsPerFold + segment
        return i < chunks.count ? chunks[i] : nil
    }

    /// The N:M group PE column `column` takes in fold `fold`, nil when it idles.
    public func group(fold: Int, column: Int) -> Int? {
        guard let c = chunk(fold: fold, segment: column / segmentWidth) else { return nil }
        let offset = column % segmentWidth
        return offset < c.count ? c.firstGroup + offset : nil
    }

    /// Whether PE column `column` ends a segment (its partial sum leaves the array).
    public func endsSegment(_ column: Int) -> Bool { column % segmentWidth == segmentWidth - 1 && column / segmentWidth < segmentsPerFold }
}
