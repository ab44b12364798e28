/// Stream-K for the `wgmma` kernel (`WarpgroupLinearKernel(streamK: true)`).
///
/// The grid's tiles leave the SMs unevenly loaded whenever the blocks are not a whole number of
/// waves (11008×4096 at M = 4096: 1376 tiles of 128 rows × 256 tokens on 132 SMs are 10.4
/// waves, run as 11; at M = 512, 172 tiles are 1.3). Stream-K launches one block a slot instead
/// (G = SMs × blocks an SM) and cuts the space of all (tile, unit pair) steps, tile-major, into
/// G equal runs: block b takes pairs [⌊b·P / G⌋, ⌊(b + 1)·P / G⌋), P = tiles × U / 2. A run
/// crosses tiles, so a block works through it as segments, one a tile, each the ordinary
/// pipelined loop over its units. A segment that is a whole tile is stored at once; a partial
/// one is written to the workspace, and the last of the tile's blocks to arrive (a counter a
/// tile, as `TiledLinearKernel.reduceSplits`) adds the others' partials and stores the tile.
/// No block waits for another, so any order of blocks is safe.
///
/// The blocks of tile t are owner(t·Q) … owner((t + 1)·Q − 1), Q = U / 2 pairs a tile, where
/// owner(q) = ⌊((q + 1)·G − 1) / P⌋ is the block whose run holds pair q. A block has at most
/// two partial segments, its first and its last, kept in workspace slots 2b and 2b + 1 (slot
/// 2b where the tile is the block's first).
extension WarpgroupLinearKernel {
    /// Unit pairs (one iteration of the stage loop, the smallest piece of a run) of all tiles.
    func streamKPairs(tokens m: Int) -> Int {
        (rows / blockRows) * ((m + blockTokens - 1) / blockTokens) * (units / 2)
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
    /// of pairs, whether it is a data-parallel tile (`dataParallel`, 1 or 0), the stream-K
    /// region (tiles from `dpTiles` on, its first pair `skBase`, `skPairs` pairs) and this
    /// block's run of it [`skStart`, `skEnd`).
    struct StreamKRun {
        let segment: String, block: String, blocks: String, runEnd: String
        let tile: String, segmentStart: String, segmentEnd: String
        let dataParallel: String, dpTiles: String, skBase: String, skPairs: String, skStart: String, skEnd: String
    }

    /// Emits the split of the tiles (data-parallel waves, then the stream-K region), this
    /// block's first run and the top of the segment loop: the segment's tile, its row block and
    /// first token, and its units [u, uEnd).
    func beginStreamK(_ b: inout PTXBuilder, m: String, rowBlock: String, tokenBase: String, u: String, uEnd: String) -> StreamKRun {
        let Q = units / 2, rowBlocks = rows / blockRows
        let block = b.reg("r"), blocks = b.reg("r"), tiles = b.reg("r")
        b.emit("mov.u32 \(block), %ctaid.x;")
        b.emit("mov.u32 \(blocks), %nctaid.x;")
        b.emit("add.u32 \(tiles), \(m), \(blockTokens - 1);")
        b.emit("div.u32 \(tiles), \(tiles), \(blockTokens);")
        b.emit("mul.lo.u32 \(tiles), \(tiles), \(rowBlocks);")
        // D = G·(⌊T / G⌋ − 1) data-parallel tiles (none below two waves; all T when G divides T).
        let waves = b.reg("r"), dpTiles = b.reg("r"), even = b.reg("p")
        b.emit("div.u32 \(waves), \(tiles), \(blocks);")
        b.emit("max.u32 \(waves), \(waves), 1;")
        b.emit("sub.u32 \(waves), \(waves), 1;")
        b.emit("mul.lo.u32 \(dpTiles), \(waves), \(blocks);")
        b.emit("rem.u32 \(waves), \(tiles), \(blocks);")
        b.emit("setp.eq.u32 \(even), \(waves), 0;")
        b.emit("@\(even) mov.u32 \(dpTiles), \(tiles);")
        let skBase = b.reg("r"), skPairs = b.reg("r")
        b.emit("mul.lo.u32 \(skBase), \(dpTiles), \(Q);")
        b.emit("sub.u32 \(skPairs), \(tiles), \(dpTiles);")
        b.emit("mul.lo.u32 \(skPairs), \(skPairs), \(Q);")
        // This block's stream-K run: pairs base + [⌊b · P / G⌋, ⌊(b + 1) · P / G⌋).
        let skStart = Self.mulDiv(&b, block, times: skPairs, over: blocks), next = b.reg("r")
        b.emit("add.u32 \(skStart), \(skStart), \(skBase);")
        b.emit("add.u32 \(next), \(block), 1;")
        let skEnd = Self.mulDiv(&b, next, times: skPairs, over: blocks)
        b.emit("add.u32 \(skEnd), \(skEnd), \(skBase);")
        // The first run: data-parallel tile b (a run of one tile), or, without any, the stream-K run.
        let start = b.reg("r"), end = b.reg("r"), dataParallel = b.reg("r"), hasTile = b.reg("p")
        b.emit("setp.lt.u32 \(hasTile), \(block), \(dpTiles);")
        b.emit("selp.u32 \(dataParallel), 1, 0, \(hasTile);")
        b.emit("mul.lo.u32 \(start), \(block), \(Q);")
        b.emit("add.u32 \(end), \(start), \(Q);")
        b.emit("@!\(hasTile) mov.u32 \(start), \(skStart);")
        b.emit("@!\(hasTile) mov.u32 \(end), \(skEnd);")
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
                          segmentEnd: segmentEnd, dataParallel: dataParallel, dpTiles: dpTiles, skBase: skBase,
                          skPairs: skPairs, skStart: skStart, skEnd: skEnd)
    }

    /// Emits the end of a segment: a whole tile is stored (`store`); a partial one goes to the
    /// workspace, and the tile's last block to arrive adds the others' and stores. Then the
    /// next segment: the run's next tile, the block's next data-parallel tile, or its stream-K run.
    func endStreamK(_ b: inout PTXBuilder, _ run: StreamKRun, acc flat: [String], tid: String, smem: String,
                    workspace: String, counters: String, staging: TiledLinearKernel.PartialStaging,
                    store: (inout PTXBuilder) -> Void) {
        let Q = units / 2, T = threads
        // In the stream-K region, owner(q) = ⌊((q + 1)·G − 1) / P⌋ for the tile's first and last
        // pair q (counted from the region's start), q + 1 given.
        let owner = { (b: inout PTXBuilder, qPlusOne: String) in Self.mulDiv(&b, qPlusOne, times: run.blocks, minus: 1, over: run.skPairs) }
        let whole = b.reg("p"), partial = b.label("stream_k_partial"), stored = b.label("stream_k_stored")
        let next = b.label("stream_k_next"), wholeTile = b.label("stream_k_whole")
        b.emit("setp.lt.u32 \(whole), \(run.tile), \(run.dpTiles);")
        b.emit("@\(whole) bra \(wholeTile);")
        let firstPair = b.reg("r"), after = b.reg("r")
        b.emit("mul.lo.u32 \(firstPair), \(run.tile), \(Q);")
        b.emit("sub.u32 \(firstPair), \(firstPair), \(run.skBase);")
        b.emit("add.u32 \(after), \(firstPair), 1;")
        let firstBlock = owner(&b, after)
        b.emit("add.u32 \(after), \(firstPair), \(Q);")
        let lastBlock = owner(&b, after)
        b.emit("setp.ne.u32 \(whole), \(firstBlock), \(lastBlock);")
        b.emit("@\(whole) bra \(partial);")
        b.place(wholeTile)
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
        // The run's next tile, if any …
        let again = b.reg("p")
        b.emit("mov.u32 \(run.segmentStart), \(run.segmentEnd);")
        b.emit("setp.lt.u32 \(again), \(run.segmentStart), \(run.runEnd);")
        b.emit("@\(again) bra \(run.segment);")
        // … else after a data-parallel tile the block's next one, G tiles on, or its stream-K run.
        b.emit("setp.eq.u32 \(again), \(run.dataParallel), 0;")
        b.emit("@\(again) bra \(next);")
        let tileAfter = b.reg("r")
        b.emit("add.u32 \(tileAfter), \(run.tile), \(run.blocks);")
        b.emit("setp.lt.u32 \(again), \(tileAfter), \(run.dpTiles);")
        b.emit("mul.lo.u32 \(run.segmentStart), \(tileAfter), \(Q);")
        b.emit("add.u32 \(run.runEnd), \(run.segmentStart), \(Q);")
        b.emit("@\(again) bra \(run.segment);")
        b.emit("mov.u32 \(run.dataParallel), 0;")
        b.emit("mov.u32 \(run.segmentStart), \(run.skStart);")
        b.emit("mov.u32 \(run.runEnd), \(run.skEnd);")
        b.emit("setp.lt.u32 \(again), \(run.segmentStart), \(run.runEnd);")
        b.emit("@\(again) bra \(run.segment);")
        b.place(next)
    }
}
