import Testing
@testable import NMTargetPTX

/// The staged 2:4 decode kernel with its activations by the tensor copy engine (`tensorActivations`).
@Suite struct TensorActivationTests {
    func lines(_ k: LinearKernel) -> [String] {
        k.ptx().split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
    }

    @Test func oneBatchAsksForTwoBoxesAUnitOnItsOwnBarrier() throws {
        // 4096×4096 at 16 tokens: 16 warps, 2 rounds, one batch of 2 units: 2 buffers of 4 KB a warp.
        let k = try LinearKernel.standard(weights: .int4Sparse24, rows: 4096, columns: 4096, tokenTiles: 2, dependentLaunch: true,
                                          tensorActivations: true)
        let plain = try LinearKernel.standard(weights: .int4Sparse24, rows: 4096, columns: 4096, tokenTiles: 2, dependentLaunch: true)
        #expect(k.entry == plain.entry + "_ta" && k.target == "sm_90a")
        #expect(k.sharedBytes == 16 * 2 * 4096 + 16 * 2 * 8 && k.dynamicSharedBytes == k.sharedBytes)
        let text = lines(k)
        #expect(text.contains(".extern .shared .align 1024 .b8 \(k.entry)_red[];"))
        #expect(text.contains(".param .align 64 .b8 \(k.entry)_xmap[128]"))
        let wait = try #require(text.firstIndex(of: "griddepcontrol.wait;"))
        #expect(text[..<wait].filter { $0.contains("mbarrier.init.shared::cta.b64") }.count == 2)
        let copies = text.filter { $0.contains("cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes") }
        #expect(copies.count == 4 && text.firstIndex { $0.contains("cp.async.bulk") }! > wait)
        // Boxes at 0 and 2048 of buffer 0, 4096 and 6144 of buffer 1; each unit's 4096 bytes expected.
        for (copy, offset) in zip(copies, [0, 2048, 4096, 6144]) { #expect(copy.contains("+\(offset)], [%rd")) }
        #expect(text.filter { $0.contains("mbarrier.arrive.expect_tx") && $0.hasSuffix(", 4096;") }.count == 2)
        #expect(!text[wait...].contains { $0.hasPrefix("ld.global.v4.u32") || $0.hasPrefix("st.shared.v4.u32") })
        #expect(text.filter { $0.hasPrefix("mbarrier.try_wait.parity") && $0.hasSuffix(", 0;") }.count == 2)
        #expect(text.filter { $0.hasPrefix("ldmatrix") }.count == lines(plain).filter { $0.hasPrefix("ldmatrix") }.count)
        #expect(text.filter { $0.hasPrefix("mma.sp") }.count == lines(plain).filter { $0.hasPrefix("mma.sp") }.count)
    }

    /// Where `tensorFragments` reads: lane l's `ldmatrix` row, for token tile nt and step s, must
    /// be logical row l % 8 + 8nt and 16-byte chunk l / 8 + 4s of the unit, where the copy engine's
    /// 128-byte swizzle put it (box q / 8, chunk (q % 8) ^ (row % 8), rows 128 bytes apart).
    @Test func ldmatrixAddressesFollowTheSwizzle() {
        for lane in 0..<32 { for nt in 0..<2 { for s in 0..<4 {
            let row = lane % 8 + 8 * nt, q = lane / 8 + 4 * s
            let stored = (q / 8) * 2048 + row * 128 + ((q % 8) ^ (row % 8)) * 16
            let chunk0 = (lane / 8) ^ (lane % 8)
            let laneAddress = (lane % 8) * 128 + (s % 2 == 0 ? chunk0 : chunk0 ^ 4) * 16  // `even` / `odd`
            #expect(laneAddress + (s / 2) * 2048 + nt * 8 * 128 == stored)
        } } }
    }

    @Test func laterBatchesReuseTheBuffersOnTheNextPhase() throws {
        // 4096×11008: 86 units over 16 warps, 6 rounds, 3 batches of 2 (asked for; the default is
        // batches of one, below); the last round only for warps 0–5, so its expectation and boxes
        // are guarded.
        let k = try LinearKernel.standard(weights: .int4Sparse24, rows: 4096, columns: 11008, tokenTiles: 2, dependentLaunch: true,
                                          prefetchAhead: 0, batchUnits: 2, tensorActivations: true)
        let text = lines(k)
        #expect(text.filter { $0.contains("cp.async.bulk.tensor") }.count == 12)
        #expect(text.filter { $0 == "fence.proxy.async.shared::cta;" }.count == 2)
        let parities = text.filter { $0.hasPrefix("mbarrier.try_wait.parity") }.map { $0.hasSuffix(", 1;") ? 1 : 0 }
        #expect(parities == [0, 0, 1, 1, 0, 0])
        let plain = try LinearKernel.standard(weights: .int4Sparse24, rows: 4096, columns: 11008, tokenTiles: 2, dependentLaunch: true,
                                              prefetchAhead: 0, batchUnits: 2, tensorActivations: false)
        #expect(text.filter { $0.hasPrefix("and.pred") }.count == lines(plain).filter { $0.hasPrefix("and.pred") }.count + 1)
    }

    @Test func theDefaultAt4096x11008TakesOneUnitABatch() throws {
        // Session 30's default there, the copies not asked ahead: one buffer a warp, each batch
        // after the first reusing it on the next phase, and the next unit's weights asked of the
        // L2 while a unit loads.
        let k = try LinearKernel.standard(weights: .int4Sparse24, rows: 4096, columns: 11008, tokenTiles: 2, dependentLaunch: true,
                                          tensorAhead: false)
        #expect(k.tensorActivations && k.batch == 1 && k.prefetchAhead == 1 && !k.tensorAhead)
        #expect(k.sharedBytes == max(k.reductionBytes, 16 * 4096) + 16 * 8)
        let text = lines(k)
        #expect(text.filter { $0.contains("cp.async.bulk.tensor") }.count == 12)
        #expect(text.filter { $0 == "fence.proxy.async.shared::cta;" }.count == 5)
        let parities = text.filter { $0.hasPrefix("mbarrier.try_wait.parity") }.map { $0.hasSuffix(", 1;") ? 1 : 0 }
        #expect(parities == [0, 1, 0, 1, 0, 1])
        #expect(text.contains { $0.hasPrefix("prefetch.global.L2") })
    }

    @Test func copiesABatchAheadAlternateTwoSetsOfBuffers() throws {
        // The default at 4096×11008 (session 31): the copies a batch ahead, two buffers a warp;
        // units 0 and 1 asked for after the wait, before the first unit computes; unit j + 2 into
        // unit j's buffer once unit j is read; each buffer's phases alternate.
        let k = try LinearKernel.standard(weights: .int4Sparse24, rows: 4096, columns: 11008, tokenTiles: 2, dependentLaunch: true)
        #expect(k.tensorAhead && k.batch == 1 && k.entry.hasSuffix("_ta" + "h"))
        #expect(k.sharedBytes == max(k.reductionBytes, 16 * 2 * 4096) + 16 * 2 * 8)
        let text = lines(k)
        let wait = try #require(text.firstIndex(of: "griddepcontrol.wait;"))
        #expect(text[..<wait].filter { $0.contains("mbarrier.init.shared::cta.b64") }.count == 2)
        let copies = text.indices.filter { text[$0].contains("cp.async.bulk.tensor") }
        let firstWait = try #require(text.firstIndex { $0.hasPrefix("mbarrier.try_wait.parity") })
        #expect(copies.count == 12 && copies.filter { $0 < firstWait }.count == 4)
        #expect(text.filter { $0 == "fence.proxy.async.shared::cta;" }.count == 4)
        let buffers = copies.map { text[$0].contains("+4096], [%rd") || text[$0].contains("+6144], [%rd") ? 1 : 0 }
        #expect(buffers == [0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1])
        let waits = text.filter { $0.hasPrefix("mbarrier.try_wait.parity") }
        #expect(waits.map { $0.contains("+8], ") ? 1 : 0 } == [0, 1, 0, 1, 0, 1])
        #expect(waits.map { $0.hasSuffix(", 1;") ? 1 : 0 } == [0, 0, 1, 1, 0, 0])
        // Refused without the tensor copies; standard leaves it off where they are off.
        #expect(throws: PTXError.self) {
            try LinearKernel(weights: .int4Sparse24, rows: 4096, columns: 11008, tokenTiles: 2, dependentLaunch: true, tensorAhead: true)
        }
        #expect(try !LinearKernel.standard(weights: .int4Sparse24, rows: 4096, columns: 4096, tokenTiles: 2, dependentLaunch: true,
                                           tensorAhead: true).tensorAhead)
    }

    @Test func multicastPairsRowBlocksAndAsksForOneBoxAUnit() throws {
        // 4096×4096 at 16 tokens, batches of one asked a unit ahead: clusters of two row blocks;
        // block r asks for box r of each unit (columns 64r …, at 2048r in the buffer) into both
        // blocks, and each block's mbarrier still expects the whole unit.
        let k = try LinearKernel.standard(weights: .int4Sparse24, rows: 4096, columns: 4096, tokenTiles: 2, dependentLaunch: true,
                                          batchUnits: 1, tensorActivations: true, tensorAhead: true, tensorMulticast: true)
        #expect(k.tensorMulticast && k.entry.hasSuffix("_tah_mc") && k.target == "sm_90a")
        let text = lines(k)
        #expect(text.contains(".reqnctapercluster 2, 1, 1"))
        let arrive = try #require(text.firstIndex(of: "barrier.cluster.arrive.release.aligned;"))
        let wait = try #require(text.firstIndex(of: "griddepcontrol.wait;"))
        let met = try #require(text.firstIndex(of: "barrier.cluster.wait.acquire.aligned;"))
        let inits = text.indices.filter { text[$0].contains("mbarrier.init.shared::cta.b64") }
        #expect(inits.count == 2 && inits.allSatisfy { $0 < arrive } && arrive < wait && wait < met)
        let copies = text.indices.filter { text[$0].contains("cp.async.bulk.tensor") }
        #expect(copies.count == 2 && copies.allSatisfy { $0 > met })
        #expect(copies.allSatisfy { text[$0].contains(".multicast::cluster [") && text[$0].hasSuffix(", %h0;") })
        #expect(text.contains("mov.u16 %h0, 3;"))
        // The copies write at the block's box: buffer + 2048·rank.
        let rankLine = try #require(text.first { $0.hasSuffix(", %cluster_ctarank;") })
        let rank = String(rankLine.dropFirst("mov.u32 ".count).prefix { $0 != "," })
        let at = try #require(text.first { $0.hasPrefix("mad.lo.u32") && $0.contains(", \(rank), 2048, ") })
        let dst = String(at.dropFirst("mad.lo.u32 ".count).prefix { $0 != "," })
        #expect(copies.allSatisfy { text[$0].contains("::cluster [\(dst)+") })
        #expect(text.contains { $0.hasPrefix("mad.lo.u32") && $0.contains(", \(rank), 64, ") })
        #expect(text.filter { $0.contains("mbarrier.arrive.expect_tx") && $0.hasSuffix(", 4096;") }.count == 2)
        let plain = try LinearKernel.standard(weights: .int4Sparse24, rows: 4096, columns: 4096, tokenTiles: 2, dependentLaunch: true,
                                              batchUnits: 1, tensorActivations: true, tensorAhead: true)
        #expect(text.filter { $0.hasPrefix("mma.sp") }.count == lines(plain).filter { $0.hasPrefix("mma.sp") }.count)
        #expect(!lines(plain).contains { $0.hasPrefix(".reqnctapercluster") || $0.hasPrefix("barrier.cluster") || $0.contains("multicast") })
    }

    @Test func multicastIsRefusedWhereABufferIsRefilledOrRowBlocksDoNotPair() throws {
        // 4096×11008: six batches into two sets of buffers; 96 rows: three row blocks of 32.
        #expect(throws: PTXError.self) {
            try LinearKernel(weights: .int4Sparse24, rows: 4096, columns: 11008, tokenTiles: 2, warps: 16, rowTiles: 2, dependentLaunch: true,
                             batchUnits: 1, tensorActivations: true, tensorAhead: true, tensorMulticast: true)
        }
        #expect(throws: PTXError.self) {
            try LinearKernel(weights: .int4Sparse24, rows: 96, columns: 1152, tokenTiles: 2, warps: 16, rowTiles: 2, dependentLaunch: true,
                             tensorActivations: true, tensorMulticast: true)
        }
        #expect(throws: PTXError.self) {
            try LinearKernel(weights: .int4Sparse24, rows: 64, columns: 1152, tokenTiles: 2, warps: 16, rowTiles: 2, tensorMulticast: true)
        }
        // standard gives it only with the tensor copies.
        #expect(try !LinearKernel.standard(weights: .int4Sparse24, rows: 4096, columns: 4096, tokenTiles: 2, dependentLaunch: true,
                                           tensorMulticast: true).tensorMulticast)
        #expect(try LinearKernel(weights: .int4Sparse24, rows: 64, columns: 1152, tokenTiles: 2, warps: 16, rowTiles: 2,
                                 tensorActivations: true, tensorMulticast: true).tensorMulticast)
    }

    @Test func onlyTheStagedKernelTakesIt() throws {
        // standard leaves the one-token-tile kernels as they are; asking the kernel directly is refused.
        let one = try LinearKernel.standard(weights: .int4Sparse24, rows: 4096, columns: 4096, tokenTiles: 1, dependentLaunch: true,
                                            tensorActivations: true)
        #expect(!one.tensorActivations && !one.entry.hasSuffix("_ta"))
        #expect(throws: PTXError.self) {
            try LinearKernel(weights: .int4, rows: 32, columns: 4096, tokenTiles: 2, warps: 16, rowTiles: 2, tensorActivations: true)
        }
        #expect(throws: PTXError.self) {
            try LinearKernel(weights: .int4Sparse24, rows: 32, columns: 4096, tokenTiles: 1, warps: 16, tensorActivations: true)
        }
    }
}
