import Testing
@testable import NMTargetHLS

@Suite struct SweepTests {
    /// The done-when line: on LLaMA-7B shapes and the U280, every compute-bound layer of every
    /// pattern runs at ≥ 0.9 · M/N the speed of the dense array with the same multipliers.
    @Test func sparsePatternsScaleWithMOverNOnLlama7B() throws {
        let patterns = try [(1, 4), (2, 4), (2, 8), (4, 8), (1, 8)].map { try PEPattern(n: $0.0, m: $0.1) }
        let arrays = try [ArrayShape(rows: 16, cols: 16), ArrayShape(rows: 32, cols: 32), ArrayShape(rows: 64, cols: 64)]
        let sweep = try HLSSweep(shapes: .llama7B, device: try FPGADevice.named("u280"), arrays: arrays, patterns: patterns,
                                 clockMHz: 300, tokens: 128)
        #expect(sweep.rows.count == 15)
        for row in sweep.rows {
            let e = row.estimate
            let ratio = try #require(row.worstComputeBoundRatio, "\(e.array) \(e.pattern.name): no compute-bound layer")
            #expect(ratio >= 0.9, "\(e.array) \(e.pattern.name): worst layer at \(ratio) × M/N")
            #expect(row.speedup <= Double(e.pattern.m) / Double(e.pattern.n) + 1e-9)
            #expect(e.prefillMicrosecondsPerToken > 0 && e.decodeMicrosecondsPerToken > e.prefillMicrosecondsPerToken)
        }
        // 32x32 2:4 on a 4096x4096 layer at 128 tokens: 128 row tiles x 32 folds, Ct = 128 + 62.
        let row = try #require(sweep.rows.first { $0.estimate.array.rows == 32 && $0.estimate.pattern.name == "2:4" })
        let qkvo = row.estimate.layers[0].prefill
        #expect(qkvo.tiles == 4096 && qkvo.tileCompute == 190 && !qkvo.bandwidthBound)
        #expect(sweep.table.contains("| 32x32 | 2:4 | 2 | 1280 (14.2%) | yes |"))
        #expect(sweep.svg.hasPrefix("<svg") && sweep.svg.contains("2:8"))
    }

    @Test func resourcesCountDSPsAndRefuseWhatDoesNotFit() throws {
        // 32x32 2:4: 1024 PEs x 2 products / 2 per DSP, + 32 scale units x 5, + 32 x 3.
        let r = ResourceEstimate(array: try ArrayShape(rows: 32, cols: 32), pattern: try PEPattern(n: 2, m: 4),
                                 segmentsPerFold: 1, maxColumns: 11008, tokens: 128)
        #expect(r.dsp == 1024 + 160 + 96)
        #expect(r.overflows(try FPGADevice.named("u280")).isEmpty)
        let big = ResourceEstimate(array: try ArrayShape(rows: 64, cols: 64), pattern: try PEPattern(n: 4, m: 8),
                                   segmentsPerFold: 4, maxColumns: 11008, tokens: 128)
        #expect(big.overflows(try FPGADevice.named("u280")).first?.hasPrefix("DSP") == true)
        #expect(throws: HLSError.self) { try FPGADevice.named("u250") }
    }

    @Test func bandwidthBoundWhenWeightsStreamSlowerThanTheArrayComputes() throws {
        // One byte per cycle: a 4x4 tile of 2:4 PEs needs 4 x 8 + 4 x 4 = 48 bytes, Ct = 1 + 6 = 7.
        let model = try SystolicArrayModel(array: ArrayShape(rows: 4, cols: 4), pattern: PEPattern(n: 2, m: 4), bytesPerCycle: 1)
        let c = try model.cycles(LayerShape(rows: 8, columns: 32, group: 16, tokens: 1))
        #expect(c.tileLoad == 48 && c.tileCompute == 7 && c.bandwidthBound)
        #expect(c.total == 32 + 48 + 7 + (c.tiles - 1) * 48)
    }
}
