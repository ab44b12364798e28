/// Cycles of one linear layer on the systolic array, in closed form (docs/fpga.md derives it;
/// `SystolicArraySimulator` steps the same machine cycle by cycle and must agree exactly).
///
/// The machine: weights stay in the PEs for one *tile* (`rows` output rows × one fold of the
/// input); the T tokens' activations flow down the PE columns, skewed by one cycle per column,
/// and partial sums flow right along the PE rows, so a tile takes
///
///     Ct = T + rows + cols − 2       cycles (token T−1 leaves PE(rows−1, cols−1) last)
///
/// Each PE holds a second (shadow) weight register: the next tile's weights stream in from
/// memory while the current tile computes, taking
///
///     Lw = ⌈(rows · beatBytes + rows · segments · 4) / B⌉     cycles (weights, indices, f32 scales)
///
/// at B bytes per cycle. Loading the shadow can start once its tile became active, and the next
/// tile starts once the array has drained and its weights are in. Before the first tile the
/// activations are read (⌈T · C / B⌉ cycles). With K = ⌈R / rows⌉ · folds tiles:
///
///     cycles = ⌈T·C / B⌉ + Lw + Ct + (K − 1) · max(Lw, Ct)
///
/// A layer is *bandwidth-bound* when Lw > Ct: its weights cannot stream as fast as the array
/// consumes them.
public struct SystolicArrayModel: Sendable {
    public let array: ArrayShape
    public let pattern: PEPattern
    /// Memory bytes per clock cycle.
    public let bytesPerCycle: Int

    public init(array: ArrayShape, pattern: PEPattern, bytesPerCycle: Int) throws(HLSError) {
        guard bytesPerCycle >= 1 else { throw HLSError("memory bandwidth must be at least 1 byte per cycle") }
        self.array = array
        self.pattern = pattern
        self.bytesPerCycle = bytesPerCycle
    }

    /// Bytes of one PE row's weights in the stream: `cols` PE slots, padded to 64-bit words.
    public var beatBytes: Int { (array.cols * pattern.slotBits + 63) / 64 * 8 }

    public struct LayerCycles: Sendable, Equatable {
        public var tiles: Int
        public var folds: Int
        public var activationLoad: Int
        public var tileLoad: Int
        public var tileCompute: Int
        public var total: Int
        public var bandwidthBound: Bool { tileLoad > tileCompute }
        /// Multiply-accumulates the PEs do, over the cycles × multipliers they have.
        public var macs: Int
    }

    public func plan(_ layer: LayerShape) throws(HLSError) -> FoldPlan {
        try FoldPlan(layer: layer, pattern: pattern, cols: array.cols)
    }

    public func tileBytes(_ plan: FoldPlan) -> Int { array.rows * beatBytes + array.rows * plan.segmentsPerFold * 4 }

    public func cycles(_ layer: LayerShape) throws(HLSError) -> LayerCycles {
        let plan = try plan(layer)
        let tiles = (layer.rows + array.rows - 1) / array.rows * plan.folds
        let load = ceilDiv(tileBytes(plan), bytesPerCycle)
        let compute = layer.tokens + array.rows + array.cols - 2
        let xLoad = ceilDiv(layer.tokens * layer.columns, bytesPerCycle)
        let total = xLoad + load + compute + (tiles - 1) * max(load, compute)
        let macs = layer.tokens * layer.rows * layer.columns / pattern.m * pattern.n
        return LayerCycles(tiles: tiles, folds: plan.folds, activationLoad: xLoad, tileLoad: load, tileCompute: compute,
                           total: total, macs: macs)
    }
}

func ceilDiv(_ a: Int, _ b: Int) -> Int { (a + b - 1) / b }
