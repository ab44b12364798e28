import Testing
@testable import NMTargetPTX

/// The decode kernel's bulk weights (`LinearKernel.bulkWeights`): what each block copies, where
/// it lands, and that the warps read their units from it. (The GPU runs it in `nmc-run --gpu-check`.)
@Suite struct LinearKernelBulkTests {
    @Test func eachRoundCopiesTheBlocksUnitsOfEveryRowTileAndArray() throws {
        // 2:4, 9 units over 4 warps: rounds of 4, 4 and 1 units; two row tiles.
        let k = try LinearKernel(weights: .int4Sparse24, rows: 64, columns: 1152, tokenTiles: 2, warps: 4, rowTiles: 2, bulkWeights: true)
        #expect(k.entry.hasSuffix("_w4_bw") && k.target == "sm_90")
        // 17408 bytes of staging, then 2·9 units of 512, 256 and 32 bytes, then 3 mbarriers.
        #expect(k.bulkOffsets.arrays == [17408, 17408 + 9216, 17408 + 9216 + 4608])
        #expect(k.bulkOffsets.barriers == 17408 + 18 * 800 && k.sharedBytes == 17408 + 18 * 800 + 24)
        let lines = k.ptx().split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        // (destination, source offset, bytes, mbarrier) of each copy, in the order issued:
        // round, then array (weights, metadata, scales), then row tile.
        let copies = lines.filter { $0.hasPrefix("cp.async.bulk.") }.map { line -> [Int] in
            line.split(separator: "+").dropFirst().map { Int($0.prefix { $0.isNumber })! } + [Int(line.split(separator: ", ")[2])!]
        }.map { (dst: $0[0], src: $0[1], bytes: $0[3], bar: $0[2]) }
        #expect(copies.count == 3 * 3 * 2)
        let (o, bars) = (k.bulkOffsets.arrays, k.bulkOffsets.barriers)
        // Round 0, row tile 1's weights: the block's units 9…12, 4 · 512 bytes, on mbarrier 0.
        #expect(copies[1] == (dst: o[0] + 9 * 512, src: 9 * 512, bytes: 2048, bar: bars))
        // Round 1, row tile 0's metadata: units 4…7.
        #expect(copies[8] == (dst: o[1] + 4 * 256, src: 4 * 256, bytes: 1024, bar: bars + 8))
        // Round 2 holds one unit, 8: row tile 1's scale words (units 9 + 8), 32 bytes, on mbarrier 2.
        #expect(copies[17] == (dst: o[2] + 17 * 32, src: 17 * 32, bytes: 32, bar: bars + 16))
        let expects = lines.filter { $0.hasPrefix("mbarrier.arrive.expect_tx") }
        #expect(expects.map { $0.split(separator: " ").last! } == ["6400;", "6400;", "1600;"])
        // Every weight, metadata and scale load reads shared memory; each round is waited on once.
        // (Metadata: one 8-byte load a unit and row tile; scales: one 4-byte load; only the
        // activations, 16-byte vectors, come from global memory.)
        #expect(lines.filter { $0.contains("ld.shared.v2.u32") }.count == 3 * 2 && lines.filter { $0.contains("ld.shared.u32") }.count == 3 * 2)
        #expect(!lines.contains { $0.contains("ld.global") && !$0.contains(".v4.u32") })
        #expect(lines.filter { $0.hasPrefix("mbarrier.try_wait.parity") }.count == 3)
        #expect(PTXModule.text(entries: [k.ptx()], target: k.target).contains(".version 8.0\n"))
    }

    @Test func copiesComeBeforeTheGridDependencyWait() throws {
        let k = try LinearKernel.standard(weights: .int4Sparse24, rows: 4096, columns: 4096, tokenTiles: 1, dependentLaunch: true, bulkWeights: true)
        #expect(k.bulkWeights && !k.prefetch && k.prefetchAhead == 0)
        let text = k.ptx()
        let lastCopy = text.range(of: "cp.async.bulk.", options: .backwards)!, wait = text.range(of: "griddepcontrol.wait;")!
        #expect(lastCopy.upperBound < wait.lowerBound)
    }

    @Test func standardGrantsBulkWeightsOnlyWhereTheyFit() throws {
        // FP16 4096×11008: 86 units of 4096 bytes, 352 KB a row tile: more than a block may have.
        let fp16 = try LinearKernel.standard(weights: .fp16, rows: 4096, columns: 11008, tokenTiles: 1, bulkWeights: true)
        #expect(!fp16.bulkWeights)
        let sparse = try LinearKernel.standard(weights: .int4Sparse24, rows: 4096, columns: 11008, tokenTiles: 2, bulkWeights: true)
        #expect(sparse.bulkWeights && sparse.dynamicSharedBytes == sparse.sharedBytes && sparse.sharedBytes <= LinearKernel.maxSharedBytes)
        #expect(throws: PTXError.self) { try LinearKernel(weights: .fp16, rows: 16, columns: 11008, tokenTiles: 1, warps: 16, bulkWeights: true) }
        #expect(throws: PTXError.self) {
            try LinearKernel(weights: .int4, rows: 16, columns: 4096, tokenTiles: 1, warps: 16, splits: 2, bulkWeights: true)
        }
    }
}
