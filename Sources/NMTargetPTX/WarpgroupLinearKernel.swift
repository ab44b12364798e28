/// PTX for `y = x · Wᵀ` at large M (prefill) with 2:4 INT4 weights on Hopper (`sm_90a`):
/// warpgroup MMA, `wgmma.mma_async.sp.m64nNk32` (N: the block's tokens), the sparse A (the
/// weights) from registers and B (the activations) read by the tensor cores straight from shared
/// memory.
///
/// It reads the same weight layout as `LinearKernel` and `TiledLinearKernel`: warp w of a block
/// owns row tile w (16 rows; with `rowTiles` 2 also row tile w + 4W), loads its lane's 16 bytes
/// of values, 8 of metadata and 4 of scales per 128-column unit straight into registers (two
/// units ahead of their use) and dequantizes them there into the A fragments of
/// `mma.sp.m16n8k32`, which are the per-warp slices
/// of the warpgroup's 64-row A (the metadata too: its 32-bit word per lane and the sparsity
/// selector are the same). A warpgroup (4 consecutive warps, 64 rows; two such row tiles with
/// `rowTiles` 2, each its own `wgmma` on the same activations) multiplies them by the block's N
/// tokens (64, 128, 192 or 256): N / 2 f32 accumulators a thread a row tile, the `m64nN`
/// accumulator layout (the m16n8 one per warp, N / 8 n8 tiles).
///
/// Activations arrive by the bulk tensor copy engine (`cp.async.bulk.tensor`, one instruction of
/// thread 0 per stage, completing on the stage buffer's mbarrier) in stages of 64 columns × N
/// tokens (128·N bytes), two stages ahead, in four rotating buffers of dynamic shared memory (the
/// loop's four stages an iteration use buffers 0 … 3 in turn, so every buffer and mbarrier address
/// is an immediate), laid out with the 128-byte swizzle the `wgmma` descriptor names (the
/// tensor map, a by-value parameter made by `CUDADevice.tensorMapF16`, asks the copy engine for
/// it; tokens past M arrive as zeros). Each stage's `wgmma`s are committed as a group and the
/// warpgroup waits only for the group before (`wgmma.wait_group 1`), so the tensor cores always
/// have the next stage queued; a buffer is refilled two stages after it was read, once every
/// warpgroup has passed the barrier that follows its wait. The weights come by `ld.global.nc`
/// into two register sets a row tile, two units ahead (not through shared memory, which measured
/// slower: session 12), and each stage's A fragments and metadata words are made one stage ahead
/// into registers no in-flight `wgmma` reads (ptxas would otherwise serialize the `wgmma`s,
/// C7513); `tools/wgmma_hazards.py` checks the SASS for writes of registers a `wgmma` in flight
/// still reads.
///
/// The finished tile leaves through shared memory (`storeTile`: `stmatrix.trans` into token rows,
/// then 16-byte stores), not as 2-byte stores from the accumulators.
///
/// Grid: (rows / 64WR, ⌈M / N⌉, S) with W warpgroups of R row tiles a block; split K as
/// `TiledLinearKernel` (or, with `streamK`, whole waves of tiles then a stream-K tail:
/// `WarpgroupStreamK.swift`). Requires rows % 64WR = 0 and an even number of K units.
/// Parameters: those of `TiledLinearKernel`, then the activations' tensor map (128 bytes).
public struct WarpgroupLinearKernel: PrefillLinearKernel {
    public let rows: Int
    public let columns: Int
    /// Warpgroups a block (2 or 4): more share each activation stage among more rows (fewer
    /// shared-memory copies per `wgmma`), fewer fit two blocks an SM.
    public let warpgroups: Int
    /// Tokens a block (the wgmma's N, one of `tokenTiles`): 128 takes 64 accumulators a thread
    /// (two blocks an SM with two warpgroups), 256 takes 128 (one block an SM).
    public let blockTokens: Int
    /// Row tiles of 64 a warpgroup (1 or 2; 2 with two warpgroups of at most 128 tokens,
    /// experimental): two make a block of 256 rows from two warpgroups, each `wgmma` pair sharing
    /// one activation descriptor, so each activation stage serves twice the rows. Their 128
    /// accumulators a thread leave one block an SM. They measured level with the 128-row default
    /// ("Session 13", docs/performance-gpu.md).
    public let rowTiles: Int
    /// Stream-K (`WarpgroupStreamK.swift`): whole waves of tiles as a plain grid, the last one to
    /// two waves cut into equal runs of (tile, unit pair) steps, one a slot of the SMs, partial
    /// tiles summed through the workspace. Off by default: slower than the grid as measured in
    /// sessions 11 and 12, also after its spill fix (docs/performance-gpu.md).
    public let streamK: Bool
    /// The token tiles a block can take: multiples of 64 (a 128-byte-swizzled stage stays
    /// 1024-byte aligned) up to the bulk copy's 256-row box.
    public static let tokenTiles = [64, 128, 192, 256]
    /// Narrow token tiles a block can also take when asked for (`nmc-run --block-tokens`), never
    /// picked by `standardBlockTokens`: the `wgmma` kernel at decode's M = 16 (experimental,
    /// session 24 of docs/performance-gpu.md). A stage of 16 or 32 token rows is still whole
    /// 1024-byte swizzle atoms. They split K through the workspace, not the cluster, whose
    /// reduction hands out quarters of a warpgroup's n8 tiles and stores them in pairs (with 32
    /// tokens a quarter is one tile, and gpu-check caught pairs stored half unreduced).
    public static let narrowTokenTiles = [16, 32]
    var stageBytes: Int { blockTokens * 128 }
    /// Activation buffers: a buffer is refilled once `wgmma.wait_group 1` has retired the stage
    /// that read it, so stages arrive two ahead. Eight (six stages ahead, three times the bytes in
    /// flight) measured no faster by graph in sessions 13 and 14 ("Session 14",
    /// docs/performance-gpu.md; in main's history at 17d23c0), nor 8 or 16 at M = 16 (session 24;
    /// 79e46d5). Activations multicast over a cluster of two row blocks measured slower in every
    /// form, also with one or two stages of slack between the pair (sessions 15 to 17; in main's
    /// history up to 911603a).
    static let buffers = 4
    public var blockRows: Int { 64 * warpgroups * rowTiles }
    public var threads: Int { 128 * warpgroups }
    /// Blocks an SM holds at once: two where two warpgroups of one row tile and at most 128
    /// tokens keep within 128 registers a thread, else one.
    public var blocksPerMultiprocessor: Int {
        Self.blocksPerMultiprocessor(warpgroups: warpgroups, rowTiles: rowTiles, blockTokens: blockTokens)
    }
    static func blocksPerMultiprocessor(warpgroups: Int, rowTiles: Int, blockTokens: Int) -> Int {
        warpgroups == 2 && rowTiles == 1 && blockTokens <= 128 ? 2 : 1
    }
    /// Bytes below the mbarriers: the activation buffers, or the staged output tile where that is
    /// larger (256 rows of 128 tokens: 67.6 KB against the buffers' 64 KB).
    var bytesBelowBarriers: Int { max(Self.buffers * stageBytes, stagedTileBytes) }
    public var dynamicSharedBytes: Int { bytesBelowBarriers + 8 * Self.buffers }
    public var target: String { "sm_90a" }
    public var activationMapTokens: Int? { blockTokens }
    public var entry: String {
        "nm_wgmma_linear_int4Sparse24_n\(rows)_k\(columns)_g\(warpgroups)_t\(blockTokens)" + (rowTiles > 1 ? "_r\(rowTiles)" : "")
            + (streamK ? "_sk" : "")
    }
    var units: Int { columns / KernelWeightLayout.unitColumns }

    /// Tokens × units an SM multiplies a microsecond with blocks of each token tile (two
    /// warpgroups), measured on an H100 at M = 4096 where every SM runs full waves
    /// (docs/performance-gpu.md, "Token tiles"; remeasured with four buffers in session 8,
    /// docs/bench/wgmma-token-tiles-sweep-s8.txt): wider tiles reuse each dequantized weight
    /// fragment for more tokens.
    static let throughput: [Int: Double] = [64: 132, 128: 180, 192: 189, 256: 228]

    /// The estimated time (us, without the launch) of a launch for M tokens: the busiest SM's
    /// blocks, each `blockTokens` × its split's units, at `throughput`. What it leaves out
    /// (the ramp, the split reduction) is about the same for every token tile.
    public func estimatedMicroseconds(tokens m: Int, multiprocessors: Int = 132) -> Double {
        if streamK {  // the busiest slot's pairs (every SM's blocks alike), without the partial tiles' sums
            let slots = multiprocessors * blocksPerMultiprocessor, pairs = (streamKPairs(tokens: m) + slots - 1) / slots
            return Double(blocksPerMultiprocessor * pairs * 2 * blockTokens * warpgroups / 2) / Self.throughput[blockTokens]!
        }
        let grid = launchShape(tokens: m, multiprocessors: multiprocessors).grid
        let blocks = grid.0 * grid.1 * grid.2, chunk = 2 * ((units / 2 + grid.2 - 1) / grid.2)  // the split's units, as in ptx()
        let busiest = (blocks + multiprocessors - 1) / multiprocessors
        return Double(busiest * blockTokens * chunk * warpgroups * rowTiles / 2) / Self.throughput[blockTokens]!  // init checked the tile
    }

    /// The token tile for M tokens on `multiprocessors` SMs: the one `estimatedMicroseconds`
    /// finds fastest, the wider on a tie. It is wave quantization that decides: 11008 rows at
    /// M = 512 make 172 blocks of 256 tokens (1.3 waves of one block an SM, so two) but 258 of
    /// 192 (two full waves of blocks three quarters the size).
    public static func standardBlockTokens(rows: Int, columns: Int, tokens m: Int, warpgroups: Int = 2, rowTiles: Int = 1,
                                           multiprocessors: Int = 132, streamK: Bool = false) -> Int {
        let kernels = tokenTiles.reversed().compactMap {
            try? WarpgroupLinearKernel(rows: rows, columns: columns, warpgroups: warpgroups, blockTokens: $0, rowTiles: rowTiles,
                                       streamK: streamK)
        }
        let best = kernels.min { $0.estimatedMicroseconds(tokens: m, multiprocessors: multiprocessors) < $1.estimatedMicroseconds(tokens: m, multiprocessors: multiprocessors) }
        return best?.blockTokens ?? 128
    }

    /// A `wgmma` shared-memory descriptor: the low word `low` (a start address / 16, with the
    /// leading byte offset 1) plus `offset16`, and the high word of the 128-byte swizzle with
    /// 8-row groups 1024 bytes apart (the stride byte offset).
    static func descriptor(_ b: inout PTXBuilder, low: String, plus offset16: Int) -> String {
        let d = b.reg("rd"), l = b.reg("r")
        b.emit("add.u32 \(l), \(low), \(offset16);")
        b.emit("cvt.u64.u32 \(d), \(l);")
        b.emit("or.b64 \(d), \(d), 0x\(String((UInt64(1) << 62) | (UInt64(1024 >> 4) << 32), radix: 16));")
        return d
    }

    public static func supports(rows: Int, columns: Int, warpgroups: Int = 2, blockTokens: Int = 128, rowTiles: Int = 1) -> Bool {
        [2, 4].contains(warpgroups) && (Self.tokenTiles + Self.narrowTokenTiles).contains(blockTokens) && (warpgroups == 2 || blockTokens <= 128)
            && (rowTiles == 1 || (rowTiles == 2 && warpgroups == 2 && blockTokens <= 128))
            && rows % (64 * warpgroups * rowTiles) == 0
            && columns % (2 * KernelWeightLayout.unitColumns) == 0
    }

    public init(rows: Int, columns: Int, warpgroups: Int = 2, blockTokens: Int = 128, rowTiles: Int = 1,
                streamK: Bool = false) throws {
        guard Self.supports(rows: rows, columns: columns, warpgroups: warpgroups, blockTokens: blockTokens, rowTiles: rowTiles) else {
            throw PTXError("warpgroup linear kernel \(rows)x\(columns) with \(warpgroups) warpgroups of \(rowTiles) row tiles, \(blockTokens) tokens: needs 2 warpgroups of \((Self.narrowTokenTiles + Self.tokenTiles).map(String.init).joined(separator: ", ")) tokens or 4 of at most 128, 2 row tiles only with 2 warpgroups of at most 128 tokens, rows a multiple of \(64 * warpgroups * rowTiles) and columns a multiple of 256")
        }
        guard !(streamK && rowTiles > 1) else {
            throw PTXError("warpgroup linear kernel: stream-K takes one row tile a warpgroup")
        }
        self.rows = rows; self.columns = columns; self.warpgroups = warpgroups; self.blockTokens = blockTokens
        self.rowTiles = rowTiles; self.streamK = streamK
    }

    /// (grid, block) for M tokens: `TiledLinearKernel`'s splits (doubling while the grid would
    /// leave more than half the SMs idle), and where that leaves K whole, two splits when they
    /// cut the waves of full-K blocks by at least a fifth (11008×4096 at M = 512 with 256 tokens:
    /// 172 blocks, two waves of one block an SM, become 344 half blocks, three waves of half
    /// the length: 79.5 → 71.7 us on an H100).
    public func launchShape(tokens m: Int, multiprocessors: Int = 132) -> (grid: (Int, Int, Int), block: (Int, Int, Int)) {
        if streamK {  // G stream-K blocks (row 0), then a row of G data-parallel tiles a whole wave (WarpgroupStreamK.swift)
            let slots = min(multiprocessors * blocksPerMultiprocessor, streamKPairs(tokens: m))
            return ((slots, 1 + streamKDataParallelTiles(tokens: m, slots: slots) / slots, 1), (threads, 1, 1))
        }
        var shape = TiledLinearKernel.splitLaunchShape(rowBlocks: rows / blockRows, tokenBlocks: (m + blockTokens - 1) / blockTokens,
                                                       units: units, threads: threads, multiprocessors: multiprocessors)
        let blocks = shape.grid.0 * shape.grid.1, slots = multiprocessors * blocksPerMultiprocessor
        let whole = (blocks + slots - 1) / slots, halves = (2 * blocks + slots - 1) / slots
        if shape.grid.2 == 1, clusterReduces, 2 * ((units / 2 + 1) / 2) >= 8, Double(halves) / 2 <= 0.8 * Double(whole) {
            shape.grid.2 = 2
        }
        return shape
    }

    /// Split K over two blocks reduces in their cluster (`reduceInCluster`, two warpgroups of one
    /// row tile); any other split through the global workspace (`TiledLinearKernel.reduceSplits`),
    /// which measured faster than clusters of 3 or more, whose blocks the scheduler packs two an SM.
    public func clusterShape(grid: (Int, Int, Int)) -> (Int, Int, Int)? {
        clusterReduces && grid.2 == 2 ? (1, 1, 2) : nil
    }
    var clusterReduces: Bool { warpgroups == 2 && rowTiles == 1 && !streamK && blockTokens >= 16 * Self.reductionChunks }

    public func scratch(grid: (Int, Int, Int)) -> (workspaceBytes: Int, counters: Int) {
        clusterShape(grid: grid) != nil ? (0, 0) : TiledLinearKernel.splitScratch(grid: grid, accumulators: rowTiles * blockTokens / 2, threads: threads)
    }

    /// Stream-K's grid does not say M, so its scratch depends on M: two partial tiles a stream-K
    /// block (grid.0 of them; its run's first and last segments may each cover part of a tile),
    /// a counter a tile.
    public func scratch(tokens m: Int, grid: (Int, Int, Int)) -> (workspaceBytes: Int, counters: Int) {
        guard streamK else { return scratch(grid: grid) }
        return (2 * grid.0 * (blockTokens / 2) * threads * 4, (rows / blockRows) * ((m + blockTokens - 1) / blockTokens))
    }

    public func ptx() -> String {
        var b = PTXBuilder()
        let U = units, T = threads, S = stageBytes, B = Self.buffers, L = B - 2
        let (ptr, m) = TiledLinearKernel.loadParameters(&b, entry: entry)
        let tid = b.reg("r"), lane = b.reg("r"), warp = b.reg("r"), g = b.reg("r")
        b.emit("mov.u32 \(tid), %tid.x;")
        b.emit("and.b32 \(lane), \(tid), 31;")
        b.emit("shr.u32 \(warp), \(tid), 5;")
        b.emit("shr.u32 \(g), \(lane), 2;")
        // The block's tile (first token, the warp's row tile) and its units [u, uEnd): from the
        // grid and the split (ctaid.z), or, with stream-K, a segment of the block's run, set
        // after the shared memory below (the segments loop back to there).
        let tokenBase = b.reg("r"), tile = b.reg("r")
        let u = b.reg("r"), p = b.reg("p")
        let split = b.reg("r"), splits = b.reg("r"), splitChunk = b.reg("r"), uEnd = b.reg("r")
        if !streamK {
            b.emit("mov.u32 \(tokenBase), %ctaid.y;")
            b.emit("mul.lo.u32 \(tokenBase), \(tokenBase), \(blockTokens);")
            b.emit("mov.u32 \(tile), %ctaid.x;")
            b.emit("mad.lo.u32 \(tile), \(tile), \(4 * warpgroups * rowTiles), \(warp);")  // this warp's (first) row tile
            // This split's units: [z·chunk, min(z·chunk + chunk, U)), chunk = 2·⌈U / 2S⌉.
            b.emit("mov.u32 \(split), %ctaid.z;")
            b.emit("mov.u32 \(splits), %nctaid.z;")
            b.emit("add.u32 \(splitChunk), \(splits), \(U / 2 - 1);")
            b.emit("div.u32 \(splitChunk), \(splitChunk), \(splits);")
            b.emit("shl.b32 \(splitChunk), \(splitChunk), 1;")
            b.emit("mul.lo.u32 \(u), \(split), \(splitChunk);")
            b.emit("add.u32 \(uEnd), \(u), \(splitChunk);")
            b.emit("min.u32 \(uEnd), \(uEnd), \(U);")
        }
        // The lane's weight streams from its row tile's unit u on: 8 bytes of values per half unit
        // (k32 steps 2h, 2h + 1), the unit's 8 bytes of metadata, the 4 bytes of its group's
        // scales (rows g, g + 8); advanced two units an iteration of the loop, whose stages then
        // address them with immediate offsets (also the warp's second row tile's, 4W tiles on).
        func weightStreams() -> (String, String, String) {
            let firstUnit = b.reg("r")
            b.emit("mad.lo.u32 \(firstUnit), \(tile), \(U), \(u);")
            return (b.wide(b.wide(ptr[0], firstUnit, times: 512), lane, times: 16),
                    b.wide(b.wide(ptr[1], firstUnit, times: 256), lane, times: 8),
                    b.wide(b.wide(ptr[2], firstUnit, times: 32), g, times: 4))
        }
        var streams = streamK ? nil : weightStreams()

        // Activations: thread 0 has the bulk tensor copy engine bring each stage (64 columns ×
        // N tokens, the 128-byte swizzle the wgmma descriptor reads, tokens past M as zeros)
        // into its buffer, completing on the buffer's mbarrier; the tensor map is a parameter.
        let smem = b.reg("r"), bars = b.reg("r"), xmap = b.reg("rd"), first = b.reg("p")
        b.emit("mov.u32 \(smem), \(entry)_stage;")
        let descLow = b.reg("r")   // the first buffer's wgmma descriptor, low word: address / 16, leading byte offset 1
        b.emit("shr.u32 \(descLow), \(smem), 4;")
        b.emit("or.b32 \(descLow), \(descLow), 0x10000;")
        b.emit("add.u32 \(bars), \(smem), \(bytesBelowBarriers);")
        b.emit("mov.u64 \(xmap), \(entry)_xmap;")
        b.emit("cvta.param.u64 \(xmap), \(xmap);")
        b.emit("setp.eq.u32 \(first), \(tid), 0;")
        for i in 0..<B { b.emit("@\(first) mbarrier.init.shared::cta.b64 [\(bars)+\(8 * i)], 1;") }
        b.emit("@\(first) fence.mbarrier_init.release.cluster;")
        b.emit("bar.sync 0;")

        // The accumulators: N / 8 n8 tiles of 4 a row tile (`acc` lists them all, row tile by row tile).
        let accTiles = (0..<rowTiles).map { _ in (0..<(blockTokens / 8)).map { _ in b.regs("f", 4) } }
        let acc = Array(accTiles.joined())
        if !streamK { for a in acc.joined() { b.emit("mov.f32 \(a), 0f00000000;") } }
        let accLists = accTiles.map { "{\($0.joined().joined(separator: ", "))}" }
        let consts = b.int4Constants()
        let one = b.reg("r"), scaleD = b.reg("p")
        b.emit("mov.u32 \(one), 1;")
        b.emit("setp.ne.u32 \(scaleD), \(one), 0;")  // D = A·B + D
        // Stream-K: each segment of the run takes its tile and units here, then its weight streams
        // and zeroed accumulators. The mbarriers' phase parity carries from segment to segment
        // (each buffer's mbarrier completes one phase an iteration).
        var run: StreamKRun? = nil, rowBlock: String? = nil, runPhase: String? = nil
        if streamK {
            let r = b.reg("r"), ph = b.reg("r")
            b.emit("mov.u32 \(ph), 0;")
            run = beginStreamK(&b, m: m, rowBlock: r, tokenBase: tokenBase, u: u, uEnd: uEnd)
            b.emit("mad.lo.u32 \(tile), \(r), \(4 * warpgroups * rowTiles), \(warp);")  // this warp's (first) row tile
            streams = weightStreams()
            for a in acc.joined() { b.emit("mov.f32 \(a), 0f00000000;") }
            rowBlock = r; runPhase = ph
        }
        let (wNext, metaNext, scaleNext) = streams!  // set on both paths above

        // Thread 0 (where `guard` holds, if given) starts the copy of stage `stage`'s activations
        // (counted from the iteration's unit u: columns 64 · stage on from unit u's first) into the
        // buffer at byte offset `buffer` (a multiple of S: its mbarrier is at bars + 8 · buffer / S).
        func loadActivations(_ stage: Int, into buffer: Int, guard inRange: String? = nil) {
            var p = first
            if let r = inRange { p = b.reg("p"); b.emit("and.pred \(p), \(first), \(r);") }
            let column = b.reg("r"), state = b.reg("rd")
            b.emit("mad.lo.u32 \(column), \(u), 128, \(64 * stage);")   // unit u + ⌊stage / 2⌋, half stage % 2
            b.emit("@\(p) mbarrier.arrive.expect_tx.shared::cta.b64 \(state), [\(bars)+\(8 * (buffer / S))], \(S);")
            b.emit("@\(p) cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [\(smem)+\(buffer)], [\(xmap), {\(column), \(tokenBase)}], [\(bars)+\(8 * (buffer / S))];")
        }
        // The weights in registers: two units' worth a row tile (16 bytes of values, 8 of
        // metadata, 4 of scales), unit u + 2i in set 0 and u + 2i + 1 in set 1 at iteration i.
        // `loadUnit` loads unit `unit` (counted from the iteration's unit u, at immediate offsets
        // from the moving pointers; row tile r's 4W · r tiles further on) into its sets, where
        // `inRange` holds.
        let unitSets = (0..<rowTiles).map { _ in (0..<2).map { _ in (values: b.regs("r", 4), meta: b.regs("r", 2), scale: b.reg("r")) } }
        func loadUnit(_ unit: Int, guard inRange: String? = nil) {
            let on = inRange.map { "@\($0) " } ?? ""
            for (r, sets) in unitSets.enumerated() {
                let set = sets[unit % 2], tiles = 4 * warpgroups * r * U   // units between the row tiles' streams
                b.emit("\(on)ld.global.nc.v4.u32 {\(set.values.joined(separator: ", "))}, [\(wNext)+\(512 * (unit + tiles))];")
                b.emit("\(on)ld.global.nc.v2.u32 {\(set.meta.joined(separator: ", "))}, [\(metaNext)+\(256 * (unit + tiles))];")
                b.emit("\(on)ld.global.nc.u32 \(set.scale), [\(scaleNext)+\(32 * (unit + tiles))];")
            }
        }
        // The wgmma operands of stage `stage` (counted from the iteration's unit u), a row tile
        // each: A of both k32 steps, dequantized, and the metadata words, from its unit's register
        // sets. The metadata words are copied out of their set, whose registers the next load
        // overwrites while this stage's wgmmas may still be reading them (`tools/wgmma_hazards.py`
        // checks the SASS for such writes: where ptxas folds the copy, as it did for the eight-buffer
        // form of session 13, the wgmma reads the set itself).
        typealias Operands = (a: [[String]], meta: [String])
        func operands(stage: Int, into: [Operands]? = nil) -> [Operands] {
            unitSets.enumerated().map { r, sets in
                let set = sets[(stage / 2) % 2]
                let w = Array(set.values[(2 * (stage % 2))...].prefix(2))
                let meta = into?[r].meta ?? b.regs("r", 2)
                for (d, x) in zip(meta, set.meta) { b.emit("mov.b32 \(d), \(x);") }
                let scales = b.scalePairs(set.scale)
                let a = (0..<2).map { j -> [String] in
                    let v = b.dequantizeInt4(w[j], constants: consts, scales: scales)
                    guard let target = into?[r].a[j] else { return v }
                    for (d, x) in zip(target, v) { b.emit("mov.b32 \(d), \(x);") }
                    return target
                }
                return (a, meta)
            }
        }
        // The descriptors of both k32 steps of the stage in the buffer at byte offset `buffer`:
        // 128-byte swizzle, rows of 128 bytes, 8-row groups 1024 bytes apart (stride byte offset);
        // step j starts 64 bytes into each row. The low word is the start address / 16 (the
        // buffers are 1024-aligned and below 256 KB, so no field overflows) with the leading
        // byte offset 1: `descLow` (the first buffer's) plus the buffer's offset / 16.
        func descriptors(_ buffer: Int) -> [String] {
            let low = b.reg("r")
            b.emit("add.u32 \(low), \(descLow), \(buffer >> 4);")
            return (0..<2).map { j in Self.descriptor(&b, low: low, plus: 4 * j) }
        }
        // Stage (half h of a unit) from the activation buffer at `buffer`: both k32 wgmmas of each
        // row tile (the row tiles' on one descriptor side by side) as one group, then a wait for
        // the group before it.
        func compute(_ ops: [Operands], _ h: Int, buffer: Int) {
            let d = descriptors(buffer)
            b.emit("wgmma.fence.sync.aligned;")
            for j in 0..<2 {
                for (r, o) in ops.enumerated() {
                    b.emit("wgmma.mma_async.sp.sync.aligned.m64n\(blockTokens)k32.f32.f16.f16 \(accLists[r]), {\(o.a[j].joined(separator: ", "))}, \(d[j]), \(o.meta[j]), \(h), \(scaleD), 1, 1, 0;")
                }
            }
            b.emit("wgmma.commit_group.sync.aligned;")
            b.emit("wgmma.wait_group.sync.aligned 1;")
        }
        // Prologue: units u and u + 1's weights, the first L stages' activations.
        loadUnit(0); loadUnit(1)
        for i in 0..<L { loadActivations(i, into: i * S) }
        let carry = operands(stage: 0)
        // n: this split's stage; stages: how many it has (2 a unit); phase: the parity of the
        // mbarriers' phase this iteration waits for (each buffer's is used once an iteration).
        let n = b.reg("r"), stages = b.reg("r")
        let phase = runPhase ?? b.reg("r")
        b.emit("mov.u32 \(n), 0;")
        if !streamK { b.emit("mov.u32 \(phase), 0;") }
        b.emit("sub.u32 \(stages), \(uEnd), \(u);")
        b.emit("shl.b32 \(stages), \(stages), 1;")
        let loop = b.label("wgmma_units")
        b.place(loop)
        // unitsAhead: units u + 2 and u + 3 exist (the split's units come in pairs).
        let ahead = b.reg("r"), unitsAhead = b.reg("p")
        b.emit("add.u32 \(ahead), \(u), 2;")
        b.emit("setp.lt.u32 \(unitsAhead), \(ahead), \(uEnd);")
        // B stages (B / 2 units) an iteration, stage i in buffer i; each prepares the next
        // stage's operands (fresh registers, the last into the carried ones) before its own
        // wgmmas, so that no register an in-flight wgmma reads is written.
        var ops = carry
        for i in 0..<B {
            // Stage n's activations have landed (its mbarrier's phase is complete) …
            let done = b.reg("p"), wait = b.label("stage_wait")
            b.place(wait)
            b.emit("mbarrier.try_wait.parity.shared::cta.b64 \(done), [\(bars)+\(8 * i)], \(phase);")
            b.emit("@!\(done) bra \(wait);")
            b.emit("bar.sync 0;")                         // every warpgroup is done with stage n − 2's buffer
            let inRange = b.reg("p"), later = b.reg("r")
            b.emit("add.u32 \(later), \(n), \(L + i);")
            b.emit("setp.lt.u32 \(inRange), \(later), \(stages);")
            loadActivations(i + L, into: ((i + L) % B) * S, guard: inRange)
            let next = operands(stage: i + 1, into: i == B - 1 ? carry : nil)
            // A register set is free once its unit's second stage has its operands: unit u's
            // after stage 0, unit u + 1's after stage 2 (…); the next units' loads go into them.
            if i % 2 == 0 { loadUnit(i / 2 + 2, guard: unitsAhead) }
            compute(ops, i % 2, buffer: i * S)
            ops = next
        }
        b.emit("add.u32 \(n), \(n), \(B);")
        b.emit("xor.b32 \(phase), \(phase), 1;")
        b.emit("add.u32 \(u), \(u), \(B / 2);")
        for (r, bytes) in [(wNext, 1024), (metaNext, 512), (scaleNext, 64)] { b.emit("add.s64 \(r), \(r), \(bytes);") }
        b.emit("setp.lt.u32 \(p), \(u), \(uEnd);")
        b.emit("@\(p) bra \(loop);")
        b.emit("wgmma.wait_group.sync.aligned 0;")
        b.emit("bar.sync 0;")

        let store = { (b: inout PTXBuilder, owned: [String]?) in
            storeTile(&b, acc: acc, tid: tid, warp: warp, lane: lane, smem: smem, rowBlock: rowBlock, tokenBase: tokenBase, m: m,
                      yPtr: ptr[4], owned: owned)
        }
        // Split K and stream-K add other blocks' partials through the (then free) buffers.
        let staging = { (b: inout PTXBuilder) -> TiledLinearKernel.PartialStaging in
            let thread = b.reg("r")
            b.emit("mad.lo.u32 \(thread), \(tid), 16, \(smem);")
            return TiledLinearKernel.PartialStaging(thread: thread, bytes: bytesBelowBarriers)
        }
        if let run {
            endStreamK(&b, run, acc: Array(acc.joined()), tid: tid, smem: smem, workspace: ptr[5], counters: ptr[6],
                       staging: staging(&b)) { store(&$0, nil) }
        } else if clusterReduces {
            // Launched as a cluster (two splits, `clusterShape`): the blocks reduce through
            // distributed shared memory and each stores the chunks of the tile it reduced.
            let clusterSize = b.reg("r"), clustered = b.reg("p"), inCluster = b.label("cluster_reduction")
            b.emit("mov.u32 \(clusterSize), %cluster_nctarank;")
            b.emit("setp.gt.u32 \(clustered), \(clusterSize), 1;")
            b.emit("@\(clustered) bra \(inCluster);")
            TiledLinearKernel.reduceSplits(&b, acc: Array(acc.joined()), entry: entry, threads: T, tid: tid, split: split, splits: splits,
                                           workspace: ptr[5], counters: ptr[6], staging: staging(&b))
            store(&b, nil)
            b.emit("bra.uni \(entry)_EXIT;")
            b.place(inCluster)
            store(&b, reduceInCluster(&b, acc: acc, tid: tid, splits: splits, smem: smem, barrier: bars, phase: phase))
        } else {
            TiledLinearKernel.reduceSplits(&b, acc: Array(acc.joined()), entry: entry, threads: T, tid: tid, split: split, splits: splits,
                                           workspace: ptr[5], counters: ptr[6], staging: staging(&b))
            store(&b, nil)
        }

        // Two warpgroups of one row tile: two blocks an SM (at most 128 registers a thread);
        // otherwise one block fills the SM's registers alone.
        let occupancy = blocksPerMultiprocessor > 1 ? [".minnctapersm \(blocksPerMultiprocessor)"] : []
        let header: [String] = ["// dynamic shared memory: \(B) activation stages of \(S) bytes (the staged output tile, \(stagedTileBytes) bytes, over them), then \(B) mbarriers",
                                 ".extern .shared .align 1024 .b8 \(entry)_stage[];", ".visible .entry \(entry)("]
        var parameters = TiledLinearKernel.parameterDeclarations(entry: entry)
        parameters[parameters.count - 1] += ","
        parameters.append("    .param .align 64 .b8 \(entry)_xmap[128]")
        let declaration: [String] = parameters + [")", ".maxntid \(T), 1, 1"] + occupancy + ["{"]
        let lines: [String] = header + declaration + b.declarations + b.body + ["\(entry)_EXIT:", "    ret;", "}", ""]
        return lines.joined(separator: "\n")
    }
}
