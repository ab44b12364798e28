import Testing
@testable import NMTargetPTX

/// The PTX text the kernels emit: the instructions the design relies on are there, registers
/// are declared, and shapes the kernels cannot take are refused with a reason.
@Suite struct PTXGenerationTests {
    @Test func decodeKernelsUseTheTensorCoreInstructions() throws {
        let sparse = try LinearKernel.standard(weights: .int4Sparse24, rows: 64, columns: 1152, tokenTiles: 2).ptx()
        #expect(sparse.contains("mma.sp.sync.aligned.m16n8k32.row.col.f32.f16.f16.f32"))
        #expect(sparse.contains("ld.global.nc.v4.u32"))      // 16-byte weight loads
        #expect(sparse.contains("ld.global.nc.v2.u32"))      // the lane's two metadata words
        #expect(sparse.contains("lop3.b32"))                  // INT4 → f16 in registers
        #expect(sparse.contains(", 1;"))                      // sparsity selector 1 for steps 2 and 3
        #expect(sparse.contains(".reg .b32 %r<"))
        // 9–16 tokens: the activations go through shared memory to ldmatrix.
        #expect(sparse.contains("st.shared.v4.u32"))
        #expect(sparse.contains("ldmatrix.sync.aligned.m8n8.x4.shared.b16"))
        let sparse8 = try LinearKernel.standard(weights: .int4Sparse24, rows: 64, columns: 1152, tokenTiles: 1).ptx()
        #expect(!sparse8.contains("ldmatrix"))
        let dense = try LinearKernel(weights: .int4, rows: 32, columns: 256, tokenTiles: 1).ptx()
        #expect(dense.contains("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32"))
        #expect(!dense.contains("mma.sp"))
        let fp16 = try LinearKernel(weights: .fp16, rows: 32, columns: 256, tokenTiles: 1).ptx()
        #expect(!fp16.contains("lop3"))  // no dequantization for FP16 weights
    }

    @Test func splitKRunsAsAClusterOnSm90() throws {
        let split = try LinearKernel(weights: .int4Sparse24, rows: 64, columns: 1152, tokenTiles: 2, warps: 8, rowTiles: 2, splits: 4)
        let ptx = split.ptx()
        #expect(split.target == "sm_90" && split.entry.hasSuffix("_s4"))
        #expect(ptx.contains(".reqnctapercluster 4, 1, 1"))
        #expect(ptx.contains("mapa.shared::cluster.u32") && ptx.contains("ld.shared::cluster.f32"))
        #expect(ptx.components(separatedBy: "barrier.cluster.wait;").count == 3)  // sums written; leader done
        #expect(split.launchShape(tokens: 16).grid.0 == 4 * 64 / 32)
        let whole = try LinearKernel.standard(weights: .int4Sparse24, rows: 64, columns: 1152, tokenTiles: 2)
        #expect(whole.splits == 1 && whole.target == "sm_80" && !whole.ptx().contains("cluster"))
        #expect(throws: PTXError.self) { try LinearKernel(weights: .int4, rows: 32, columns: 256, tokenTiles: 1, splits: 3) }
    }

    @Test func dependentLaunchLoadsWeightsBeforeTheGridDependencyWait() throws {
        for (kind, tiles) in [(LinearKernel.Weights.int4Sparse24, 1), (.int4Sparse24, 2), (.int4, 1), (.fp16, 2)] {
            let k = try LinearKernel.standard(weights: kind, rows: 64, columns: 1152, tokenTiles: tiles, dependentLaunch: true)
            #expect(k.dependentLaunch && k.target == "sm_90" && k.entry.hasSuffix("_d"))
            let lines = k.ptxLines
            let trigger = try #require(lines.firstIndex(of: "griddepcontrol.launch_dependents;"))
            let wait = try #require(lines.firstIndex(of: "griddepcontrol.wait;"))
            #expect(lines.filter { $0 == "griddepcontrol.wait;" }.count == 1)
            // The trigger comes before any load, the weight loads before the wait, and nothing
            // is stored before it.
            let firstLoad = try #require(lines.firstIndex { $0.contains("ld.global") })
            #expect(trigger < firstLoad && firstLoad < wait)
            #expect(lines[..<wait].filter { $0.contains("ld.global.nc.v4.u32") }.count >= (kind == .fp16 ? 8 : 1))
            #expect(!lines[..<wait].contains { $0.hasPrefix("st.") })
            if kind == .int4Sparse24 && tiles == 1 {
                // 9 units over 16 warps, one round: a unit's values, metadata and scales before
                // the wait; its 16 four-byte activation loads after it, coherent (ptxas moves
                // `.nc` loads above the wait: session 17's SASS).
                #expect(lines[..<wait].filter { $0.contains("ld.global") }.count == 3)
                #expect(lines[wait...].filter { $0.contains("ld.global.u32") }.count == 16)
            }
            // No activation is read through the read-only path.
            let activations = lines.filter { $0.contains("ld.global.u32") || $0.contains("ld.global.v4.u32") }
            #expect(!activations.isEmpty && k.activationLoad == "ld.global")
            let lastStore = try #require(lines.lastIndex { $0.hasPrefix("st.global") })
            #expect(wait < lastStore)
            // One token tile: two blocks an SM at most (measured faster in graphs of dependent launches).
            #expect(k.minBlocks == (tiles == 1 ? 2 : 1) && lines.contains(".minnctapersm 2") == (tiles == 1))
        }
        // Asked for with fewer than 16 warps, standard does not grant it (measured slower).
        let four = try LinearKernel.standard(weights: .int4, rows: 64, columns: 1152, tokenTiles: 1, warps: 4, dependentLaunch: true)
        #expect(!four.dependentLaunch && four.target == "sm_80" && !four.ptx().contains("griddepcontrol"))
        let plain = try LinearKernel.standard(weights: .int4, rows: 64, columns: 1152, tokenTiles: 1)
        #expect(!plain.ptx().contains("griddepcontrol") && !plain.entry.hasSuffix("_d"))
        #expect(plain.activationLoad == "ld.global.nc" && !plain.ptx().contains("ld.global.u32"))
        #expect(plain.minBlocks == 1 && !plain.ptx().contains(".minnctapersm"))
    }

    @Test func prefetchAsksTheL2ForTheBlocksWeightsBeforeTheFirstLoad() throws {
        // 11008×4096, 16 tokens: two row tiles of 32 units, 4 warps (128 threads). Weights
        // 2 · 32 · 512 bytes = 256 lines (two rounds of 128 threads), metadata 128 lines (one),
        // scales 16 lines (threads 0…15).
        let k = try LinearKernel.standard(weights: .int4Sparse24, rows: 11008, columns: 4096, tokenTiles: 2, prefetch: true)
        #expect(k.warps == 4 && k.rowTiles == 2 && k.entry.hasSuffix("_t2_r2_w4_pf"))
        let lines = k.ptxLines
        let prefetches = lines.filter { $0.contains("prefetch.global.L2") }
        #expect(prefetches.count == 4 && prefetches[1].hasSuffix("+16384];"))
        #expect(prefetches[3].hasPrefix("@%p") && lines.contains("setp.lt.u32 %p0, %r1, 16;"))
        // The block's first line: its first unit (ctaid · 2 · 32) times the unit's bytes.
        #expect(lines.contains("mul.lo.u32 %r12, %r6, 64;"))
        // All of them before the first weight load.
        let firstLoad = try #require(lines.firstIndex { $0.hasPrefix("ld.global.nc") })
        #expect(lines.lastIndex { $0.contains("prefetch.global.L2") }! < firstLoad)
        // 86 units, one row tile, 16 warps: weights 688 lines (two rounds of 512 threads, the
        // second for threads below 176), scales 21.5 lines rounded up to 22, so every byte is asked for.
        let odd = try LinearKernel(weights: .int4, rows: 16, columns: 11008, tokenTiles: 1, warps: 16, prefetch: true).ptx()
        #expect(odd.contains(", 176;") && odd.contains(", 22;") && odd.components(separatedBy: "prefetch.global.L2").count - 1 == 3)
        // By default on for 2:4 kernels launched dependently whose warps load every unit in one
        // batch (4096 columns: 2 units a warp of 16), off with more batches (11008 columns: 6),
        // without dependent launches, for the other kinds, and with split K.
        func standard(_ kind: LinearKernel.Weights, _ columns: Int, dependent: Bool = true, splits: Int? = nil) throws -> LinearKernel {
            try LinearKernel.standard(weights: kind, rows: 4096, columns: columns, tokenTiles: 1, splits: splits, clusters: true, dependentLaunch: dependent)
        }
        #expect(try standard(.int4Sparse24, 4096).prefetch && standard(.int4Sparse24, 4096).entry.hasSuffix("_w16_pf_d"))
        #expect(try !standard(.int4Sparse24, 11008).prefetch && !standard(.int4Sparse24, 4096, dependent: false).prefetch)
        #expect(try !standard(.int4, 4096).prefetch && !standard(.fp16, 4096).prefetch && !standard(.int4Sparse24, 4096, splits: 2).prefetch)
        #expect(throws: PTXError.self) { try LinearKernel(weights: .int4, rows: 64, columns: 1152, tokenTiles: 1, splits: 2, prefetch: true) }
        // Prefetching a batch ahead is the default where the block's prefetch is not: 2:4, one
        // token tile or 16 warps, dependent launches, several batches (11008 columns, then in
        // batches of one unit: session 30); not without dependent launches, nor for the other
        // kinds, nor for the 4-warp M = 16 kernel; asked for, it is granted.
        #expect(try standard(.int4Sparse24, 11008).prefetchAhead == 1 && standard(.int4Sparse24, 11008).entry.hasSuffix("_w16_pa1_b1_d"))
        #expect(try standard(.int4Sparse24, 4096).prefetchAhead == 0 && standard(.int4Sparse24, 11008, dependent: false).prefetchAhead == 0)
        #expect(try standard(.int4, 11008).prefetchAhead == 0 && standard(.fp16, 11008).prefetchAhead == 0)
        let m16 = try LinearKernel.standard(weights: .int4Sparse24, rows: 4096, columns: 11008, tokenTiles: 2, dependentLaunch: true)
        #expect(m16.prefetchAhead == 1 && m16.batch == 1 && m16.tensorActivations && m16.tensorAhead && m16.entry.hasSuffix("_w16_pa1_b1_d_tah"))
        let fourWarps = try LinearKernel.standard(weights: .int4Sparse24, rows: 11008, columns: 4096, tokenTiles: 2, dependentLaunch: true)
        #expect(fourWarps.warps == 4 && fourWarps.prefetchAhead == 0 && fourWarps.batch == 2 && !fourWarps.tensorActivations)
        // One batch a warp (4096 columns) keeps its batch, and the block's prefetch; no tensor copies.
        let square = try LinearKernel.standard(weights: .int4Sparse24, rows: 4096, columns: 4096, tokenTiles: 2, dependentLaunch: true)
        #expect(square.batch == 2 && square.prefetch && !square.tensorActivations && !square.tensorAhead)
        // Refused, the tensor copies stay off; without dependent launches nothing changes.
        #expect(try !LinearKernel.standard(weights: .int4Sparse24, rows: 4096, columns: 11008, tokenTiles: 2, dependentLaunch: true,
                                           tensorActivations: false).tensorActivations)
        // Other batches asked for keep the loads into registers: the copies' buffers of a batch of
        // 4 units would take 256 KB (session 31's gpu-check found it), which the kernel refuses.
        for units in [2, 3, 4] {
            #expect(try !LinearKernel.standard(weights: .int4Sparse24, rows: 96, columns: 11008, tokenTiles: 2, dependentLaunch: true,
                                               batchUnits: units).tensorActivations)
        }
        #expect(throws: PTXError.self) {
            try LinearKernel(weights: .int4Sparse24, rows: 96, columns: 11008, tokenTiles: 2, warps: 16, rowTiles: 2,
                             dependentLaunch: true, batchUnits: 4, tensorActivations: true)
        }
        let plain16 = try LinearKernel.standard(weights: .int4Sparse24, rows: 4096, columns: 11008, tokenTiles: 2)
        #expect(plain16.batch == 2 && plain16.prefetchAhead == 0 && !plain16.tensorActivations)
        #expect(try LinearKernel.standard(weights: .int4, rows: 4096, columns: 11008, tokenTiles: 1, prefetchAhead: 2).prefetchAhead == 2)
    }

    @Test func unitSumsAreScaledWhereAWarpsUnitsLoadInOneBatch() throws {
        // 4096 columns over 16 warps: two units a warp, one batch: q goes to the mma unscaled (the
        // first step's C is zero), and the unit's sums are scaled in f32 into the accumulators.
        let one = try LinearKernel(weights: .int4Sparse24, rows: 16, columns: 4096, tokenTiles: 1, warps: 16)
        #expect(one.oneBatch && one.scaleSums)
        let ptx = one.ptx()
        #expect(!ptx.contains("mul.f16x2") && ptx.components(separatedBy: "fma.rn.f32").count - 1 == 2 * 4)
        #expect(ptx.components(separatedBy: "cvt.f32.f16").count - 1 == 2 * 2 && ptx.components(separatedBy: "sub.f16x2").count - 1 == 2 * 16)
        // 11008 columns: six units a warp in two batches: the f16 weights are scaled, as are the
        // dense INT4 kernel's with several batches; FP16 has no scales.
        for kernel in [try LinearKernel(weights: .int4Sparse24, rows: 16, columns: 11008, tokenTiles: 1, warps: 16),
                       try LinearKernel(weights: .int4, rows: 16, columns: 11008, tokenTiles: 1, warps: 16)] {
            #expect(!kernel.oneBatch && !kernel.scaleSums)
            #expect(kernel.ptx().contains("mul.f16x2") && !kernel.ptx().contains("fma.rn.f32"))
        }
        #expect(!(try LinearKernel(weights: .fp16, rows: 16, columns: 256, tokenTiles: 1, warps: 16).scaleSums))
        // Asked for (experimental), sums are scaled with several batches too, into one accumulator
        // set (4 zeroed accumulators and the 4 of the zero C, not 8 and 4); refused, one batch
        // scales the weights. The entry names say so where it is not the default.
        func zeroed(_ ptx: String) -> Int { ptx.components(separatedBy: ", 0f00000000;").count - 1 }
        let asked = try LinearKernel(weights: .int4Sparse24, rows: 16, columns: 11008, tokenTiles: 1, warps: 16, sumsScaled: true)
        #expect(asked.scaleSums && asked.entry.hasSuffix("_w16_ss") && !asked.ptx().contains("mul.f16x2") && zeroed(asked.ptx()) == 8)
        #expect(zeroed(try LinearKernel(weights: .int4Sparse24, rows: 16, columns: 11008, tokenTiles: 1, warps: 16).ptx()) == 12)
        let refused = try LinearKernel(weights: .int4, rows: 16, columns: 4096, tokenTiles: 1, warps: 16, sumsScaled: false)
        #expect(!refused.scaleSums && refused.entry.hasSuffix("_w16_ws") && refused.ptx().contains("mul.f16x2"))
        #expect(try LinearKernel(weights: .fp16, rows: 16, columns: 256, tokenTiles: 1, warps: 16, sumsScaled: true).entry.hasSuffix("_w16"))
    }

    @Test func batchUnitsSetHowManyUnitsLoadBeforeTheFirstIsComputed() throws {
        // 2:4 with 16 tokens, 11008 columns over 4 warps: 22 rounds (the last for warps below 2),
        // 2 units a batch by default. With 4, a warp issues 4 units' weight loads (2 vectors a
        // unit: 2 row tiles) before its first mma; the default's entry has no suffix.
        func loadsBeforeFirstMMA(_ k: LinearKernel) throws -> Int {
            let lines = k.ptxLines
            let firstMMA = try #require(lines.firstIndex { $0.hasPrefix("mma.sp") })
            return lines[..<firstMMA].filter { $0.contains("ld.global.nc.v4.u32") }.count
        }
        let standard = try LinearKernel(weights: .int4Sparse24, rows: 32, columns: 11008, tokenTiles: 2, warps: 4, rowTiles: 2)
        let four = try LinearKernel(weights: .int4Sparse24, rows: 32, columns: 11008, tokenTiles: 2, warps: 4, rowTiles: 2, batchUnits: 4)
        #expect(standard.batch == 2 && four.batch == 4 && four.entry == standard.entry + "_b4")
        #expect(try LinearKernel(weights: .int4Sparse24, rows: 32, columns: 11008, tokenTiles: 2, warps: 4, rowTiles: 2, batchUnits: 2).ptx() == standard.ptx())
        // Weights (2 vectors a unit) and activations (8 rows a unit, staged) of the batch.
        #expect(try loadsBeforeFirstMMA(standard) == 2 * 2 + 8 * 2 && loadsBeforeFirstMMA(four) == 4 * 2 + 8 * 4)
        #expect(throws: PTXError.self) { try LinearKernel(weights: .int4, rows: 16, columns: 1152, tokenTiles: 1, batchUnits: 9) }
    }

    @Test func dependentLaunchesForAnyWarpsWhenAskedFor() throws {
        // 11008 rows at 16 tokens: 4-warp staged 2:4 blocks, built for dependent launches with 3
        // blocks an SM (session 22); 8-warp blocks and dense INT4 4-warp blocks only when asked.
        let staged = try LinearKernel.standard(weights: .int4Sparse24, rows: 11008, columns: 4096, tokenTiles: 2, dependentLaunch: true)
        #expect(staged.warps == 4 && staged.entry.hasSuffix("_w4_m3_d_wk") && staged.ptx().contains(".minnctapersm 3"))
        #expect(staged.weakWeightLoads && staged.ptx().contains("ld.global.v4.u32"))
        #expect(staged.ptx().contains("griddepcontrol.wait;"))
        let plain = try LinearKernel.standard(weights: .int4, rows: 11008, columns: 4096, tokenTiles: 2, warps: 4, dependentLaunch: true)
        let asked = try LinearKernel.standard(weights: .int4, rows: 11008, columns: 4096, tokenTiles: 2, warps: 4, dependentLaunch: true,
                                              dependentAnyWarps: true)
        #expect(!plain.dependentLaunch && !plain.ptx().contains("griddepcontrol"))
        #expect(asked.entry.hasSuffix("_w4_d") && asked.ptx().contains("griddepcontrol.wait;") && !asked.ptx().contains(".minnctapersm"))
        #expect(!asked.weakWeightLoads)  // weak first-batch loads by default only in the 4-warp 2:4 kernel (session 23)
        // Not launched dependently, the staged kernel keeps its one block an SM asked for.
        let launched = try LinearKernel.standard(weights: .int4Sparse24, rows: 11008, columns: 4096, tokenTiles: 2)
        #expect(launched.entry.hasSuffix("_w4") && !launched.ptx().contains(".minnctapersm"))
    }


    @Test func weakWeightLoadsOnlyBeforeTheWait() throws {
        // 4096×11008 at 16 tokens: 16 warps, 6 rounds, batches of 2 units (asked for: the default
        // is one, with the tensor copies); the first batch (2 units × 2 row tiles: values,
        // metadata, scales each) loads weakly, the later ones `.nc`.
        func loads(_ k: LinearKernel) -> (weakBeforeWait: Int, ncBeforeWait: Int) {
            let lines = k.ptxLines
            let wait = lines.firstIndex(of: "griddepcontrol.wait;") ?? lines.count
            let weak = { (line: String) -> Bool in line.hasPrefix("ld.global.v") || line.hasPrefix("ld.global.u32") }
            return (lines[..<wait].filter(weak).count, lines[..<wait].filter { $0.hasPrefix("ld.global.nc") }.count)
        }
        let asked = try LinearKernel.standard(weights: .int4Sparse24, rows: 4096, columns: 11008, tokenTiles: 2, dependentLaunch: true,
                                              prefetchAhead: 0, batchUnits: 2, weakWeightLoads: true, tensorActivations: false)
        let standard = try LinearKernel.standard(weights: .int4Sparse24, rows: 4096, columns: 11008, tokenTiles: 2, dependentLaunch: true,
                                                 prefetchAhead: 0, batchUnits: 2, tensorActivations: false)
        #expect(asked.entry == standard.entry + "_wk")
        #expect(loads(standard).weakBeforeWait == 0 && loads(standard).ncBeforeWait == 12)
        let weak = loads(asked)
        #expect(weak.weakBeforeWait == 12 && weak.ncBeforeWait == 0)
        // The later batches' loads stay `.nc`.
        let nc = { (k: LinearKernel) in k.ptx().split(separator: "\n").filter { $0.contains("ld.global.nc") }.count }
        #expect(nc(asked) == nc(standard) - 12 && nc(asked) > 0)
        // Without dependent launches there is no wait to keep them above: nothing changes.
        let plain = try LinearKernel.standard(weights: .int4Sparse24, rows: 4096, columns: 11008, tokenTiles: 2, weakWeightLoads: true)
        #expect(plain.ptx() == (try LinearKernel.standard(weights: .int4Sparse24, rows: 4096, columns: 11008, tokenTiles: 2)).ptx())
    }
    @Test func sharedMemoryPast48KBIsDynamic() throws {
        // 16 warps staging 16 rows of 272 bytes each: 69632 bytes, more than an entry may declare
        // statically for sm_80 and sm_90; 4 warps: 17408, static.
        let wide = try LinearKernel(weights: .int4Sparse24, rows: 32, columns: 4096, tokenTiles: 2, warps: 16, rowTiles: 2)
        #expect(wide.dynamicSharedBytes == 69632)
        let text = wide.ptx()
        #expect(text.hasPrefix(".extern .shared .align 16 .b8 \(wide.entry)_red[];\n.visible .entry") && !text.contains("_red[69632]"))
        let narrow = try LinearKernel(weights: .int4Sparse24, rows: 32, columns: 4096, tokenTiles: 2, warps: 4, rowTiles: 2)
        #expect(narrow.dynamicSharedBytes == 0 && narrow.ptx().contains(".shared .align 16 .b8 \(narrow.entry)_red[17408];"))
    }

    @Test func blocksPerSMSetTheMinimumBlocksDirective() throws {
        let three = try LinearKernel(weights: .int4Sparse24, rows: 32, columns: 4096, tokenTiles: 2, warps: 8, rowTiles: 2, blocksPerSM: 3)
        #expect(three.entry.hasSuffix("_w8_m3") && three.ptx().contains(".minnctapersm 3"))
        // The default (1 here; 2 for 16-warp one-token-tile kernels launched dependently) keeps its name.
        let plain = try LinearKernel(weights: .int4Sparse24, rows: 32, columns: 4096, tokenTiles: 2, warps: 8, rowTiles: 2, blocksPerSM: 1)
        #expect(plain.entry.hasSuffix("_w8") && !plain.ptx().contains(".minnctapersm"))
        let dependent = try LinearKernel(weights: .int4, rows: 16, columns: 4096, tokenTiles: 1, warps: 16, dependentLaunch: true, blocksPerSM: 2)
        #expect(dependent.entry.hasSuffix("_w16_d") && dependent.ptx().contains(".minnctapersm 2"))
        #expect(throws: PTXError.self) { try LinearKernel(weights: .int4, rows: 16, columns: 4096, tokenTiles: 1, warps: 16, blocksPerSM: 5) }
    }

    @Test func prefetchAheadAsksTheL2ForTheNextBatchesUnits() throws {
        // 86 units over 16 warps: 6 rounds, batches of 4 (rounds 0–3, 4–5); one batch ahead, the
        // first batch's loads are followed by prefetches of rounds 4 and 5 (weights, metadata,
        // scales), round 5's only for warps below 86 − 80 = 6, all before the first mma.
        let k = try LinearKernel(weights: .int4Sparse24, rows: 16, columns: 11008, tokenTiles: 1, warps: 16, prefetchAhead: 1)
        #expect(k.entry.hasSuffix("_w16_pa1"))
        let lines = k.ptxLines
        let prefetches = lines.filter { $0.contains("prefetch.global.L2") }
        #expect(prefetches.count == 6 && prefetches.filter { $0.hasPrefix("@%p") }.count == 3)
        #expect(prefetches[0].hasSuffix("+32768];") && prefetches[1].hasSuffix("+16384];") && prefetches[2].hasSuffix("+2048];"))
        #expect(lines.contains { $0.hasPrefix("setp.lt.u32") && $0.hasSuffix(", 6;") })
        let firstMMA = try #require(lines.firstIndex { $0.hasPrefix("mma.sp") })
        #expect(lines.lastIndex { $0.contains("prefetch.global.L2") }! < firstMMA)
        // With one batch there is nothing ahead; more than 3 batches ahead is refused.
        #expect(!(try LinearKernel(weights: .int4, rows: 16, columns: 1152, tokenTiles: 1, warps: 16, prefetchAhead: 2).ptx().contains("prefetch")))
        #expect(throws: PTXError.self) { try LinearKernel(weights: .int4, rows: 16, columns: 1152, tokenTiles: 1, prefetchAhead: 4) }
    }

    @Test func aUnitCountTheWarpsDoNotDivideIsGuarded() throws {
        // 9 units over 16 warps: only warps 0…8 have one; the rest skip it.
        let ptx = try LinearKernel(weights: .int4, rows: 16, columns: 1152, tokenTiles: 1, warps: 16).ptx()
        #expect(ptx.contains("setp.lt.u32 %p0, %r3, 9;"))
        #expect(ptx.contains("@!%p0 bra SKIP_"))
    }

    @Test func tiledKernelStagesActivationsThroughSharedMemory() throws {
        let sparse = try TiledLinearKernel(weights: .int4Sparse24, rows: 128, columns: 256).ptx()
        #expect(sparse.contains("cp.async.cg.shared.global"))
        #expect(sparse.contains("ldmatrix.sync.aligned.m8n8.x4.shared.b16"))
        let dense = try TiledLinearKernel(weights: .int4, rows: 128, columns: 256).ptx()
        #expect(dense.contains("st.shared.b32"))  // the dense k order is written pair by pair
        #expect(!dense.contains("cp.async"))
    }

    @Test func warpgroupKernelUsesSparseWgmmaFromRegisters() throws {
        let k = try WarpgroupLinearKernel(rows: 256, columns: 768, warpgroups: 2)
        let ptx = k.ptx()
        // Each of the 12 half units issues two k32 wgmmas (A = 4 dequantized registers, B by
        // descriptor, the metadata word, selector = the half), in a loop of 4 half units.
        #expect(ptx.components(separatedBy: "wgmma.mma_async.sp.sync.aligned.m64n128k32.f32.f16.f16").count - 1 == 8)
        #expect(ptx.contains("wgmma.commit_group.sync.aligned;"))
        #expect(ptx.contains("wgmma.wait_group.sync.aligned 1;"))
        #expect(ptx.contains("mbarrier.try_wait.parity.shared::cta.b64"))
        #expect(ptx.contains("mbarrier.arrive.expect_tx.shared::cta.b64"))
        #expect(ptx.contains(".extern .shared .align 1024 .b8 \(k.entry)_stage[];"))
        #expect(k.dynamicSharedBytes == 4 * (16384 + 8))
        #expect(ptx.contains("cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"))
        #expect(ptx.contains(".param .align 64 .b8 \(k.entry)_xmap[128]"))
        let ascii = ptx.unicodeScalars.allSatisfy { $0.isASCII }
        #expect(ascii)  // ptxas rejects anything else, comments included
        #expect(k.target == "sm_90a")
        #expect(PTXModule.text(entries: [ptx], target: k.target).contains(".version 8.3\n.target sm_90a"))
        // The descriptor: 128-byte swizzle, 8-row groups 1024 bytes apart (the high bits), leading
        // byte offset 1 (in the low word, with the address / 16); weights loaded at immediate
        // offsets from pointers that move two units an iteration.
        #expect(ptx.contains("0x4000004000000000;"))
        #expect(ptx.contains(", 0x10000;"))
        #expect(ptx.contains("+512];"))  // unit u + 1's values
        #expect(k.launchShape(tokens: 4096).grid == (2, 32, 1))
        #expect(try WarpgroupLinearKernel(rows: 4096, columns: 4096, warpgroups: 4).launchShape(tokens: 128).grid == (16, 1, 4))
        // 256 tokens a block: m64n256k32, 128 accumulators, 32 KB stages, one block an SM.
        let wide = try WarpgroupLinearKernel(rows: 4096, columns: 4096, blockTokens: 256)
        #expect(wide.ptx().contains("wgmma.mma_async.sp.sync.aligned.m64n256k32.f32.f16.f16"))
        #expect(!wide.ptx().contains(".minnctapersm"))
        // The weights come straight into registers (two units ahead, 16-byte loads at immediate
        // offsets), so no weight slots in shared memory and no cp.async in the stage loop; four
        // warpgroups too, whose 256-row staged tile (128 tokens of 528 bytes) then takes more
        // shared memory than the buffers.
        let four = try WarpgroupLinearKernel(rows: 256, columns: 768, warpgroups: 4)
        #expect(four.dynamicSharedBytes == 128 * 528 + 4 * 8)
        #expect(wide.dynamicSharedBytes == 4 * (32768 + 8))
        let wideText = wide.ptx(), wideStart = try #require(wideText.range(of: "WGMMA_UNITS"))
        let wideEnd = try #require(wideText.range(of: "bra WGMMA_UNITS", range: wideStart.upperBound..<wideText.endIndex))
        let wideLoop = wideText[wideStart.lowerBound..<wideEnd.upperBound]
        #expect(!wideLoop.contains("cp.async.ca") && !wideLoop.contains("cp.async.wait_group"))
        #expect(wideLoop.contains("ld.global.nc.v4.u32") && wideLoop.contains("+1024];"))  // unit u + 2's values
        #expect(wideLoop.contains("+1536];"))                                            // unit u + 3's values
        #expect(!four.ptx().contains("cp.async.ca") && four.ptx().contains("ld.global.nc.v4.u32"))
        #expect(wide.launchShape(tokens: 4096).grid == (32, 16, 1))
        #expect(wide.scratch(tokens: 4096).workspaceBytes == 0)
        // Split K: two splits reduce in a cluster of two (no workspace), four through the workspace.
        #expect(wide.launchShape(tokens: 512).grid == (32, 2, 2))
        #expect(wide.clusterShape(grid: (32, 2, 2))! == (1, 1, 2))
        #expect(wide.scratch(tokens: 512) == (0, 0))
        let narrow = try WarpgroupLinearKernel(rows: 4096, columns: 4096, blockTokens: 128)
        #expect(narrow.launchShape(tokens: 128).grid == (32, 1, 4))
        #expect(narrow.clusterShape(grid: (32, 1, 4)) == nil)
        #expect(narrow.scratch(tokens: 128) == (32 * 4 * 64 * 256 * 4, 32))
        #expect(try WarpgroupLinearKernel(rows: 11008, columns: 4096, blockTokens: 128).launchShape(tokens: 128).grid == (86, 1, 2))
        let widePTX = wide.ptx()
        for piece in ["%cluster_nctarank;", "%cluster_ctarank;", "mapa.shared::cluster.u32", "ld.shared.v4.f32",
                      "atom.global.add.u32", "mbarrier.arrive.expect_tx.shared::cta.b64"] {
            #expect(widePTX.contains(piece), "\(piece)")
        }
        // One relaxed cluster barrier (no fence), then byte-counted remote stores: each of a
        // warpgroup's 4 chunks (32 accumulators a thread with 256 tokens) as 8 v4 stores.
        #expect(widePTX.components(separatedBy: "barrier.cluster.arrive.relaxed.aligned;").count - 1 == 1)
        #expect(widePTX.components(separatedBy: "barrier.cluster.wait.aligned;").count - 1 == 1)
        #expect(!widePTX.contains("barrier.cluster.arrive;"))
        #expect(widePTX.components(separatedBy: "st.async.shared::cluster.mbarrier::complete_tx::bytes.v4.f32").count - 1 == 4 * 32 / 4)
        // 192 tokens: m64n192k32, 24 KB stages (1024-aligned, so the swizzle holds). The loop's
        // four stages an iteration use the four buffers in turn: each stage waits on its own
        // buffer's mbarrier at an immediate offset, for the iteration's phase (flipped once an
        // iteration), and the copies and descriptors take immediate offsets too (no division).
        let three = try WarpgroupLinearKernel(rows: 11008, columns: 4096, blockTokens: 192)
        let threePTX = three.ptx()
        #expect(threePTX.contains("wgmma.mma_async.sp.sync.aligned.m64n192k32.f32.f16.f16"))
        let loopStart = try #require(threePTX.range(of: "WGMMA_UNITS"))
        let loopEnd = try #require(threePTX.range(of: "bra WGMMA_UNITS", range: loopStart.upperBound..<threePTX.endIndex))
        #expect(!threePTX[loopStart.lowerBound..<loopEnd.upperBound].contains("div."))  // no division in the stage loop
        let waits = threePTX.split(separator: "\n").filter { $0.contains("mbarrier.try_wait.parity") }
        #expect(waits.count == 5)  // the loop's four stages, then the cluster reduction's copies on buffer 0's mbarrier
        for (i, wait) in waits.prefix(4).enumerated() { #expect(wait.contains("+\(8 * i)], %r")) }
        #expect(threePTX.contains("xor.b32"))
        #expect(threePTX.contains("+\(2 * 24576)], [%rd"))   // stage i + 2's activations into buffer 2
        #expect(three.dynamicSharedBytes == 4 * (24576 + 8))
        #expect(three.launchShape(tokens: 512).grid == (86, 3, 1))
        #expect(try WarpgroupLinearKernel(rows: 256, columns: 768, blockTokens: 64).ptx().contains(".minnctapersm 2"))
        // The token tile by waves: 128 at M = 128 (a split grid), 256 at M = 4096, and 256 for
        // 11008 rows at M = 512 too, split in two: 172 blocks, 1.3 waves of 132 SMs, become 344
        // half blocks (2.6 waves of half the length), reduced in clusters of two.
        #expect(WarpgroupLinearKernel.standardBlockTokens(rows: 4096, columns: 4096, tokens: 128) == 128)
        #expect(WarpgroupLinearKernel.standardBlockTokens(rows: 4096, columns: 4096, tokens: 4096) == 256)
        #expect(WarpgroupLinearKernel.standardBlockTokens(rows: 11008, columns: 4096, tokens: 512) == 256)
        let tall = try WarpgroupLinearKernel(rows: 11008, columns: 4096, blockTokens: 256)
        #expect(tall.launchShape(tokens: 512).grid == (86, 2, 2))
        #expect(tall.launchShape(tokens: 4096).grid == (86, 16, 1))  // 10.4 waves: halving saves too little
        #expect(WarpgroupLinearKernel.standardBlockTokens(rows: 4096, columns: 4096, tokens: 4096, warpgroups: 4) == 128)
        #expect(throws: PTXError.self) { try WarpgroupLinearKernel(rows: 128, columns: 768, warpgroups: 4) }
        #expect(throws: PTXError.self) { try WarpgroupLinearKernel(rows: 128, columns: 768, blockTokens: 96) }
        #expect(throws: PTXError.self) { try WarpgroupLinearKernel(rows: 256, columns: 768, warpgroups: 4, blockTokens: 256) }
        #expect(throws: PTXError.self) { try WarpgroupLinearKernel(rows: 256, columns: 768, warpgroups: 3) }
        // 16 or 32 tokens only when asked for (never picked), split K through the workspace.
        let sixteen = try WarpgroupLinearKernel(rows: 256, columns: 768, blockTokens: 16)
        #expect(sixteen.ptx().contains("wgmma.mma_async.sp.sync.aligned.m64n16k32.f32.f16.f16 {%f"))
        #expect(sixteen.clusterShape(grid: (2, 1, 2)) == nil && sixteen.dynamicSharedBytes == 4 * (2048 + 8))
        #expect(try WarpgroupLinearKernel(rows: 256, columns: 768, blockTokens: 32).clusterShape(grid: (2, 1, 2)) == nil)
        #expect(try WarpgroupLinearKernel(rows: 256, columns: 768, blockTokens: 64).clusterShape(grid: (2, 1, 2)) != nil)
        #expect(WarpgroupLinearKernel.standardBlockTokens(rows: 4096, columns: 4096, tokens: 16) == 64)
    }

    @Test func streamKKernelRunsDataParallelTilesThenATailOfSegments() throws {
        // 11008×4096 at M = 4096 with 256 tokens: 1376 tiles of 16 unit pairs on 132 blocks.
        let k = try WarpgroupLinearKernel(rows: 11008, columns: 4096, blockTokens: 256, streamK: true)
        #expect(k.entry.hasSuffix("_t256_sk"))
        #expect(k.streamKPairs(tokens: 4096) == 86 * 16 * 16)
        // 10.4 waves: G = 132 stream-K blocks (row 0) for the last 1.4 waves' tiles, then 9 rows
        // of 132 data-parallel tiles.
        #expect(k.streamKDataParallelTiles(tokens: 4096, slots: 132) == 9 * 132)
        #expect(k.launchShape(tokens: 4096).grid == (132, 10, 1))
        #expect(k.clusterShape(grid: (132, 10, 1)) == nil)
        // Below two waves all tiles are stream-K's; whole waves all data-parallel.
        #expect(k.launchShape(tokens: 512).grid == (132, 1, 1))
        #expect(try WarpgroupLinearKernel(rows: 8448, columns: 4096, blockTokens: 256, streamK: true).launchShape(tokens: 4096).grid == (132, 9, 1))
        // Two partial tiles a block in the workspace, a counter a tile.
        #expect(k.scratch(tokens: 4096) == (2 * 132 * 128 * 256 * 4, 86 * 16))
        // Fewer pairs than slots: one block a pair (256×768 at M = 1: 2 tiles of 3 pairs).
        let small = try WarpgroupLinearKernel(rows: 256, columns: 768, blockTokens: 256, streamK: true)
        #expect(small.launchShape(tokens: 1).grid == (6, 1, 1))
        // 128 tokens: two blocks an SM, so 264 slots.
        #expect(try WarpgroupLinearKernel(rows: 11008, columns: 4096, blockTokens: 128, streamK: true).launchShape(tokens: 4096).grid == (264, 10, 1))
        // The estimate: the busiest slot's pairs, ⌈22016 / 132⌉ = 167, at 256 tokens' rate; by it
        // stream-K takes 256 tokens at M = 512 and 4096 and 128 at M = 128 (half of a 256 tile idle).
        #expect(abs(k.estimatedMicroseconds(tokens: 4096) - Double(167 * 2 * 256) / 228) < 1e-9)
        #expect(WarpgroupLinearKernel.standardBlockTokens(rows: 11008, columns: 4096, tokens: 512, streamK: true) == 256)
        #expect(WarpgroupLinearKernel.standardBlockTokens(rows: 11008, columns: 4096, tokens: 4096, streamK: true) == 256)
        #expect(WarpgroupLinearKernel.standardBlockTokens(rows: 11008, columns: 4096, tokens: 128, streamK: true) == 128)
        let ptx = k.ptx()
        for piece in ["STREAM_K_SEGMENT", "fence.proxy.async.shared::cta;", "div.u64", "atom.global.add.u32", "st.global.v4.f32", "cp.async.cg.shared.global", "ld.shared.v4.f32", "membar.gl;"] {
            #expect(ptx.contains(piece), "\(piece)")
        }
        for absent in ["barrier.cluster", "mapa.", "%ctaid.z"] { #expect(!ptx.contains(absent), "\(absent)") }
        // A data-parallel block, a whole tile of a run and the last of a partial tile's blocks
        // each store it; the staged tile's loads are never predicated (a predicated load kept
        // its registers live across the segment loop, through local memory).
        #expect(ptx.components(separatedBy: "stmatrix.sync.aligned.m8n8.x4.trans.shared.b16").count - 1 == 3 * 256 / 16)
        #expect(!ptx.contains("ld.shared.v4.b32") || !ptx.split(separator: "\n").contains { $0.contains("@") && $0.contains("ld.shared.v4.b32") })
        #expect(ptx.contains("%ctaid.y") && ptx.contains("%nctaid.y"))
        // One loop of stages (the segment's), inside the loop over segments; the mbarriers set up once.
        #expect(ptx.components(separatedBy: "bra WGMMA_UNITS").count - 1 == 1)
        let lines = ptx.split(separator: "\n")
        let segment = try #require(lines.firstIndex { $0.hasPrefix("STREAM_K_SEGMENT") && $0.hasSuffix(":") })
        #expect(lines[segment...].contains { $0.contains("bra STREAM_K_SEGMENT") })
        #expect(lines[segment...].filter { $0.contains("mbarrier.init") }.isEmpty)  // set up once, before the segments
        // The default kernel is untouched by the option: no stream-K code in it.
        #expect(!(try WarpgroupLinearKernel(rows: 11008, columns: 4096, blockTokens: 256).ptx().contains("STREAM_K")))
    }

    @Test func streamKRunsCoverEveryPairOnceAndNameTheirTilesBlocks() {
        // The partition the stream-K kernel computes on the GPU: with T tiles on G blocks, the
        // first D = G·(⌊T/G⌋ − 1) tiles (all T when G divides T) are data-parallel, block (x, y)
        // of the grid's rows y > 0 taking tile (y − 1)·G + x; the P pairs of the rest are
        // stream-K, row 0's block b taking pairs
        // D·Q + [⌊bP/G⌋, ⌊(b+1)P/G⌋); such a tile t's blocks are owner(tQ − DQ) …
        // owner((t+1)Q − DQ − 1) with owner(q) = ⌊((q+1)G − 1)/P⌋; a block's partial of tile t
        // sits in slot 2b, or 2b + 1 unless t is its run's first tile. Checked for shapes with
        // no data-parallel tiles, some, and only those, and runs shorter than a tile, about one,
        // and longer.
        for (tiles, blocks, perTile) in [(1376, 132, 16), (172, 132, 16), (160, 132, 3), (2, 32, 16), (320, 264, 3), (5, 5, 1),
                                         (264, 132, 16), (400, 132, 2), (512, 132, 86)] {
            let dataParallel = tiles % blocks == 0 ? tiles : max(tiles / blocks - 1, 0) * blocks
            let base = dataParallel * perTile, pairs = (tiles - dataParallel) * perTile
            let start = { (b: Int) in base + b * pairs / blocks }
            let owner = { (q: Int) in ((q - base + 1) * blocks - 1) / pairs }
            var covered = [Int](repeating: 0, count: tiles * perTile)
            var slots: [Int: Int] = [:]  // slot → tile
            for y in 1 ..< 1 + dataParallel / blocks {
                for x in 0..<blocks {
                    let t = (y - 1) * blocks + x
                    for i in t * perTile ..< (t + 1) * perTile { covered[i] += 1 }
                }
            }
            for b in 0..<blocks {
                var q = start(b)
                let end = start(b + 1)
                #expect(end > q || pairs == 0, "block \(b) of \(blocks) has pairs")
                while q < end {
                    let t = q / perTile, segmentEnd = min(end, (t + 1) * perTile)
                    #expect(t >= dataParallel)
                    for i in q..<segmentEnd { covered[i] += 1; #expect(owner(i) == b) }
                    let first = owner(t * perTile), last = owner((t + 1) * perTile - 1)
                    #expect((first...last).contains(b))
                    if first != last {  // partial: its slot is this block's first or last segment's
                        let slot = 2 * b + (start(b) / perTile == t ? 0 : 1)
                        #expect(slots[slot] == nil, "slot \(slot) taken twice")
                        slots[slot] = t
                        #expect(q == start(b) || segmentEnd == end, "a partial segment is the run's first or last")
                    } else {
                        #expect(q == t * perTile && segmentEnd == (t + 1) * perTile)
                    }
                    q = segmentEnd
                }
            }
            #expect(covered.allSatisfy { $0 == 1 }, "T = \(tiles), G = \(blocks)")
        }
    }

    @Test func warpgroupKernelStoresItsTileThroughSharedMemory() throws {
        // The epilogue: each warp transposes pairs of n8 tiles into shared memory with one
        // stmatrix.x4.trans, then every thread copies 16-byte pieces of token rows to y, a pass
        // of 16 tokens at a time. Two warpgroups emit it twice (the workspace path and the
        // cluster path), four once; no 2-byte stores are left.
        for (groups, tokens) in [(2, 64), (2, 128), (2, 192), (2, 256), (4, 64), (4, 128)] {
            let k = try WarpgroupLinearKernel(rows: 512, columns: 1024, warpgroups: groups, blockTokens: tokens)
            let ptx = k.ptx()
            let paths = groups == 2 ? 2 : 1
            #expect(ptx.components(separatedBy: "stmatrix.sync.aligned.m8n8.x4.trans.shared.b16").count - 1 == paths * tokens / 16,
                    "\(groups) warpgroups, \(tokens) tokens")
            #expect(ptx.components(separatedBy: "st.global.v4.b32").count - 1 == paths * tokens / 16)
            #expect(!ptx.contains("st.global.b16"))
            // Token rows 16 bytes longer than the block's rows (the 8 rows of a stored matrix in
            // different banks), and the tile below the mbarriers, over the free buffers.
            #expect(k.tileRowStride == 2 * k.blockRows + 16)
            #expect(k.stagedTileBytes == tokens * (2 * 64 * groups + 16))
            #expect(k.stagedTileBytes <= k.dynamicSharedBytes - 4 * 8)
            // Pass q reads its tokens 16 · q · stride bytes on and writes them 16 · q token rows on.
            let last = tokens / 16 - 1
            #expect(ptx.contains("+\(16 * last * k.tileRowStride)];"))
            #expect(ptx.contains("+\(16 * last * 512 * 2)], {"))
        }
        // With split K in a cluster a block stores only the chunks it owns: the stmatrix of a
        // chunk's tile pairs is skipped, and each pass's stores are predicated on the owner.
        let wide = try WarpgroupLinearKernel(rows: 4096, columns: 4096, blockTokens: 256).ptx()
        let lines = wide.split(separator: "\n")
        let cluster = try #require(lines.firstIndex { $0.hasPrefix("CLUSTER_REDUCTION") && $0.hasSuffix(":") })
        let afterReduction = lines[cluster...]
        #expect(afterReduction.filter { $0.contains("bra TILE_STAGED") }.count == 16)
        #expect(afterReduction.filter { $0.contains("and.pred") }.count == 16)
        #expect(lines[..<cluster].filter { $0.contains("bra TILE_STAGED") || $0.contains("and.pred") }.count == 4)  // the loop's copy guards
    }

    @Test func warpgroupKernelWithTwoRowTilesSharesEachActivationStage() throws {
        let k = try WarpgroupLinearKernel(rows: 4096, columns: 4096, blockTokens: 128, rowTiles: 2)
        let ptx = k.ptx()
        #expect(k.blockRows == 256 && k.blocksPerMultiprocessor == 1 && k.entry.hasSuffix("_t128_r2"))
        #expect(!ptx.contains(".minnctapersm"))
        // Each k32 step: one wgmma a row tile, both on the step's descriptor, their own
        // accumulators (64 a row tile) and A registers; four stages an iteration.
        let wgmmas = ptx.split(separator: "\n").filter { $0.contains("wgmma.mma_async.sp.sync.aligned.m64n128k32") }
        #expect(wgmmas.count == 2 * 2 * 4)
        let operands = wgmmas.map { $0.split(separator: "}, ") }
        #expect(operands[0][2].hasPrefix("%rd") && operands[0][2].split(separator: ",")[0] == operands[1][2].split(separator: ",")[0])
        #expect(operands[0][0] != operands[1][0] && operands[0][1] != operands[1][1])
        #expect(operands[0][0].components(separatedBy: "%f").count - 1 == 64)
        // The second row tile's weights: 4W = 8 warp tiles (8 · 32 units) further on, at
        // immediate offsets from the same moving pointers.
        #expect(ptx.contains("+\(512 * 8 * 32)];") && ptx.contains("+\(256 * 8 * 32)];") && ptx.contains("+\(32 * 8 * 32)];"))
        // Its staged tile: token rows of 256 rows (528 bytes), over the buffers; row tile 1 at
        // 128 bytes into each row, in shared memory and in y.
        #expect(k.dynamicSharedBytes == 128 * 528 + 4 * 8)
        #expect(ptx.components(separatedBy: "stmatrix.sync.aligned.m8n8.x4.trans.shared.b16").count - 1 == 2 * 128 / 16)
        #expect(ptx.components(separatedBy: "st.global.v4.b32").count - 1 == 2 * 128 / 16)
        #expect(ptx.contains("+\(16 * 7 * 4096 * 2 + 256)], {"))
        // Grid and splits: 16 row blocks; a split goes through the workspace (no cluster), with
        // both row tiles' accumulators.
        #expect(k.launchShape(tokens: 4096).grid == (16, 32, 1))
        #expect(k.launchShape(tokens: 128).grid == (16, 1, 4))
        #expect(k.clusterShape(grid: (16, 1, 4)) == nil && k.clusterShape(grid: (16, 1, 2)) == nil)
        #expect(k.scratch(tokens: 128) == (16 * 4 * 128 * 256 * 4, 16))
        #expect(!ptx.contains("%cluster_nctarank"))
        // Two warpgroups of at most 128 tokens only, and not as stream-K.
        #expect(!WarpgroupLinearKernel.supports(rows: 4096, columns: 4096, blockTokens: 256, rowTiles: 2))
        #expect(!WarpgroupLinearKernel.supports(rows: 4096, columns: 4096, warpgroups: 4, rowTiles: 2))
        #expect(!WarpgroupLinearKernel.supports(rows: 128 * 3, columns: 4096, rowTiles: 2))
        #expect(throws: PTXError.self) { try WarpgroupLinearKernel(rows: 4096, columns: 4096, rowTiles: 2, streamK: true) }
    }

    @Test func smallMSplitsK() throws {
        let square = try TiledLinearKernel(weights: .int4Sparse24, rows: 4096, columns: 4096)
        #expect(square.launchShape(tokens: 128).grid == (32, 1, 4))   // 32 tiles → 128 blocks, 8 units each
        #expect(square.launchShape(tokens: 4096).grid == (32, 32, 1))  // enough blocks: no split
        #expect(square.launchShape(tokens: 512).grid == (32, 4, 1))
        #expect(square.scratch(tokens: 4096).workspaceBytes == 0)
        let uneven = try TiledLinearKernel(weights: .int4, rows: 128, columns: 2816)  // 22 units: 12 + 10
        #expect(uneven.launchShape(tokens: 1).grid == (1, 1, 2))
        #expect(uneven.scratch(tokens: 1) == (2 * 64 * 256 * 4, 1))
        let ptx = square.ptx()
        #expect(ptx.contains("atom.global.add.u32"))
        #expect(ptx.contains("membar.gl;"))
    }

    @Test func moduleHeaderTargetsSm80() {
        let text = PTXModule.text(entries: [UtilityKernels.spin])
        #expect(text.contains(".target sm_80"))
        #expect(text.contains(".visible .entry nm_spin("))
    }

    @Test func unsupportedShapesAreRefused() {
        #expect(throws: PTXError.self) { try LinearKernel(weights: .int4, rows: 24, columns: 256, tokenTiles: 1) }
        #expect(throws: PTXError.self) { try LinearKernel(weights: .int4, rows: 32, columns: 200, tokenTiles: 1) }
        #expect(throws: PTXError.self) { try LinearKernel(weights: .int4, rows: 32, columns: 256, tokenTiles: 3) }
        #expect(throws: PTXError.self) { try TiledLinearKernel(weights: .int4, rows: 64, columns: 256) }
        #expect(throws: PTXError.self) { try TiledLinearKernel(weights: .int4, rows: 128, columns: 384) }
    }
}

extension LinearKernel {
    /// The kernel's PTX, a line each, without indentation.
    var ptxLines: [String] { NMTargetPTXTests.ptxLines(ptx()) }
}

/// PTX text a line each, without indentation.
func ptxLines(_ ptx: String) -> [String] { ptx.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) } }
