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

    /// The registers a block's run lives in, across its segments.
    struct StreamKRun {
        let segment: String, block: String, blocks: String, pairs: String, runEnd: String
        let tile: String, segmentStart: String, segmentEnd: String
    }

    /// Emits the run's bounds and the top of the segment loop: the segment's tile, its row block
    /// and first token, and its units [u, uEnd).
    func beginStreamK(_ b: inout PTXBuilder, m: String, rowBlock: String, tokenBase: String, u: String, uEnd: String) -> StreamKRun {
        let Q = units / 2, rowBlocks = rows / blockRows
        let block = b.reg("r"), blocks = b.reg("r"), pairs = b.reg("r")
        b.emit("mov.u32 \(block), %ctaid.x;")
        b.emit("mov.u32 \(blocks), %nctaid.x;")
        b.emit("add.u32 \(pairs), \(m), \(blockTokens - 1);")
        b.emit("div.u32 \(pairs), \(pairs), \(blockTokens);")
        b.emit("mul.lo.u32 \(pairs), \(pairs), \(rowBlocks * Q);")
        // The run: pairs [⌊b · P / G⌋, ⌊(b + 1) · P / G⌋).
        let start = Self.mulDiv(&b, block, times: pairs, over: blocks), next = b.reg("r")
        b.emit("add.u32 \(next), \(block), 1;")
        let end = Self.mulDiv(&b, next, times: pairs, over: blocks)
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
        return StreamKRun(segment: segment, block: block, blocks: blocks, pairs: pairs, runEnd: end,
                          tile: tile, segmentStart: start, segmentEnd: segmentEnd)
    }

    /// Emits the end of a segment: a whole tile is stored (`store`); a partial one goes to the
    /// workspace, and the tile's last block to arrive adds the others' and stores. Then the
    /// next segment of the run, if any.
    func endStreamK(_ b: inout PTXBuilder, _ run: StreamKRun, acc flat: [String], tid: String, smem: String,
                    workspace: String, counters: String, store: (inout PTXBuilder) -> Void) {
        let Q = units / 2, T = threads
        // owner(q) = ⌊((q + 1)·G − 1) / P⌋ for the tile's first and last pair, q + 1 given.
        let owner = { (b: inout PTXBuilder, qPlusOne: String) in Self.mulDiv(&b, qPlusOne, times: run.blocks, minus: 1, over: run.pairs) }
        let firstPair = b.reg("r"), after = b.reg("r")
        b.emit("mul.lo.u32 \(firstPair), \(run.tile), \(Q);")
        b.emit("add.u32 \(after), \(firstPair), 1;")
        let firstBlock = owner(&b, after)
        b.emit("add.u32 \(after), \(firstPair), \(Q);")
        let lastBlock = owner(&b, after)
        let whole = b.reg("p"), partial = b.label("stream_k_partial"), next = b.label("stream_k_next")
        b.emit("setp.ne.u32 \(whole), \(firstBlock), \(lastBlock);")
        b.emit("@\(whole) bra \(partial);")
        store(&b)
        b.emit("bra.uni \(next);")
        b.place(partial)
        // Slot of block `blk`'s partial of this tile: 2·blk, + 1 unless the tile is its first.
        let slot = { (b: inout PTXBuilder, blk: String) -> String in
            let index = b.reg("r"), later = b.reg("p"), addr = b.reg("rd")
            let firstTile = Self.mulDiv(&b, blk, times: run.pairs, over: run.blocks)  // the block's run start …
            b.emit("div.u32 \(firstTile), \(firstTile), \(Q);")                    // … and its tile
            b.emit("setp.ne.u32 \(later), \(firstTile), \(run.tile);")
            b.emit("selp.u32 \(index), 1, 0, \(later);")
            b.emit("mad.lo.u32 \(index), \(blk), 2, \(index);")
            b.emit("mul.lo.u32 \(index), \(index), \(flat.count * T);")
            b.emit("add.u32 \(index), \(index), \(tid);")
            b.emit("mul.wide.u32 \(addr), \(index), 4;")
            b.emit("add.s64 \(addr), \(addr), \(workspace);")
            return addr
        }
        let afterLast = b.reg("r")
        b.emit("add.u32 \(afterLast), \(lastBlock), 1;")
        TiledLinearKernel.sumPartialsInLastBlock(&b, acc: flat, threads: T, tid: tid, me: run.block, from: firstBlock, to: afterLast,
                                                 tileIndex: run.tile, counters: counters, notLast: next, slot: slot,
                                                 flag: { _ in smem },  // the buffers are free: the first word carries the count
                                                 lastArrival: { b in
                                                     let others = b.reg("r")
                                                     b.emit("sub.u32 \(others), \(lastBlock), \(firstBlock);")
                                                     return others
                                                 })
        store(&b)
        b.place(next)
        let again = b.reg("p")
        b.emit("mov.u32 \(run.segmentStart), \(run.segmentEnd);")
        b.emit("setp.lt.u32 \(again), \(run.segmentStart), \(run.runEnd);")
        b.emit("@\(again) bra \(run.segment);")
    }
}
