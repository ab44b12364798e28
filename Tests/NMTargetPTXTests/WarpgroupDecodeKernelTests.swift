import Testing
@testable import NMTargetPTX

@Suite struct WarpgroupDecodeKernelTests {
    @Test func warpgroupsCutKAndLoadEverythingAtOnce() throws {
        // 4096×11008 (86 units), 4 warpgroups, 2 splits: 8 warpgroups a row block, 11 units each
        // at most (the last for warpgroups 0 … 5 only).
        let k = try WarpgroupDecodeKernel(rows: 4096, columns: 11008, warpgroups: 4, splits: 2)
        #expect(k.unitsPerWarpgroup == 11 && k.threads == 512)
        #expect(k.launchShape(tokens: 16).grid == (64, 1, 2) && k.launchShape(tokens: 17).grid == (64, 2, 2))
        #expect(k.clusterShape(grid: (64, 1, 2)) != nil && k.dynamicSharedBytes == 4 * 11 * 4096 + 4096 + 32)
        let lines = ptxLines(k.ptx())
        #expect(lines.contains { $0.hasPrefix("setp.lt.u32 %p0, %r") && $0.hasSuffix(", 6;") })  // q < 86 − 10 · 8
        #expect(lines.filter { $0.contains("ld.global.nc.v4.u32") }.count == 11)
        #expect(lines.filter { $0.hasPrefix("@%p0 ld.global.nc") }.count == 3)  // the last unit's values, metadata, scales
        #expect(lines.filter { $0.contains("cp.async.bulk.tensor.2d") }.count == 22)
        #expect(lines.filter { $0.contains("mbarrier.try_wait.parity") }.count == 1)  // one wait, not one a stage
        let wgmmas = lines.filter { $0.hasPrefix("wgmma.mma_async.sp.sync.aligned.m64n16k32.f32.f16.f16") }
        #expect(wgmmas.count == 44)
        #expect(lines.filter { $0 == "wgmma.wait_group.sync.aligned 1;" }.count == 21)
        let firstWgmma = try #require(lines.firstIndex(of: wgmmas[0])), lastWgmma = try #require(lines.lastIndex(of: wgmmas[43]))
        #expect(!lines[firstWgmma...lastWgmma].contains { $0.hasPrefix("bar.sync") || $0.hasPrefix("mbarrier") })  // no barrier a stage
        #expect(lines.contains("barrier.cluster.arrive.release.aligned;") && lines.contains { $0.hasPrefix("st.shared::cluster.v4.f32") })
        // The column of unit k's stage h: q · 128 + 128 · 8k + 64h.
        #expect(lines.contains { $0.hasSuffix(", 128, 8256;") })  // k = 8, h = 1
        // One split: no cluster.
        let one = try WarpgroupDecodeKernel(rows: 11008, columns: 4096, warpgroups: 4, splits: 1)
        #expect(one.clusterShape(grid: (172, 1, 1)) == nil && !one.ptx().contains("barrier.cluster"))
        #expect(WarpgroupDecodeKernel.standardSplits(rows: 4096) == 2 && WarpgroupDecodeKernel.standardSplits(rows: 11008) == 1)
        #expect(!lines.contains { $0.hasPrefix("griddepcontrol") })
    }

    @Test func dependentLaunchesLoadTheWeightsWeaklyBeforeTheWait() throws {
        let k = try WarpgroupDecodeKernel(rows: 4096, columns: 4096, warpgroups: 4, splits: 2, dependentLaunch: true)
        #expect(k.entry.hasSuffix("_g4_s2_d") && k.dependentLaunch)
        let lines = ptxLines(k.ptx())
        let start = try #require(lines.firstIndex(of: "griddepcontrol.launch_dependents;"))
        let wait = try #require(lines.firstIndex(of: "griddepcontrol.wait;"))
        let weights = lines.indices.filter { lines[$0].contains("ld.global.v4.u32") || lines[$0].contains("ld.global.v2.u32") || lines[$0].contains("ld.global.u32") }
        #expect(weights.count == 12 && weights.allSatisfy { start < $0 && $0 < wait })  // 4 units a warp, all weak, above the wait
        #expect(!lines.contains { $0.contains("ld.global.nc") })
        let copies = lines.indices.filter { lines[$0].contains("cp.async.bulk.tensor") }
        let stores = lines.indices.filter { lines[$0].hasPrefix("st.global") }
        #expect(copies.count == 8 && copies.allSatisfy { $0 > wait } && !stores.isEmpty && stores.allSatisfy { $0 > wait })
    }

    @Test func unitWaitsGiveEachUnitItsOwnMbarrier() throws {
        // 4096×11008, 4 warpgroups, 2 splits: 11 units a warpgroup, so 11 mbarriers each, 8 bytes apart.
        let k = try WarpgroupDecodeKernel(rows: 4096, columns: 11008, warpgroups: 4, splits: 2, choices: .init(unitsPerWait: 1))
        #expect(k.entry.hasSuffix("_g4_s2_u1") && k.dynamicSharedBytes == 4 * 11 * 4096 + 4096 + 4 * 11 * 8)
        let lines = ptxLines(k.ptx())
        #expect(lines.filter { $0.contains("mbarrier.init.shared::cta.b64") }.count == 11)
        let arrivals = lines.filter { $0.contains("mbarrier.arrive.expect_tx") }
        #expect(arrivals.count == 11 && arrivals.dropLast().allSatisfy { $0.hasSuffix("], 4096;") })
        // The last unit's bytes, for some warpgroups only.
        #expect(arrivals.last!.contains("+80], %r") && lines.contains { $0.hasPrefix("selp.u32") && $0.hasSuffix(", 4096, 0, %p0;") })
        // Unit k's two stages come on mbarrier k, and its wgmmas wait for that one alone.
        let copies = lines.filter { $0.contains("cp.async.bulk.tensor.2d") }
        #expect(copies.count == 22 && copies[2].hasSuffix("+8];") && copies[21].hasSuffix("+80];"))
        let waits = lines.indices.filter { lines[$0].contains("mbarrier.try_wait.parity") }
        let wgmmas = lines.indices.filter { lines[$0].hasPrefix("wgmma.mma_async.sp") }
        #expect(waits.count == 11 && wgmmas.count == 44)
        for (k, w) in waits.enumerated() {
            #expect(lines[w].contains(k == 0 ? "], 0;" : "+\(8 * k)], 0;"))
            #expect(wgmmas.filter { $0 < w }.count == 4 * k)  // after unit k − 1's wgmmas, before unit k's
        }
        // Two units a wait: 6 mbarriers, the last for unit 10 alone; waits before units 0, 2, … 10.
        let pairs = try WarpgroupDecodeKernel(rows: 4096, columns: 11008, warpgroups: 4, splits: 2, choices: .init(unitsPerWait: 2))
        let pairLines = ptxLines(pairs.ptx())
        #expect(pairs.entry.hasSuffix("_g4_s2_u2") && pairLines.filter { $0.contains("mbarrier.try_wait.parity") }.count == 6)
        #expect(pairLines.filter { $0.contains("mbarrier.arrive.expect_tx") && $0.hasSuffix("], 8192;") }.count == 5)
        #expect(pairLines.filter { $0.contains("cp.async.bulk.tensor.2d") }[5].hasSuffix("+8];"))  // unit 2's second stage
        // One block an SM: the same code, asking for 116 KB of shared memory.
        let alone = try WarpgroupDecodeKernel(rows: 4096, columns: 4096, warpgroups: 4, splits: 2, choices: .init(oneBlockPerSM: true))
        #expect(alone.entry.hasSuffix("_g4_s2_o") && alone.dynamicSharedBytes == 116 * 1024)
        #expect(try WarpgroupDecodeKernel(rows: 4096, columns: 4096, warpgroups: 4, splits: 2).dynamicSharedBytes < 116 * 1024)
        // Without unit waits the same kernel has one mbarrier a warpgroup and one wait.
        let one = try WarpgroupDecodeKernel(rows: 4096, columns: 11008, warpgroups: 4, splits: 2)
        #expect(ptxLines(one.ptx()).filter { $0.contains("mbarrier.try_wait.parity") }.count == 1)
    }

    @Test func prefetchedWeightsAreLoadedOnlyAfterTheWait() throws {
        // 4096², 4 warpgroups, 2 splits: 4 units a warpgroup, three lines each (values, metadata, scales).
        let k = try WarpgroupDecodeKernel(rows: 4096, columns: 4096, warpgroups: 4, splits: 2, dependentLaunch: true,
                                          choices: .init(prefetchWeights: true))
        #expect(k.entry.hasSuffix("_g4_s2_w_d"))
        let lines = ptxLines(k.ptx())
        let wait = try #require(lines.firstIndex(of: "griddepcontrol.wait;"))
        let prefetches = lines.indices.filter { lines[$0].contains("prefetch.global.L2") }
        let loads = lines.indices.filter { lines[$0].contains("ld.global") }
        #expect(prefetches.count == 12 && prefetches.allSatisfy { $0 < wait })
        #expect(loads.count == 12 && loads.allSatisfy { $0 > wait })
        // Each load reads the line its prefetch asked for.
        let address = { (i: Int) in lines[i].components(separatedBy: "[")[1] }
        #expect(Set(prefetches.map(address)) == Set(loads.map(address)))
    }

    @Test func impossibleShapesAreRefused() {
        #expect(throws: PTXError.self) { try WarpgroupDecodeKernel(rows: 4096, columns: 11008, warpgroups: 4, splits: 1) }  // 352 KB of activations
        #expect(throws: PTXError.self) { try WarpgroupDecodeKernel(rows: 4096, columns: 512, warpgroups: 4, splits: 2) }   // 4 units for 8 warpgroups
        #expect(throws: PTXError.self) { try WarpgroupDecodeKernel(rows: 100, columns: 4096) }
        #expect(throws: PTXError.self) { try WarpgroupDecodeKernel(rows: 4096, columns: 4096, warpgroups: 3) }
        #expect(throws: PTXError.self) { try WarpgroupDecodeKernel(rows: 4096, columns: 4096, splits: 3) }
    }

    @Test func theTriggerGoesWhereItIsAsked() throws {
        // Each place once, in the order of the kernel's path: the first thing, after the copies
        // are asked for, after the first mbarrier wait, after the last wgmma.
        var at: [WarpgroupDecodeKernel.Trigger: Int] = [:]
        for trigger in WarpgroupDecodeKernel.Trigger.allCases {
            let k = try WarpgroupDecodeKernel(rows: 4096, columns: 4096, warpgroups: 4, splits: 2, dependentLaunch: true, choices: .init(trigger: trigger))
            #expect(k.entry.hasSuffix(trigger == .first ? "_g4_s2_d" : "_g4_s2_t\(trigger.rawValue)_d"))
            let lines = ptxLines(k.ptx())
            let triggers = lines.indices.filter { lines[$0] == "griddepcontrol.launch_dependents;" }
            #expect(triggers.count == 1)   // unpredicated: every thread of the block lets it start
            let lastCopy = try #require(lines.lastIndex { $0.contains("cp.async.bulk.tensor") })
            let firstWait = try #require(lines.firstIndex { $0.hasPrefix("mbarrier.try_wait.parity") })
            let firstWgmma = try #require(lines.firstIndex { $0.hasPrefix("wgmma.mma_async") })
            let lastWgmma = try #require(lines.lastIndex { $0.hasPrefix("wgmma.mma_async") })
            let firstLoad = try #require(lines.firstIndex { $0.contains("ld.global") })
            let t = triggers[0]
            switch trigger {
            case .first: #expect(t < firstLoad)
            case .issued: #expect(t > lastCopy && t < firstWait)
            case .landed: #expect(t > firstWait && t < firstWgmma)
            case .computed: #expect(t > lastWgmma && lines[t - 1] == "wgmma.wait_group.sync.aligned 0;")
            }
            at[trigger] = t
        }
        #expect(at[.first]! < at[.issued]! && at[.issued]! < at[.landed]! && at[.landed]! < at[.computed]!)
    }
}
