/// PTX for `y = x · Wᵀ` (a `quant.linear` or, for the FP16 baseline, an `nn.linear`) at small
/// M (decode): memory-bound, so each weight byte is read once with 16-byte coalesced loads in
/// the order KernelWeightLayout wrote, dequantized in registers (INT4 → f16 with `lop3` and one
/// subtraction per pair, then a multiplication by the scale, or, `scaleSums`, one `fma` per f32
/// sum of a unit), and fed to the tensor cores with the weight
/// as the 16-row A operand and up to 8 tokens per B column tile:
/// `mma.sync.m16n8k16` (dense) or `mma.sp.sync.m16n8k32` (2:4, metadata from the layout).
///
/// One block computes R row tiles (16·R output rows) for 8·T tokens; its W warps split the K
/// units (warp w takes units w, w + W, …; each activation load serves the R tiles) and reduce
/// through shared memory. The grid is (rows / 16R, ⌈M / 8T⌉), so larger M runs as more token
/// tiles (correct, not fast: large M wants the tiled kernel). Activations are f16 `[M, K]` row-major, the output f16 `[M, N]`.
/// Parameters: weights, metadata, scales, x, y (u64 each), M (u32).
///
/// Split K (`splits` S > 1, sm_90): the S blocks of a thread-block cluster share a row tile
/// group; block s's warp w acts as warp s·W + w of one S·W-warp block (so each takes every
/// (S·W)-th unit), each block sums its warps in shared memory, and block 0 of the cluster adds
/// the others' sums through distributed shared memory (`mapa`, `ld.shared::cluster`) and stores.
/// The cluster shape is fixed in the PTX (`.reqnctapercluster`), so an ordinary launch runs it.
///
/// Dependent launch (`dependentLaunch`, sm_90): every block first lets the next kernel in the
/// stream start (`griddepcontrol.launch_dependents`), issues its first batch of weight loads, and
/// only then waits for the kernel before it to finish (`griddepcontrol.wait`) before it reads an
/// activation or writes an output. Launched with `CUDADevice.launch(…, dependent: true)`, a
/// kernel's weights stream in while the kernel ahead of it still runs; launched plainly, the wait
/// returns at once. (So the PTX says; in the SASS ptxas 13.0 makes of the LLaMA-7B-shaped kernels
/// the wait comes first, session 17; `tools/pdl_order.py` shows it. A `fence.sc.gpu` before the
/// wait kept the `.nc` loads above it and made every kernel slower, by up to 56%: session 18 of
/// docs/performance-gpu.md. Weak loads stay above it without a fence: `weakWeightLoads`, the
/// default only where it measured faster.) Its activations are read with coherent loads (`activationLoad`).
public struct LinearKernel: Sendable {
    public enum Weights: String, Sendable, CaseIterable { case fp16, int4, int4Sparse24 }

    public let weights: Weights
    public let rows: Int
    public let columns: Int
    /// n8 token tiles per block: 1 for M ≤ 8, 2 for larger M.
    public let tokenTiles: Int
    public let warps: Int
    /// Row tiles of 16 per block.
    public let rowTiles: Int
    /// Blocks (one cluster) that split K for one row tile group; > 1 needs sm_90.
    public let splits: Int
    /// Built for programmatic dependent launches (sm_90): weight loads before
    /// `griddepcontrol.wait` in the PTX (ptxas may sink them below it; see above).
    public let dependentLaunch: Bool
    /// L2 prefetch: before its first load, the block asks the L2
    /// for all of its weights, metadata and scales (`prefetch.global.L2`, a 128-byte line a
    /// thread at a time; the block's R row tiles are one contiguous run of each), so that a warp's
    /// later batches of units hit the L2 instead of each waiting a DRAM round trip, and, launched
    /// dependently, so that the block's weights are on their way while the kernel ahead still
    /// runs. Not with split K. Measured (docs/performance-gpu.md, "Session 18"): faster only with
    /// dependent launches at 4096×4096 (5–8%), slower everywhere else, by up to 23% (plain
    /// graph); with `scaleSums` (session 19) also at 11008×4096, M = 1. So `standard` turns it on
    /// for 2:4 kernels launched dependently whose warps load all their units in one batch.
    public let prefetch: Bool
    /// L2 prefetch ahead (0: none): while it loads batch k of its units, each warp
    /// asks the L2 for the weights, metadata and scales of its batch k + `prefetchAhead` (at the
    /// first batch, of batches 1 … `prefetchAhead`), one `prefetch.global.L2` for each load it
    /// will make, so that a kernel with several batches keeps more bytes on their way than its
    /// registers hold, in the order it needs them. Measured (docs/performance-gpu.md, "Session
    /// 20"): 4096×11008 M = 1 in a graph of dependent launches 8.08 → 7.52 us (1 or 2 ahead alike);
    /// slower at M = 16 (4096×11008 10.9 → 12.3 with 1, 11.2 with 2; 11008×4096 11.2 → 11.5,
    /// 12.5), where the staged kernels' instructions, not the round trips, set the time. So
    /// `standard` asks for 1 ahead for 2:4 one-token-tile kernels launched dependently whose
    /// warps load their units in several batches, and for the 16-warp ones it gives batches of one.
    public let prefetchAhead: Int
    /// INT4 where a warp's units all load in one batch: scale each unit's f32 sums instead of
    /// the f16 weights (`computeUnit`); fewer instructions, more registers (session 19 of
    /// docs/performance-gpu.md: faster there, slower with more batches).
    var scaleSums: Bool { weights != .fp16 && (sumsScaled ?? oneBatch) }
    /// `scaleSums` asked for (true: then with one accumulator set) or refused (false) whatever
    /// the batches; nil: `oneBatch`. Experimental (`nmc-run --[no-]decode-scale-sums`); measured
    /// with several batches in session 21 (docs/performance-gpu.md): no faster anywhere, 7% slower
    /// at 11008×4096, M = 16.
    public let sumsScaled: Bool?
    /// Units a warp loads before it computes the first of them (nil: `defaultBatch`; `standard`
    /// gives 1 to some kernels, see there). Measured in session 21 (docs/performance-gpu.md):
    /// batches of 4 with scaled sums slower at M = 16 (11008×4096 4% with its 4-warp blocks' spare
    /// registers; 4096×11008, which spills, 48%); ptxas hoists loads as registers allow anyway.
    public let batchUnits: Int?
    /// Blocks an SM must hold at once, asked for (nil: `defaultMinBlocks`): ptxas then keeps
    /// registers to 65536 / (blocks · threads), spilling if it must. Experimental
    /// (`nmc-run --decode-min-blocks N`): more warps an SM for the M = 16 kernels, whose time
    /// with no memory traffic at all is half of their time (session 21, docs/performance-gpu.md).
    public let blocksPerSM: Int?
    /// Weak loads (`ld.global`, not `.nc`) for the weights of the batch a warp loads before
    /// `griddepcontrol.wait` (`dependentLaunch` only). ptxas 13.0 sinks `.nc` loads below the
    /// wait (SASS `ACQBULK`) whatever the PTX's order, so a dependently launched kernel's weights
    /// only start once the kernel ahead has ended (L2 prefetch aside); weak loads it keeps above
    /// the wait, every first-batch load of the 2:4 kernels at the three LLaMA-7B shapes (session
    /// 23 of docs/performance-gpu.md). Measured there, graph of dependent launches: 11008×4096 at
    /// M = 16 (4-warp blocks, 3 an SM, so the next launch's blocks sit beside the running ones)
    /// 9.27 → 8.55 us; slower in the 16-warp kernels (4096² M = 16 4.58 → 5.36, M = 1 3.53 →
    /// 3.81), whose next launch finds no room until they end. `standard` asks for it in the
    /// 4-warp staged 2:4 kernel only (`nmc-run --[no-]decode-weak-weight-loads` overrides).
    public let weakWeightLoads: Bool
    /// A staged kernel's activations by the bulk tensor copy engine (`cp.async.bulk.tensor`, 2-D
    /// boxes through a tensor map, sm_90a) straight into shared memory, instead of 16-byte loads
    /// into registers and stores from them: LinearKernelTensorActivations.swift. `standard` asks
    /// for it where it gives batches of one (see there).
    public let tensorActivations: Bool
    /// With `tensorActivations`: each batch's copies are asked for a batch ahead, into a second
    /// set of buffers, so that they overlap the batch before's arithmetic. `standard` asks for it
    /// where it gives the tensor copies (see there; `nmc-run --[no-]decode-tensor-ahead` overrides).
    public let tensorAhead: Bool
    /// With `tensorActivations`: clusters of two neighbouring row blocks, each asking for one of a
    /// unit's two boxes into both blocks' buffers (`.multicast::cluster`), so that the L2 serves
    /// each box once a pair (LinearKernelTensorActivations.swift). Experimental
    /// (`nmc-run --decode-tensor-multicast`), only where no buffer is refilled.
    public let tensorMulticast: Bool
    public var entry: String {
        "nm_linear_\(weights.rawValue)_n\(rows)_k\(columns)_t\(tokenTiles)_r\(rowTiles)_w\(warps)" + (splits > 1 ? "_s\(splits)" : "")
            + (prefetch ? "_pf" : "") + (prefetchAhead > 0 ? "_pa\(prefetchAhead)" : "")
            + (weights == .fp16 || scaleSums == oneBatch ? "" : scaleSums ? "_ss" : "_ws")
            + (batch == defaultBatch ? "" : "_b\(batch)") + (minBlocks == defaultMinBlocks ? "" : "_m\(minBlocks)")
            + (dependentLaunch ? "_d" : "") + (weakFirstBatch ? "_wk" : "") + (tensorActivations ? tensorAhead ? "_tah" : "_ta" : "")
            + (tensorMulticast ? "_mc" : "")
    }
    /// The first batch's weight loads are weak (`weakWeightLoads` where it applies).
    var weakFirstBatch: Bool { weakWeightLoads && dependentLaunch }
    /// Blocks an SM must hold at once (`.minnctapersm`). A one-token-tile kernel launched
    /// dependently takes 2 (ptxas then uses 64 registers instead of 40; no third 16-warp block
    /// fits an SM): measured in graphs of dependent launches (session 7, docs/performance-gpu.md),
    /// 4096×4096 M = 1 4.41 → 4.25 us, 11008×4096 8.39 → 8.26, 4096×11008 unchanged; 3 (still 40
    /// registers) and 4 (32) were slower, 4.70 and 5.08 us, so the gain is not occupancy alone.
    /// (`standard` asks for 3 for the 4-warp staged 2:4 kernel launched dependently: see there.)
    public var minBlocks: Int { blocksPerSM ?? defaultMinBlocks }
    var defaultMinBlocks: Int { dependentLaunch && tokenTiles == 1 && warps == 16 ? 2 : 1 }
    /// The PTX target the entry needs (clusters and grid dependency control are sm_90's).
    public var target: String { tensorActivations ? "sm_90a" : splits > 1 || dependentLaunch ? "sm_90" : "sm_80" }
    public var threads: Int { 32 * warps }
    var units: Int { columns / KernelWeightLayout.unitColumns }
    /// Units a warp takes (the last round may leave some warps without one).
    var rounds: Int { (units + splits * warps - 1) / (splits * warps) }
    /// Every unit of a warp is loaded before the first is computed, so the kernel is bound by
    /// the one round trip and by what follows it, not by overlapping batches.
    public var oneBatch: Bool { rounds <= batch }

    public init(weights: Weights, rows: Int, columns: Int, tokenTiles: Int, warps: Int = 8, rowTiles: Int = 1, splits: Int = 1,
                dependentLaunch: Bool = false, prefetch: Bool = false, prefetchAhead: Int = 0, sumsScaled: Bool? = nil,
                batchUnits: Int? = nil, blocksPerSM: Int? = nil, weakWeightLoads: Bool = false, tensorActivations: Bool = false,
                tensorAhead: Bool = false, tensorMulticast: Bool = false) throws {
        try KernelWeightLayout.checkShape(rows: rows, columns: columns)
        guard (1...8).contains(batchUnits ?? 1) else { throw PTXError("linear kernel \(rows)x\(columns): a batch of \(batchUnits!) units is not supported (1 to 8)") }
        guard (1...16).contains(blocksPerSM ?? 1), (blocksPerSM ?? 1) * 32 * warps <= 2048 else {
            throw PTXError("linear kernel \(rows)x\(columns): \(blocksPerSM!) blocks of \(warps) warps do not fit an SM (2048 threads)")
        }
        guard tokenTiles == 1 || tokenTiles == 2, [1, 2, 4].contains(rowTiles), [2, 4, 8, 16].contains(warps), (0...3).contains(prefetchAhead),
              [1, 2, 4, 8].contains(splits), rows % (KernelWeightLayout.tileRows * rowTiles) == 0, !(prefetch && splits > 1) else {
            throw PTXError("linear kernel \(rows)x\(columns): \(tokenTiles) token tiles, \(rowTiles) row tiles, \(warps) warps, \(splits) splits\(prefetch ? " with L2 prefetch" : "")\(prefetchAhead > 0 ? ", prefetching \(prefetchAhead) batches ahead" : "") is not supported")
        }
        guard !tensorActivations || (weights == .int4Sparse24 && tokenTiles == 2) else {
            throw PTXError("linear kernel \(rows)x\(columns): activations by the tensor copy engine need the staged 2:4 kernel (two token tiles)")
        }
        guard !tensorAhead || tensorActivations else {
            throw PTXError("linear kernel \(rows)x\(columns): copies a batch ahead need the activations by the tensor copy engine")
        }
        self.weights = weights; self.rows = rows; self.columns = columns
        self.tokenTiles = tokenTiles; self.warps = warps; self.rowTiles = rowTiles; self.splits = splits
        self.dependentLaunch = dependentLaunch; self.prefetch = prefetch; self.prefetchAhead = prefetchAhead
        self.sumsScaled = sumsScaled; self.batchUnits = batchUnits; self.blocksPerSM = blocksPerSM
        self.weakWeightLoads = weakWeightLoads; self.tensorActivations = tensorActivations; self.tensorAhead = tensorAhead
        self.tensorMulticast = tensorMulticast
        guard !tensorMulticast || (tensorActivations && splits == 1 && rows % (2 * KernelWeightLayout.tileRows * rowTiles) == 0
                                   && batches <= tensorSets) else {
            throw PTXError("linear kernel \(rows)x\(columns): multicast copies need the tensor copies, no split K, an even number of row blocks and no buffer refilled (\(batches) batches of units into \(tensorSets) buffer sets)")
        }
        guard sharedBytes <= Self.maxSharedBytes else {
            throw PTXError("linear kernel \(rows)x\(columns): \(warps) warps with batches of \(batch) units\(tensorActivations ? " and the tensor copies' buffers" : "") need \(sharedBytes) bytes of shared memory, more than an SM has (\(Self.maxSharedBytes))")
        }
    }
    /// The most shared memory a block may have (sm_80 and sm_90: 227 KB).
    static let maxSharedBytes = 227 * 1024

    /// The configuration measured fastest on an H100 (docs/performance-gpu.md): 16 warps; with
    /// two token tiles the 2:4 kernel stages its activations in shared memory and takes two row
    /// tiles per block, so that each activation serves twice the weights. Its 16-warp blocks
    /// (about 100 registers a thread, 68 KB of staging) fit one to an SM: 16 warps where the grid
    /// is one wave of the H100's 132 SMs, 4 (more, smaller blocks an SM) where it is more. Measured
    /// at M = 16 (graph method): 4096×11008 10.7 us with 16 warps, 13.6 with 8, 13.9 with 4;
    /// 11008×4096 10.7 with 4, 12.2 with 8, 14.1 with 16 (docs/bench/linear-cluster-splitk-sweep.txt).
    /// `splits` (K over a cluster's blocks) stays 1: every split measured slower there.
    ///
    /// `dependentLaunch` (asked for by a caller that launches on sm_90) is granted to 16-warp
    /// blocks and to the 4-warp staged 2:4 kernel (`dependentAnyWarps`, experimental: to every
    /// block). Measured in graphs of launches (docs/performance-gpu.md, "Dependent
    /// launches"): with 16 warps few blocks of the next launch fit beside the running one, and
    /// its start fills the running one's tail (4096×11008 M = 16: 10.3 → 9.8 us); with 8
    /// or 4 warps many fit at once, and their loads slow the running kernel by more than they
    /// gain (4096×4096 M = 1 with 8 warps: 5.1 → 5.9 us). The 4-warp staged 2:4 kernel (M = 16
    /// where the grid is more than one wave) is the exception when held to 3 blocks an SM
    /// (`blocksPerSM`, nil: this choice): its coherent activation loads take it to 178 registers,
    /// so 2 blocks an SM, and the grid's 344 blocks (11008×4096) no longer fit at once; with 3
    /// (168 registers) they do, and 11008×4096 at M = 16 went from 11.1 us by plain graph to 9.3
    /// by graph of dependent launches (session 22; 13.6 with 2 blocks an SM). It also loads its
    /// first batch of weights weakly, above the wait (`weakWeightLoads`, nil: this choice): 9.27 →
    /// 8.55 us (session 23).
    ///
    /// `prefetch` (nil: this choice) is on for 2:4 kernels launched dependently whose warps load
    /// all their units in one batch (`oneBatch`), where it was measured faster (see `prefetch`);
    /// `prefetchAhead` (nil: this choice) is 1 for those with one token tile and several batches
    /// (see `prefetchAhead`), else 0.
    ///
    /// 16-warp 2:4 kernels launched dependently whose warps have more rounds than a default batch
    /// (4096×11008: 86 units, 6 rounds) load one unit a batch (`batchUnits`, nil: this choice),
    /// with the next batch's weights asked of the L2 (`prefetchAhead` 1), and the staged one (16
    /// tokens) takes its activations by the tensor copy engine (`tensorActivations`, nil: this
    /// choice where its batches are of one unit; sm_90a), each unit's copies asked for a unit
    /// ahead (`tensorAhead`, nil: this choice). Measured in graphs of dependent launches (session 30,
    /// docs/performance-gpu.md): 4096×11008 at M = 16 10.7 → 9.6 us with batches of one, 9.2 with
    /// the prefetch, 9.0 with the tensor copies (4.00x and 3.98x cuBLAS in two runs); at M = 1 7.5 → 7.2 us;
    /// session 31: 9.02 → 8.29 us with the copies a unit ahead (4.28x and 4.32x in two runs).
    /// The 4-warp 11008×4096 M = 16 kernel lost with batches of one (8.5 → 9.3 us, 8.7 with
    /// the prefetch), and kernels of one batch stay as they are.
    public static func standard(weights: Weights, rows: Int, columns: Int, tokenTiles: Int,
                                warps: Int? = nil, rowTiles: Int? = nil, splits: Int? = nil,
                                clusters: Bool = false, dependentLaunch: Bool = false, prefetch: Bool? = nil,
                                prefetchAhead: Int? = nil, sumsScaled: Bool? = nil, batchUnits: Int? = nil,
                                blocksPerSM: Int? = nil, dependentAnyWarps: Bool = false, weakWeightLoads: Bool? = nil,
                                tensorActivations: Bool? = nil, tensorAhead: Bool? = nil, tensorMulticast: Bool = false) throws -> LinearKernel {
        let sparse16 = tokenTiles == 2 && weights == .int4Sparse24
        let r = rowTiles ?? (sparse16 && rows % 32 == 0 ? 2 : 1)
        guard (splits ?? 1) == 1 || clusters else { throw PTXError("linear kernel: split K needs thread-block clusters (sm_90)") }
        let oneWave = rows / (KernelWeightLayout.tileRows * r) <= 132
        let w = warps ?? (sparse16 && !oneWave ? 4 : 16)
        let stagedFour = sparse16 && w == 4
        let dependent = dependentLaunch && (w == 16 || stagedFour || dependentAnyWarps)
        let minBlocks = blocksPerSM ?? (dependent && stagedFour ? 3 : nil)
        let weak = weakWeightLoads ?? (dependent && stagedFour)
        let kernel = try LinearKernel(weights: weights, rows: rows, columns: columns, tokenTiles: tokenTiles,
                                      warps: w, rowTiles: r, splits: splits ?? 1, dependentLaunch: dependent,
                                      batchUnits: batchUnits, blocksPerSM: minBlocks)
        let sparseDependent = weights == .int4Sparse24 && kernel.dependentLaunch && kernel.splits == 1
        let streamed = sparseDependent && w == 16 && kernel.rounds > kernel.defaultBatch
        let batch = batchUnits ?? (streamed ? 1 : nil)
        let oneBatch = kernel.rounds <= (batch ?? kernel.defaultBatch)
        let withPrefetch = prefetch ?? (sparseDependent && oneBatch)
        let batchesOfOne = streamed && batch == 1  // where the tensor copies, asked a unit ahead, were measured
        let tensor = (tensorActivations ?? batchesOfOne) && sparse16
        let ahead = prefetchAhead ?? (sparseDependent && (tokenTiles == 1 || streamed) && !oneBatch && !withPrefetch ? 1 : 0)
        return try LinearKernel(weights: weights, rows: rows, columns: columns, tokenTiles: tokenTiles, warps: w, rowTiles: r,
                                splits: kernel.splits, dependentLaunch: kernel.dependentLaunch, prefetch: withPrefetch, prefetchAhead: ahead,
                                sumsScaled: sumsScaled, batchUnits: batch, blocksPerSM: minBlocks, weakWeightLoads: weak,
                                tensorActivations: tensor, tensorAhead: (tensorAhead ?? batchesOfOne) && tensor,
                                tensorMulticast: tensorMulticast && tensor)
    }

    /// 2:4 with 16 tokens: a lane's B pairs for `mma.sp` are 16 bytes apart, so instead of 4-byte
    /// loads each warp copies its unit's 16 activation rows into shared memory with 16-byte
    /// accesses and takes the fragments with `ldmatrix`.
    var staged: Bool { weights == .int4Sparse24 && tokenTiles == 2 }
    /// A staged token row: 128 columns of f16, padded by 16 bytes so that `ldmatrix`'s 8 rows
    /// fall in different banks.
    static let stagedRowBytes = 272

    /// (grid, block) for M tokens.
    public func launchShape(tokens m: Int) -> (grid: (Int, Int, Int), block: (Int, Int, Int)) {
        ((splits * rows / (KernelWeightLayout.tileRows * rowTiles), (m + 8 * tokenTiles - 1) / (8 * tokenTiles), 1), (threads, 1, 1))
    }

    /// Bytes of one warp's weight stream per unit, per lane, and the per-unit metadata/scales.
    var unitBytes: Int { [Weights.fp16: 4096, .int4: 1024, .int4Sparse24: 512][weights]! }
    /// Units whose weights are loaded before the first of them is used.
    var batch: Int { batchUnits ?? defaultBatch }
    /// Batches a warp loads its units in.
    var batches: Int { (rounds + batch - 1) / batch }
    var defaultBatch: Int { weights == .fp16 || staged ? 2 : 4 }

    /// Shared memory: the reduction's buffer (then, split, the block's sums); a staged kernel's
    /// activation rows share it (16 rows a warp).
    var sharedBytes: Int {
        if tensorActivations { return tensorBarrierOffset + 8 * warps * tensorBuffers }
        return max(reductionBytes, staged ? warps * 16 * Self.stagedRowBytes : 0)
    }
    /// The reduction's buffer: every warp's sums (and, split, the block's).
    var reductionBytes: Int {
        let (T, R) = (tokenTiles, rowTiles)
        return warps * 4 * T * R * 32 * 4 + (splits > 1 ? 4 * T * R * 32 * 4 : 0)
    }
    /// Past the 48 KB an entry may declare statically (ptxas refuses more for sm_80 and sm_90,
    /// though not for sm_90a: the 16-warp staged 2:4 kernel's 68 KB), the buffer is dynamic
    /// (`.extern .shared`): launch with this many bytes, allowed by `allowDynamicSharedBytes`.
    /// 0 where it is static.
    public var dynamicSharedBytes: Int { sharedBytes > 48 * 1024 ? sharedBytes : 0 }

    /// The `.entry` text (append to a module with `PTXModule`).
    public func ptx() -> String {
        var b = PTXBuilder()
        let T = tokenTiles, W = warps, U = units, R = rowTiles, S = splits, SW = splits * warps
        let prm = ["w", "meta", "scales", "x", "y"].map { "\(entry)_\($0)" }
        var ptr: [String] = []
        for p in prm {
            let r = b.reg("rd"), g = b.reg("rd")
            b.emit("ld.param.u64 \(r), [\(p)];")
            b.emit("cvta.to.global.u64 \(g), \(r);")
            ptr.append(g)
        }
        let (wPtr, metaPtr, scalePtr, xPtr, yPtr) = (ptr[0], ptr[1], ptr[2], ptr[3], ptr[4])
        if dependentLaunch { b.emit("griddepcontrol.launch_dependents;") }
        let m = b.reg("r")
        b.emit("ld.param.u32 \(m), [\(entry)_m];")
        let tid = b.reg("r"), lane = b.reg("r"), warp = b.reg("r"), g = b.reg("r"), t = b.reg("r")
        let tile = b.reg("r"), tokenBase = b.reg("r")
        b.emit("mov.u32 \(tid), %tid.x;")
        b.emit("and.b32 \(lane), \(tid), 31;")
        b.emit("shr.u32 \(warp), \(tid), 5;")
        b.emit("shr.u32 \(g), \(lane), 2;")
        b.emit("and.b32 \(t), \(lane), 3;")
        // vwarp: the warp's place among the S·W warps that split K (its own warp when S = 1).
        let vwarp: String
        if S > 1 {
            let rank = b.reg("r")
            vwarp = b.reg("r")
            b.emit("mov.u32 \(tile), %clusterid.x;")
            b.emit("mov.u32 \(rank), %cluster_ctarank;")
            b.emit("mad.lo.u32 \(vwarp), \(rank), \(W), \(warp);")
        } else {
            vwarp = warp
            b.emit("mov.u32 \(tile), %ctaid.x;")
        }
        b.emit("mov.u32 \(tokenBase), %ctaid.y;")
        b.emit("mul.lo.u32 \(tokenBase), \(tokenBase), \(8 * T);")
        // (tile·R·U + warp): the index of this warp's first unit in the layouts; row tile r of
        // the block is r·U units further.
        let firstUnit = b.reg("r")
        b.emit("mad.lo.u32 \(firstUnit), \(tile), \(R * U), \(vwarp);")
        func address(_ base: String, _ index: String, _ scale: Int, plus extra: (String, Int)? = nil) -> String {
            let off = b.reg("r"), wide = b.reg("rd"), out = b.reg("rd")
            b.emit("mul.lo.u32 \(off), \(index), \(scale);")
            if let (r, s) = extra { b.emit("mad.lo.u32 \(off), \(r), \(s), \(off);") }
            b.emit("cvt.u64.u32 \(wide), \(off);")
            b.emit("add.s64 \(out), \(base), \(wide);")
            return out
        }
        let wLane = address(wPtr, firstUnit, unitBytes, plus: (lane, 16))
        let metaLane = weights == .int4Sparse24 ? address(metaPtr, firstUnit, 256, plus: (lane, 8)) : ""
        let scaleLane = weights == .fp16 ? "" : address(scalePtr, firstUnit, 32, plus: (g, 4))
        if prefetch {
            let blockUnit = b.reg("r")
            b.emit("mul.lo.u32 \(blockUnit), \(tile), \(R * U);")
            var streams = [(wPtr, unitBytes)]
            if weights == .int4Sparse24 { streams.append((metaPtr, 256)) }
            if weights != .fp16 { streams.append((scalePtr, 32)) }
            for (base, bytes) in streams { prefetchToL2(&b, address(base, blockUnit, bytes, plus: (tid, 128)), lines: (R * U * bytes + 127) / 128, tid: tid) }
        }
        // Activation rows: token = tokenBase + 8·nt + g, clamped to M − 1 (a clamped token's
        // column of the result is never stored, so its values do not matter).
        var xLane: [String] = []
        let mLast = b.reg("r")
        b.emit("sub.u32 \(mLast), \(m), 1;")
        var staging = (store: "", load: "")
        var tensor: TensorStaging? = nil
        if tensorActivations {
            tensor = tensorSetup(&b, warp: warp, lane: lane, vwarp: vwarp, tokenBase: tokenBase)
        } else if staged {
            // Lane l copies 16-byte chunk l % 16 of token rows l / 16 + 2i (i = 0…7) to its warp's
            // rows, and reads ldmatrix row l % 8 of matrix l / 8.
            let base = b.reg("r"), tmp = b.reg("r"), row = b.reg("r"), chunk = b.reg("r")
            b.emit("mov.u32 \(base), \(entry)_red;")
            b.emit("mad.lo.u32 \(base), \(warp), \(16 * Self.stagedRowBytes), \(base);")
            b.emit("shr.u32 \(row), \(lane), 4;")
            b.emit("and.b32 \(chunk), \(lane), 15;")
            let store = b.reg("r"), load = b.reg("r")
            b.emit("mad.lo.u32 \(store), \(row), \(Self.stagedRowBytes), \(base);")
            b.emit("mad.lo.u32 \(store), \(chunk), 16, \(store);")
            b.emit("and.b32 \(tmp), \(lane), 7;")
            b.emit("mad.lo.u32 \(load), \(tmp), \(Self.stagedRowBytes), \(base);")
            b.emit("shr.u32 \(tmp), \(lane), 3;")
            b.emit("mad.lo.u32 \(load), \(tmp), 16, \(load);")
            staging = (store, load)
            for i in 0..<8 {
                let tok = b.reg("r"), elems = b.reg("r")
                b.emit("add.u32 \(tok), \(tokenBase), \(row);")
                b.emit("add.u32 \(tok), \(tok), \(2 * i);")
                b.emit("min.u32 \(tok), \(tok), \(mLast);")
                b.emit("mul.lo.u32 \(elems), \(tok), \(columns);")
                b.emit("mad.lo.u32 \(elems), \(vwarp), \(KernelWeightLayout.unitColumns), \(elems);")
                b.emit("mad.lo.u32 \(elems), \(chunk), 8, \(elems);")
                xLane.append(address(xPtr, elems, 2))
            }
        }
        for nt in 0..<(staged ? 0 : T) {
            let tok = b.reg("r")
            b.emit("add.u32 \(tok), \(tokenBase), \(8 * nt);")
            b.emit("add.u32 \(tok), \(tok), \(g);")
            b.emit("min.u32 \(tok), \(tok), \(mLast);")
            let elems = b.reg("r")
            // element offset: token·K + 256/2·warp (the first unit) + the lane's own columns
            b.emit("mul.lo.u32 \(elems), \(tok), \(columns);")
            b.emit("mad.lo.u32 \(elems), \(vwarp), \(KernelWeightLayout.unitColumns), \(elems);")
            b.emit("mad.lo.u32 \(elems), \(t), \(weights == .int4Sparse24 ? 2 : 16), \(elems);")
            xLane.append(address(xPtr, elems, 2))
        }
        // Two accumulator sets (units alternate) halve the chain of dependent mma instructions;
        // with scaled sums asked for, each unit's chain starts afresh, and one set takes its fmas.
        let chains = rounds > 1 && sumsScaled != true ? 2 : 1
        let acc = (0..<chains).map { _ in (0..<R).map { _ in (0..<T).map { _ in b.regs("f", 4) } } }
        for a in acc.joined().joined().joined() { b.emit("mov.f32 \(a), 0f00000000;") }
        let consts = weights == .fp16 ? [] : b.int4Constants()
        let zero = weights == .fp16 ? [] : b.regs("f", 4)  // the C of each unit's first mma
        for z in zero { b.emit("mov.f32 \(z), 0f00000000;") }

        // The predicate of round j where it is the last and only warps w < U − j·SW have a unit
        // (made where first needed: never inside a skipped unit).
        var guards: [Int: String] = [:]
        func guardOf(_ j: Int) -> String? {
            guard (j + 1) * SW > U else { return nil }
            if guards[j] == nil {
                let p = b.reg("p")
                b.emit("setp.lt.u32 \(p), \(vwarp), \(U - j * SW);")
                guards[j] = p
            }
            return guards[j]
        }
        var j0 = 0
        while j0 < rounds {
            let js = Array(j0..<min(j0 + batch, rounds))
            var loaded: [Int: [UnitRegisters]] = [:]
            var activations: [Int: [[String]]] = [:]
            for j in js {
                loaded[j] = (0..<R).map { r in
                    loadUnit(&b, unitOffset: j * SW + r * U, pred: guardOf(j).map { "@\($0) " } ?? "", wLane: wLane, metaLane: metaLane, scaleLane: scaleLane,
                             op: weightLoad(firstBatch: j0 == 0))
                }
            }
            if prefetchAhead > 0 {
                let k = j0 / batch
                for ahead in (k == 0 ? Array(1...prefetchAhead) : [k + prefetchAhead]) where ahead < batches {
                    for j in (ahead * batch)..<min((ahead + 1) * batch, rounds) {
                        let pred = guardOf(j).map { "@\($0) " } ?? ""
                        for r in 0..<R {
                            for address in unitAddresses(unitOffset: j * SW + r * U, wLane: wLane, metaLane: metaLane, scaleLane: scaleLane).all {
                                b.emit("\(pred)prefetch.global.L2 \(address);")
                            }
                        }
                    }
                }
            }
            // The weights never change: only activations (and the output) wait for the kernel ahead.
            if dependentLaunch && j0 == 0 { b.emit("griddepcontrol.wait;") }
            // With one token tile the activations fit in registers beside the weights: load them
            // now too, so that no load waits behind the weights' arithmetic.
            if let tensor {
                if tensorMulticast && j0 == 0 { b.emit("barrier.cluster.wait.acquire.aligned;") }  // the pair's mbarriers are initialized
                for c in tensorBatchesToCopy(at: j0 / batch, batches: batches) {
                    let units = Array((c * batch)..<min((c + 1) * batch, rounds))
                    for j in units { _ = guardOf(j) }  // a batch ahead's guards, made here, outside any skipped unit
                    tensorCopy(&b, tensor, units: units, batch: c, guards: guards)
                }
            } else {
                for j in js where T == 1 || staged {
                    activations[j] = loadActivations(&b, j: j, pred: guards[j].map { "@\($0) " } ?? "", xLane: xLane)
                }
            }
            for j in js {
                let skip = b.label("skip")
                if let p = guards[j] { b.emit("@!\(p) bra \(skip);") }
                let x: [[String]]
                if let tensor {
                    x = tensorFragments(&b, tensor, buffer: tensorSet(j0 / batch).first + j - j0, parity: tensorSet(j0 / batch).parity)
                } else {
                    let loadedX = activations[j] ?? loadActivations(&b, j: j, pred: "", xLane: xLane)
                    x = staged ? stage(&b, loadedX[0], staging) : loadedX
                }
                computeUnit(&b, regs: loaded[j]!, x: x, acc: acc[j % chains], consts: consts, zero: zero)
                if guards[j] != nil { b.place(skip) }
            }
            j0 += batch
        }
        for (a, c) in zip(acc[0].joined().joined(), acc[chains - 1].joined().joined()) where chains > 1 {
            b.emit("add.f32 \(a), \(a), \(c);")
        }
        if staged { b.emit("bar.sync 0;") }  // every warp is done with its rows before the reduction reuses them
        reduceAndStore(&b, acc: acc[0], tid: tid, lane: lane, warp: warp, tile: tile, tokenBase: tokenBase, m: m, yPtr: yPtr)

        let declared = prm.map { ".param .u64 \($0)" } + [".param .u32 \(entry)_m"]
            + (tensorActivations ? [".param .align 64 .b8 \(entry)_xmap[128]"] : [])
        let params = declared.enumerated().map { "    " + $1 + ($0 < declared.count - 1 ? "," : "") }
        let clusterBlocks = tensorMulticast ? 2 : S  // a pair sharing copies, or the blocks splitting K
        let cluster = clusterBlocks > 1 ? [".reqnctapercluster \(clusterBlocks), 1, 1"] : []
        let dynamic = dynamicSharedBytes > 0
        let align = tensorActivations ? 1024 : 16  // the 128-byte swizzle's pattern repeats every 1024 bytes
        return ((dynamic ? [".extern .shared .align \(align) .b8 \(entry)_red[];"] : []) + [".visible .entry \(entry)("] + params
                + [")", ".maxntid \(threads), 1, 1"] + (minBlocks > 1 ? [".minnctapersm \(minBlocks)"] : []) + cluster + ["{"]
                + b.declarations + (dynamic ? [] : ["    .shared .align \(align) .b8 \(entry)_red[\(sharedBytes)];"])
                + b.body + ["    ret;", "}", ""]).joined(separator: "\n")
    }

    struct UnitRegisters { var w: [String]; var meta: [String]; var scale: String? }

    /// Thread t asks the L2 for lines t, t + threads, … of the `lines` 128-byte lines from
    /// `start` (the block's first byte plus t·128; every line starts within the block's run).
    private func prefetchToL2(_ b: inout PTXBuilder, _ start: String, lines: Int, tid: String) {
        for i in 0..<((lines + threads - 1) / threads) {
            var pred = ""
            if (i + 1) * threads > lines {  // only threads t < lines − i·threads have a line this round
                let p = b.reg("p")
                b.emit("setp.lt.u32 \(p), \(tid), \(lines - i * threads);")
                pred = "@\(p) "
            }
            b.emit("\(pred)prefetch.global.L2 [\(start)+\(i * threads * 128)];")
        }
    }

    /// The lane's addresses of unit `warp + j·W`'s weight vectors (512 bytes a warp each),
    /// metadata and scale: what `loadUnit` loads and `prefetchAhead` asks the L2 for.
    private func unitAddresses(unitOffset: Int, wLane: String, metaLane: String, scaleLane: String) -> (w: [String], meta: String?, scale: String?, all: [String]) {
        let w = (0..<(unitBytes / 512)).map { "[\(wLane)+\(unitOffset * unitBytes + 512 * $0)]" }
        let meta = weights == .int4Sparse24 ? "[\(metaLane)+\(unitOffset * 256)]" : nil
        let scale = weights != .fp16 ? "[\(scaleLane)+\(unitOffset * 32)]" : nil
        return (w, meta, scale, w + [meta, scale].compactMap { $0 })
    }

    /// Issues the loads of unit `warp + j·W`'s weights (and metadata, scales).
    private func loadUnit(_ b: inout PTXBuilder, unitOffset: Int, pred: String, wLane: String, metaLane: String, scaleLane: String,
                          op: String) -> UnitRegisters {
        let at = unitAddresses(unitOffset: unitOffset, wLane: wLane, metaLane: metaLane, scaleLane: scaleLane)
        let w = at.w.flatMap { address -> [String] in
            let r = b.regs("r", 4)
            b.emit("\(pred)\(op).v4.u32 {\(r.joined(separator: ", "))}, \(address);")
            return r
        }
        var meta: [String] = []
        if let address = at.meta {
            meta = b.regs("r", 2)
            b.emit("\(pred)\(op).v2.u32 {\(meta.joined(separator: ", "))}, \(address);")
        }
        let scale = at.scale.map { address -> String in
            let s = b.reg("r")
            b.emit("\(pred)\(op).u32 \(s), \(address);")
            return s
        }
        return UnitRegisters(w: w, meta: meta, scale: scale)
    }

    /// The activations' load: `ld.global.nc` (the read-only path), but not where the kernel
    /// may start before the kernel that writes them has ended (`dependentLaunch`): there the
    /// buffer is not read-only for the kernel's lifetime, and ptxas moves `.nc` loads across
    /// `griddepcontrol.wait` (measured in session 17's SASS: with the L2 prefetch, every
    /// activation load and `mma` ran before the wait).
    var activationLoad: String { dependentLaunch ? "ld.global" : "ld.global.nc" }
    /// The weights' load: `ld.global.nc`, but weak for the batch loaded before the wait where
    /// `weakWeightLoads` asks for it (ptxas keeps weak loads above the wait).
    func weightLoad(firstBatch: Bool) -> String { weakFirstBatch && firstBatch ? "ld.global" : "ld.global.nc" }

    /// Dequantizes one unit's weights (for each row tile) and runs its tensor-core steps for
    /// every token tile. INT4 weights go to the `mma` unscaled (q exactly, in f16): a unit is one
    /// scale group, so its steps sum into fresh f32 accumulators, and one `fma` a sum applies the
    /// row's scale while adding it to the kernel's (`acc`). That leaves one `sub.f16x2` a weight
    /// pair, not a `sub` and a `mul`, and is exact up to the f32 sums.
    private func computeUnit(_ b: inout PTXBuilder, regs: [UnitRegisters], x: [[String]], acc: [[[String]]], consts: [String], zero: [String]) {
        func mma(_ d: [String], _ c: [String], _ a: [String], _ bRegs: [String], meta: String? = nil, selector: Int = 0) {
            let (d, c) = ("{\(d.joined(separator: ", "))}", "{\(c.joined(separator: ", "))}")
            if let e = meta {
                b.emit("mma.sp.sync.aligned.m16n8k32.row.col.f32.f16.f16.f32 \(d), {\(a.joined(separator: ", "))}, {\(bRegs.joined(separator: ", "))}, \(c), \(e), \(selector);")
            } else {
                b.emit("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 \(d), {\(a.joined(separator: ", "))}, {\(bRegs.joined(separator: ", "))}, \(c);")
            }
        }
        if weights == .fp16 {
            for h in 0..<2 { for s in 0..<4 { for r in 0..<rowTiles {
                let a = Array(regs[r].w[(16 * h + 4 * s)..<(16 * h + 4 * s + 4)])
                for nt in 0..<tokenTiles { mma(acc[r][nt], acc[r][nt], a, [x[nt][8 * h + 2 * s], x[nt][8 * h + 2 * s + 1]]) }
            } } }
            return
        }
        // (word, B registers of token tile nt, metadata, selector) of each tensor-core step
        let steps: [(word: Int, x: (Int) -> [String], meta: (Int) -> String?, selector: Int)] = weights == .int4Sparse24
            ? (0..<4).map { s in (s, { nt in Array(x[nt][(4 * s)..<(4 * s + 4)]) }, { r in regs[r].meta[s % 2] }, s / 2) }
            : (0..<8).map { i in (i, { nt in [x[nt][2 * i], x[nt][2 * i + 1]] }, { _ in nil }, 0) }
        guard scaleSums else {
            let scales = regs.map { b.scalePairs($0.scale!) }
            for step in steps { for r in 0..<rowTiles {
                let a = b.dequantizeInt4(regs[r].w[step.word], constants: consts, scales: scales[r])
                for nt in 0..<tokenTiles { mma(acc[r][nt], acc[r][nt], a, step.x(nt), meta: step.meta(r), selector: step.selector) }
            } }
            return
        }
        for r in 0..<rowTiles {
            let sums = (0..<tokenTiles).map { _ in b.regs("f", 4) }
            for (i, step) in steps.enumerated() {
                let a = b.dequantizeInt4(regs[r].w[step.word], constants: consts, scales: nil)
                for nt in 0..<tokenTiles { mma(sums[nt], i == 0 ? zero : sums[nt], a, step.x(nt), meta: step.meta(r), selector: step.selector) }
            }
            let scale = b.scaleFloats(regs[r].scale!)
            for nt in 0..<tokenTiles {
                for c in 0..<4 { b.emit("fma.rn.f32 \(acc[r][nt][c]), \(sums[nt][c]), \(c < 2 ? scale.0 : scale.1), \(acc[r][nt][c]);") }
            }
        }
    }
}
