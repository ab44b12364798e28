/// Stream-K for the `wgmma` kernel (`WarpgroupLinearKernel(streamK: true)`), as data-parallel
/// waves plus a stream-K tail.
///
/// The grid's tiles leave the SMs unevenly loaded whenever the blocks are not a whole number of
/// waves (11008×4096 at M = 4096: 1376 tiles of 128 rows × 256 tokens on 132 SMs are 10.4
/// waves, run as 11; at M = 512, 172 tiles are 1.3). With G slots (SMs × blocks an SM) and T
/// tiles, the first D = G·(⌊T / G⌋ − 1) tiles (none below two waves, all T when G divides T)
/// run as an ordinary grid, a block a tile; the last T − D (between one and two waves) are cut
/// into G equal runs of their (tile, unit pair) steps, tile-major: stream-K block b takes pairs
/// D·Q + [⌊b·P / G⌋, ⌊(b + 1)·P / G⌋), Q = U / 2 pairs a tile, P = (T − D)·Q. A run crosses
/// tiles, so a block works through it as segments, one a tile, each the ordinary pipelined loop
/// over its units. A segment that is a whole tile is stored at once; a partial one is written
/// to the workspace, and the last of the tile's blocks to arrive (a counter a tile, as
/// `TiledLinearKernel.reduceSplits`) adds the others' partials and stores the tile. No block
/// waits for another, so any order of blocks is safe.
///
/// The stream-K blocks of tile t are owner(t·Q − D·Q) … owner((t + 1)·Q − D·Q − 1), where
/// owner(q) = ⌊((q + 1)·G − 1) / P⌋ is the block whose run holds pair q of the tail. A block
/// has at most two partial segments, its first and its last, kept in workspace slots 2b and
/// 2b + 1 (slot 2b where the tile is the block's first).
///
/// Why the data-parallel tiles are blocks of their own rather than more segments of persistent
/// blocks: so persistent, every tile ran about 12% slower than in the plain grid (8448×4096 at
/// M = 4096, all whole waves: 308.8 against 274.1 us on an H100). Nsight Compute put it on
/// ptxas's spills around the segment loop's store (255 registers, 296 bytes of stack): 76 KB of
/// local stores a tile a block reach L2, whose hit rate fell from 96% to 89%
/// (docs/bench/ncu-stream-k-dp-*.txt).
extension WarpgroupLinearKernel {
    /// Unit pairs (one iteration of the stage loop, the smallest piece of a run) of all tiles.
    func streamKPairs(tokens m: Int) -> Int {
        (rows / blockRows) * ((m + blockTokens - 1) / blockTokens) * (units / 2)
    }

    /// D, the tiles that run as data-parallel blocks on `slots` slots: G·(⌊T / G⌋ − 1), none
    /// below two waves, all T when G divides T.
    func streamKDataParallelTiles(tokens m: Int, slots: Int) -> Int {
        let tiles = streamKPairs(tokens: m) / (units / 2)
        return tiles % slots == 0 ? tiles : max(tiles / slots - 1, 0) * slots
    }

    /// ⌊(a · x − minus) / y⌋ in 64 bits (a, x, y: u32 registers or immediates), into a new u32
    /// register: the run bounds, owners and first tiles below are all of this form.
    static func mulDiv(_ b: inout PTXBuilder, _ a: String, times x: String, minus: Int = 0, over y: String) -> String {
        let wide = b.reg("rd"), divisor = b.reg("rd"), r = b.reg("r")
        b.emit("mul.wide.u32 \(wide), \(a), \(x);")
        if minus != 0 { b.emit("sub.u64 \(wide), \(wide), \(minus);") }
        b.emit("cvt.u64.u32 \(divisor), \(y);")
        b.emit("div.u64 \(wide), \(wide), \(divisor);")
        b.emit("cvt.u32.u64 \(r), \(wide);")
        return r
    }

    /// The registers a block's work lives in, across its segments: the current run [start, end)
    /// of pairs and the stream-K region (its first pair `skBase`, `skPairs` pairs);
    /// `dataParallel`: the block is one of the grid's data-parallel tiles (y > 0).
    struct StreamKRun {
        let segment: String, block: String, blocks: String, runEnd: String
        let tile: String, segmentStart: String, segmentEnd: String
        let dataParallel: String, skBase: String, skPairs: String
    }

    /// Emits the block's work and the top of the segment loop: the segment's tile, its row
    /// block and first token, and its units [u, uEnd). The grid is G × (1 + D/G): row y = 0 the
    /// G stream-K blocks, rows y > 0 one data-parallel tile each, tile (y − 1)·G + x, so that
    /// the scheduler starts the stream-K blocks first and fills the SMs with the others as it
    /// does for any grid.
    func beginStreamK(_ b: inout PTXBuilder, m: String, rowBlock: String, tokenBase: String, u: String, uEnd: String) -> StreamKRun {
        let Q = units / 2, rowBlocks = rows / blockRows
        let block = b.reg("r"), blocks = b.reg("r"), tiles = b.reg("r"), row = b.reg("r"), dpTiles = b.reg("r")
        b.emit("mov.u32 \(block), %ctaid.x;")
        b.emit("mov.u32 \(blocks), %nctaid.x;")
        b.emit("mov.u32 \(row), %nctaid.y;")
        b.emit("sub.u32 \(row), \(row), 1;")
        b.emit("mul.lo.u32 \(dpTiles), \(row), \(blocks);")
        b.emit("add.u32 \(tiles), \(m), \(blockTokens - 1);")
        b.emit("div.u32 \(tiles), \(tiles), \(blockTokens);")
        b.emit("mul.lo.u32 \(tiles), \(tiles), \(rowBlocks);")
        let skBase = b.reg("r"), skPairs = b.reg("r")
        b.emit("mul.lo.u32 \(skBase), \(dpTiles), \(Q);")
        b.emit("sub.u32 \(skPairs), \(tiles), \(dpTiles);")
        b.emit("mul.lo.u32 \(skPairs), \(skPairs), \(Q);")
        // A data-parallel block's run is its tile; a stream-K block's is pairs
        // D·Q + [⌊x · P / G⌋, ⌊(x + 1) · P / G⌋) (none: it leaves).
        let start = b.reg("r"), end = b.reg("r"), dataParallel = b.reg("p"), streamK = b.label("stream_k_run"), go = b.label("stream_k_go")
        b.emit("mov.u32 \(row), %ctaid.y;")
        b.emit("setp.ne.u32 \(dataParallel), \(row), 0;")
        b.emit("@!\(dataParallel) bra \(streamK);")
        b.emit("sub.u32 \(start), \(row), 1;")
        b.emit("mad.lo.u32 \(start), \(start), \(blocks), \(block);")
        b.emit("mul.lo.u32 \(start), \(start), \(Q);")
        b.emit("add.u32 \(end), \(start), \(Q);")
        b.emit("bra.uni \(go);")
        b.place(streamK)
        let runStart = Self.mulDiv(&b, block, times: skPairs, over: blocks), next = b.reg("r")
        b.emit("add.u32 \(start), \(runStart), \(skBase);")
        b.emit("add.u32 \(next), \(block), 1;")
        let runEnd = Self.mulDiv(&b, next, times: skPairs, over: blocks)
        b.emit("add.u32 \(end), \(runEnd), \(skBase);")
        let none = b.reg("p")
        b.emit("setp.ge.u32 \(none), \(start), \(end);")
        b.emit("@\(none) bra \(entry)_EXIT;")
        b.place(go)
        let segment = b.label("stream_k_segment")
        b.place(segment)
        // Every thread is done with shared memory (the last segment's staged tile, the arrival
        // count) before the copy engine writes the first stages again.
        b.emit("fence.proxy.async.shared::cta;")
        b.emit("bar.sync 0;")
        let tile = b.reg("r"), tileStart = b.reg("r"), segmentEnd = b.reg("r")
        b.emit("div.u32 \(tile), \(start), \(Q);")
        b.emit("mul.lo.u32 \(tileStart), \(tile), \(Q);")
        b.emit("add.u32 \(segmentEnd), \(tileStart), \(Q);")
        b.emit("min.u32 \(segmentEnd), \(segmentEnd), \(end);")
        b.emit("sub.u32 \(u), \(start), \(tileStart);")
        b.emit("shl.b32 \(u), \(u), 1;")
        b.emit("sub.u32 \(uEnd), \(segmentEnd), \(tileStart);")
        b.emit("shl.b32 \(uEnd), \(uEnd), 1;")
        // Tiles run row block fastest, so the SMs at work at once share the activations.
        b.emit("rem.u32 \(rowBlock), \(tile), \(rowBlocks);")
        b.emit("div.u32 \(tokenBase), \(tile), \(rowBlocks);")
        b.emit("mul.lo.u32 \(tokenBase), \(tokenBase), \(blockTokens);")
        return StreamKRun(segment: segment, block: block, blocks: blocks, runEnd: end, tile: tile, segmentStart: start,
                          segmentEnd: segmentEnd, dataParallel: dataParallel, skBase: skBase, skPairs: skPairs)
    }

    /// Emits the end of a segment: a data-parallel block stores its tile and leaves; in a
    /// stream-K run a whole tile is stored (`store`), a partial one goes to the workspace and
    /// the tile's last block to arrive adds the others' and stores; then the run's next tile.
    func endStreamK(_ b: inout PTXBuilder, _ run: StreamKRun, acc flat: [String], tid: String, smem: String,
                    workspace: String, counters: String, staging: TiledLinearKernel.PartialStaging,
                    store: (inout PTXBuilder) -> Void) {
        let Q = units / 2, T = threads
        // In the stream-K region, owner(q) = ⌊((q + 1)·G − 1) / P⌋ for the tile's first and last
        // pair q (counted from the region's start), q + 1 given.
        let owner = { (b: inout PTXBuilder, qPlusOne: String) in Self.mulDiv(&b, qPlusOne, times: run.blocks, minus: 1, over: run.skPairs) }
        let whole = b.reg("p"), partial = b.label("stream_k_partial"), stored = b.label("stream_k_stored")
        let streamKTile = b.label("stream_k_tile")
        // A data-parallel block stores its tile and leaves: its own copy of the store, after
        // which nothing is live, so that ptxas keeps nothing across it.
        b.emit("@!\(run.dataParallel) bra \(streamKTile);")
        store(&b)
        b.emit("bra.uni \(entry)_EXIT;")
        b.place(streamKTile)
        let firstPair = b.reg("r"), after = b.reg("r")
        b.emit("mul.lo.u32 \(firstPair), \(run.tile), \(Q);")
        b.emit("sub.u32 \(firstPair), \(firstPair), \(run.skBase);")
        b.emit("add.u32 \(after), \(firstPair), 1;")
        let firstBlock = owner(&b, after)
        b.emit("add.u32 \(after), \(firstPair), \(Q);")
        let lastBlock = owner(&b, after)
        b.emit("setp.ne.u32 \(whole), \(firstBlock), \(lastBlock);")
        b.emit("@\(whole) bra \(partial);")
        store(&b)
        b.emit("bra.uni \(stored);")
        b.place(partial)
        // Slot of block `blk`'s partial of this tile: 2·blk, + 1 unless the tile is the first of its run.
        let slot = { (b: inout PTXBuilder, blk: String) -> String in
            let index = b.reg("r"), later = b.reg("p")
            let firstTile = Self.mulDiv(&b, blk, times: run.skPairs, over: run.blocks)  // the block's run start …
            b.emit("add.u32 \(firstTile), \(firstTile), \(run.skBase);")
            b.emit("div.u32 \(firstTile), \(firstTile), \(Q);")                    // … and its tile
            b.emit("setp.ne.u32 \(later), \(firstTile), \(run.tile);")
            b.emit("selp.u32 \(index), 1, 0, \(later);")
            b.emit("mad.lo.u32 \(index), \(blk), 2, \(index);")
            return TiledLinearKernel.partialAddress(&b, slot: index, accumulators: flat.count, threads: T, tid: tid, workspace: workspace)
        }
        let afterLast = b.reg("r")
        b.emit("add.u32 \(afterLast), \(lastBlock), 1;")
        TiledLinearKernel.sumPartialsInLastBlock(&b, acc: flat, threads: T, tid: tid, me: run.block, from: firstBlock, to: afterLast,
                                                 tileIndex: run.tile, counters: counters, notLast: stored, slot: slot,
                                                 flag: { _ in smem },  // the buffers are free: the first word carries the count
                                                 lastArrival: { b in
                                                     let others = b.reg("r")
                                                     b.emit("sub.u32 \(others), \(lastBlock), \(firstBlock);")
                                                     return others
                                                 }, staging: staging)
        store(&b)
        b.place(stored)
        // The run's next tile, if any.
        let again = b.reg("p")
        b.emit("mov.u32 \(run.segmentStart), \(run.segmentEnd);")
        b.emit("setp.lt.u32 \(again), \(run.segmentStart), \(run.runEnd);")
        b.emit("@\(again) bra \(run.segment);")
    }
}
