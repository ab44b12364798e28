import Testing
@testable import NMTargetHLS

/// Random N:M (or dense) INT4 weights: each group of M keeps N distinct columns.
func randomWeights(rows: Int, columns: Int, pattern: PEPattern, rng: inout SplitMix64) -> IntegerWeights {
    let kept = columns / pattern.m * pattern.n
    var values: [Int8] = [], indices: [UInt8] = []
    for _ in 0..<rows {
        for _ in 0..<(columns / pattern.m) {
            let chosen = Array(0..<pattern.m).shuffled(using: &rng).prefix(pattern.n).sorted()
            for i in chosen {
                values.append(Int8(Int.random(in: -8...7, using: &rng)))
                indices.append(UInt8(i))
            }
        }
    }
    precondition(values.count == rows * kept)
    return IntegerWeights(rows: rows, columns: columns, pattern: pattern, values: values, indices: indices)
}

@Suite struct CycleModelTests {
    @Test func modelEqualsCycleSteppedSimulatorOnRandomConfigurations() throws {
        let patterns: [(Int, Int)] = [(1, 1), (2, 2), (1, 2), (1, 4), (2, 4), (2, 8), (4, 8), (1, 8), (3, 4)]
        var bound = (bandwidth: 0, compute: 0)
        for seed in UInt64(1)...30 {
            var rng = SplitMix64(state: seed)
            let (n, m) = patterns[Int.random(in: 0..<patterns.count, using: &rng)]
            let pattern = try PEPattern(n: n, m: m)
            let array = try ArrayShape(rows: Int.random(in: 1...5, using: &rng), cols: Int.random(in: 1...6, using: &rng))
            let group = m * Int.random(in: 1...4, using: &rng)
            let columns = m * Int.random(in: 1...12, using: &rng)
            let layer = LayerShape(rows: Int.random(in: 1...11, using: &rng), columns: columns, group: group,
                                   tokens: Int.random(in: 1...6, using: &rng))
            let model = try SystolicArrayModel(array: array, pattern: pattern, bytesPerCycle: Int.random(in: 1...40, using: &rng))
            let w = randomWeights(rows: layer.rows, columns: columns, pattern: pattern, rng: &rng)
            let xq = (0..<(layer.tokens * columns)).map { _ in Int.random(in: -127...127, using: &rng) }
            let context = "seed \(seed): array \(array), \(pattern), layer \(layer) group \(group) T=\(layer.tokens) B=\(model.bytesPerCycle)"
            let simulated = try SystolicArraySimulator(model: model).run(layer: layer, weights: w, activations: xq)
            let predicted = try model.cycles(layer)
            #expect(simulated.cycles == predicted.total, "\(context): simulator \(simulated.cycles) cycles, model \(predicted.total)")
            if predicted.bandwidthBound { bound.bandwidth += 1 } else { bound.compute += 1 }
            // The dataflow computes the integer products of every weight group.
            let groups = (columns + group - 1) / group
            var expected = [Int](repeating: 0, count: layer.tokens * layer.rows * groups)
            for t in 0..<layer.tokens {
                for r in 0..<layer.rows {
                    for c in 0..<columns {
                        expected[(t * layer.rows + r) * groups + c / group] += xq[t * columns + c] * w.value(row: r, column: c)
                    }
                }
            }
            #expect(simulated.sums == expected, "\(context): segment sums differ")
        }
        // Both regimes of the formula are exercised.
        #expect(bound.bandwidth >= 5 && bound.compute >= 5, "\(bound)")
    }

    @Test func formulaOnAWorkedExample() throws {
        // 2x3 array, 2:4, 4 tokens, 5 rows x 16 columns, group 8: S = min(8/4, 3) = 2, one segment
        // per fold, 2 chunks per... 16/4 = 4 N:M groups in 2 weight groups of 2 → 2 chunks → 2 folds;
        // tiles = ⌈5/2⌉ · 2 = 6. Beat: 3 slots · 2·(4+2) bits = 36 → 8 bytes; tile = 2·8 + 2·1·4 = 24
        // bytes → 3 cycles at 8 B/cycle; Ct = 4 + 2 + 3 − 2 = 7; activations 4·16/8 = 8 cycles.
        let model = try SystolicArrayModel(array: ArrayShape(rows: 2, cols: 3), pattern: PEPattern(n: 2, m: 4), bytesPerCycle: 8)
        let c = try model.cycles(LayerShape(rows: 5, columns: 16, group: 8, tokens: 4))
        #expect(c.folds == 2 && c.tiles == 6 && c.tileLoad == 3 && c.tileCompute == 7 && c.activationLoad == 8)
        #expect(c.total == 8 + 3 + 7 + 5 * 7)
        #expect(!c.bandwidthBound)
    }

    @Test func foldPlanSplitsWeightGroupsIntoSegments() throws {
        // G = 128, 2:8 on 32 columns: S = 16, two weight groups per fold; 576 columns = 4.5 groups.
        let plan = try FoldPlan(layer: LayerShape(rows: 1, columns: 576, group: 128, tokens: 1), pattern: PEPattern(n: 2, m: 8), cols: 32)
        #expect(plan.segmentWidth == 16 && plan.segmentsPerFold == 2 && plan.folds == 3)
        #expect(plan.chunks.map(\.count) == [16, 16, 16, 16, 8])
        #expect(plan.group(fold: 2, column: 7) == 71 && plan.group(fold: 2, column: 8) == nil)
        // Dense with one multiplier: a weight group spans 4 folds of 32 columns.
        let dense = try FoldPlan(layer: LayerShape(rows: 1, columns: 576, group: 128, tokens: 1), pattern: PEPattern(n: 1, m: 1), cols: 32)
        #expect(dense.segmentWidth == 32 && dense.folds == 18 && dense.chunks.last?.weightGroup == 4)
        #expect(throws: HLSError.self) { try FoldPlan(layer: LayerShape(rows: 1, columns: 576, group: 4, tokens: 1), pattern: PEPattern(n: 2, m: 8), cols: 32) }
    }
}
