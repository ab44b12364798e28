/// The systolic array stepped one clock cycle at a time, registers and all: a memory loader
/// moving B bytes per cycle (the activations, then each tile's weights into the PEs' shadow
/// registers), a controller that starts a tile when the array has drained and the tile's weights
/// are in, and the PE grid, where activations move down one PE per cycle and partial sums move
/// right. It checks `SystolicArrayModel`'s formula (the cycle counts must be equal) and the
/// dataflow (the segment sums must equal the integer products).
public struct SystolicArraySimulator: Sendable {
    public let model: SystolicArrayModel

    public init(model: SystolicArrayModel) { self.model = model }

    public struct Result: Sendable {
        public var cycles: Int
        /// Integer sums per token, output row and weight group: `[T][R][groups]`, row-major.
        public var sums: [Int]
    }

    /// Runs a layer: `xq` holds the T × C integer activations, row-major.
    public func run(layer: LayerShape, weights w: IntegerWeights, activations xq: [Int]) throws(HLSError) -> Result {
        let plan = try model.plan(layer)
        let p = model.array.rows, q = model.array.cols, pat = model.pattern, t = layer.tokens
        let groups = ceilDiv(layer.columns, layer.group)
        let tiles = ceilDiv(layer.rows, p) * plan.folds
        let computeCycles = t + p + q - 2
        let tileBytes = model.tileBytes(plan)
        var sums = [Int](repeating: 0, count: t * layer.rows * groups)

        // Loader and controller state.
        var activationBytesLeft = t * layer.columns
        var nextLoad = 0, loadBytesLeft = tileBytes
        var shadowFull = false
        var active: Int? = nil, tileCycle = 0, finished = 0
        // PE registers: the activations a PE passes down, and its partial sum.
        var actReg = [[Int]](repeating: [Int](repeating: 0, count: pat.m), count: p * q)
        var psumReg = [Int](repeating: 0, count: p * q)

        var cycle = 0
        while finished < tiles {
            if active == nil, shadowFull {
                active = nextLoad - 1
                shadowFull = false
                tileCycle = 0
            }
            if let tile = active {
                let rt = tile / plan.folds, f = tile % plan.folds
                for i in stride(from: p - 1, through: 0, by: -1) {
                    for j in stride(from: q - 1, through: 0, by: -1) {
                        let pe = i * q + j
                        let group = plan.group(fold: f, column: j)
                        var act: [Int]
                        if i == 0 {
                            let token = tileCycle - j
                            act = [Int](repeating: 0, count: pat.m)
                            if let k = group, token >= 0, token < t {
                                for lane in 0..<pat.m { act[lane] = xq[token * layer.columns + k * pat.m + lane] }
                            }
                        } else {
                            act = actReg[pe - q]
                        }
                        let psumIn = j % plan.segmentWidth == 0 ? 0 : psumReg[pe - 1]
                        var product = 0
                        let r = rt * p + i
                        if let k = group, r < layer.rows {
                            for n in 0..<pat.n {
                                let slot = r * w.kept + k * pat.n + n
                                product += act[Int(w.indices[slot])] * Int(w.values[slot])
                            }
                        }
                        psumReg[pe] = psumIn + product
                        actReg[pe] = act
                        let token = tileCycle - i - j
                        if plan.endsSegment(j), token >= 0, token < t, r < layer.rows,
                           let chunk = plan.chunk(fold: f, segment: j / plan.segmentWidth) {
                            sums[(token * layer.rows + r) * groups + chunk.weightGroup] += psumReg[pe]
                        }
                    }
                }
                tileCycle += 1
                if tileCycle == computeCycles {
                    active = nil
                    finished += 1
                }
            }
            if activationBytesLeft > 0 {
                activationBytesLeft -= min(model.bytesPerCycle, activationBytesLeft)
            } else if nextLoad < tiles, !shadowFull {
                loadBytesLeft -= min(model.bytesPerCycle, loadBytesLeft)
                if loadBytesLeft == 0 {
                    shadowFull = true
                    nextLoad += 1
                    loadBytesLeft = tileBytes
                }
            }
            cycle += 1
        }
        return Result(cycles: cycle, sums: sums)
    }
}
