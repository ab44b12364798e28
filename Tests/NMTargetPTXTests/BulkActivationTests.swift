import Testing
@testable import NMTargetPTX

/// The staged 2:4 decode kernel with its activations by the copy engine (`bulkActivations`).
@Suite struct BulkActivationTests {
    func lines(_ k: LinearKernel) -> [String] {
        k.ptx().split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
    }

    @Test func oneBatchCopiesEachUnitsRowsOnItsOwnBarrier() throws {
        // 4096×4096 at 16 tokens: 16 warps, 2 rounds, one batch of 2 units: 2 buffers a warp.
        let k = try LinearKernel.standard(weights: .int4Sparse24, rows: 4096, columns: 4096, tokenTiles: 2, dependentLaunch: true,
                                          bulkActivations: true)
        let plain = try LinearKernel.standard(weights: .int4Sparse24, rows: 4096, columns: 4096, tokenTiles: 2, dependentLaunch: true)
        #expect(k.entry == plain.entry + "_ba" && k.target == "sm_90")
        #expect(k.sharedBytes == 16 * 2 * 16 * 272 + 16 * 2 * 8 && k.dynamicSharedBytes == k.sharedBytes)
        let text = lines(k)
        let wait = try #require(text.firstIndex(of: "griddepcontrol.wait;"))
        #expect(text[..<wait].filter { $0.contains("mbarrier.init.shared::cta.b64") }.count == 2)
        let copies = text.filter { $0.contains("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes") }
        #expect(copies.count == 2 && copies.allSatisfy { $0.contains("], 256, [") })
        #expect(text.firstIndex { $0.contains("cp.async.bulk") }! > wait)
        // The unit's 16 rows of 256 bytes are expected before any copy; no activation load is left.
        #expect(text.filter { $0.hasSuffix("], 4096;") && $0.contains("mbarrier.arrive.expect_tx") }.count == 2)
        #expect(!text[wait...].contains { $0.hasPrefix("ld.global.v4.u32") || $0.hasPrefix("st.shared.v4.u32") })
        #expect(text.filter { $0.hasPrefix("mbarrier.try_wait.parity") && $0.hasSuffix("], 0;") }.count == 2)
        #expect(text.filter { $0.hasPrefix("ldmatrix") }.count == lines(plain).filter { $0.hasPrefix("ldmatrix") }.count)
        #expect(text.filter { $0.hasPrefix("mma.sp") }.count == lines(plain).filter { $0.hasPrefix("mma.sp") }.count)
    }

    @Test func laterBatchesReuseTheBuffersOnTheNextPhase() throws {
        // 4096×11008: 86 units over 16 warps, 6 rounds, 3 batches of 2; the last round only for
        // warps 0–5, so its copies and expectations are guarded.
        let k = try LinearKernel.standard(weights: .int4Sparse24, rows: 4096, columns: 11008, tokenTiles: 2, dependentLaunch: true,
                                          bulkActivations: true)
        let text = lines(k)
        #expect(text.filter { $0.contains("cp.async.bulk.shared") }.count == 6)
        #expect(text.filter { $0 == "fence.proxy.async.shared::cta;" }.count == 2)
        let parities = text.filter { $0.hasPrefix("mbarrier.try_wait.parity") }.map { $0.hasSuffix("], 1;") ? 1 : 0 }
        #expect(parities == [0, 0, 1, 1, 0, 0])
        let plain = try LinearKernel.standard(weights: .int4Sparse24, rows: 4096, columns: 11008, tokenTiles: 2, dependentLaunch: true)
        #expect(text.filter { $0.hasPrefix("and.pred") }.count == lines(plain).filter { $0.hasPrefix("and.pred") }.count + 2)
        #expect(text.filter { $0.hasPrefix("@%p") && $0.contains("cp.async.bulk.shared") && $0.contains("+4352], [") }.count == 3)
    }

    @Test func onlyTheStagedKernelTakesIt() throws {
        // standard leaves the one-token-tile kernels as they are; asking the kernel directly is refused.
        let one = try LinearKernel.standard(weights: .int4Sparse24, rows: 4096, columns: 4096, tokenTiles: 1, dependentLaunch: true,
                                            bulkActivations: true)
        #expect(!one.bulkActivations && !one.entry.hasSuffix("_ba"))
        #expect(throws: PTXError.self) {
            try LinearKernel(weights: .int4, rows: 32, columns: 4096, tokenTiles: 2, warps: 16, rowTiles: 2, bulkActivations: true)
        }
        #expect(throws: PTXError.self) {
            try LinearKernel(weights: .int4Sparse24, rows: 32, columns: 4096, tokenTiles: 1, warps: 16, bulkActivations: true)
        }
    }
}
