/// Split K's reduction for the `wgmma` kernel in a thread-block cluster of its splits (distributed
/// shared memory), used where `WarpgroupLinearKernel.clusterShape` launches two splits as a cluster.
extension WarpgroupLinearKernel {
    /// Chunks of a warpgroup's accumulators that split K hands out to the cluster's blocks: 4
    /// (2 warpgroups: 8 chunks a tile, so up to 8 splits each reduce and store an equal share).
    static let reductionChunks = 4

    /// Split K's reduction in the cluster of the tile's S splits (`clusterShape`), through
    /// distributed shared memory instead of a global workspace. The tile's accumulators (each
    /// warpgroup's N / 2 a thread) are cut into `reductionChunks` chunks a warpgroup; chunk
    /// g = 4 · warpgroup + c belongs to block o = g mod S of the cluster, as its k = ⌊g / S⌋-th.
    /// Each block arms its first buffer's mbarrier (`barrier`, whose next phase has parity
    /// `phase`) for the bytes it will receive, the cluster meets (every block is done with its
    /// activation buffers; a relaxed arrive, no fence), and each block sends the chunks it does
    /// not own into their owners' buffers with `st.async` (`mapa`; sender q's copy of an owner's
    /// k-th chunk in slot j = (q − o − 1) mod S, at (j · ⌈8 / S⌉ + k) chunk sizes: at most 7/8 of
    /// the tile's f32 accumulators, 512 · N bytes, which is exactly the four buffers), each
    /// completing its bytes on the owner's mbarrier. A block waits on its own mbarrier only, then
    /// adds the S − 1 copies of its chunks from its own shared memory. No second cluster barrier
    /// and no memory fence: the mbarrier counts the bytes. Returns, per chunk c, the predicate
    /// "this block stores chunk c" (every chunk when S = 1, which skips the exchange).
    func reduceInCluster(_ b: inout PTXBuilder, acc: [[String]], tid: String, splits: String, smem: String,
                         barrier bars: String, phase: String) -> [String] {
        let P = Self.reductionChunks, tilesPerChunk = acc.count / P, perChunk = 4 * tilesPerChunk
        let chunkBytes = perChunk * 128 * 4, slotChunks = b.reg("r")
        precondition(warpgroups == 2 && acc.count % P == 0 && 2 * P * chunkBytes <= Self.buffers * stageBytes,
                     "the tile's accumulators fit the activation buffers")
        let rank = b.reg("r"), firstChunk = b.reg("r"), base = b.reg("r"), lane128 = b.reg("r")
        b.emit("mov.u32 \(rank), %cluster_ctarank;")
        b.emit("shr.u32 \(firstChunk), \(tid), 7;")                               // the warpgroup
        b.emit("shl.b32 \(firstChunk), \(firstChunk), \(P.trailingZeroBitCount);")  // its first chunk, 4 · warpgroup
        b.emit("and.b32 \(lane128), \(tid), 127;")
        b.emit("mad.lo.u32 \(base), \(lane128), 16, \(smem);")  // accumulators 4i … 4i + 3 of a chunk at base + 2048 · i
        b.emit("add.u32 \(slotChunks), \(splits), \(2 * P - 1);")
        b.emit("div.u32 \(slotChunks), \(slotChunks), \(splits);")                // ⌈8 / S⌉
        let chunks = (0..<P).map { c -> (owns: String, owner: String, index: String) in
            let g = b.reg("r"), owner = b.reg("r"), index = b.reg("r"), p = b.reg("p")
            b.emit("add.u32 \(g), \(firstChunk), \(c);")
            b.emit("rem.u32 \(owner), \(g), \(splits);")
            b.emit("div.u32 \(index), \(g), \(splits);")
            b.emit("setp.eq.u32 \(p), \(owner), \(rank);")
            return (p, owner, index)
        }
        let single = b.reg("p"), done = b.label("reduced")
        b.emit("setp.eq.u32 \(single), \(splits), 1;")
        b.emit("@\(single) bra \(done);")
        // Bytes this block receives: S − 1 copies of its ⌊(7 − rank) / S⌋ + 1 chunks.
        let incoming = b.reg("r"), last = b.reg("r"), first = b.reg("p"), state = b.reg("rd")
        b.emit("sub.u32 \(last), \(splits), 1;")
        b.emit("sub.u32 \(incoming), \(2 * P - 1), \(rank);")
        b.emit("div.u32 \(incoming), \(incoming), \(splits);")
        b.emit("mad.lo.u32 \(incoming), \(incoming), \(last), \(last);")
        b.emit("mul.lo.u32 \(incoming), \(incoming), \(chunkBytes);")
        b.emit("setp.eq.u32 \(first), \(tid), 0;")
        b.emit("@\(first) mbarrier.arrive.expect_tx.shared::cta.b64 \(state), [\(bars)], \(incoming);")
        b.emit("barrier.cluster.arrive.relaxed.aligned;")
        b.emit("barrier.cluster.wait.aligned;")
        let flat = Array(acc.joined())
        // The address of slot j's copy of chunk `index` (this thread's part) in this block.
        func slotAddress(_ j: String, _ index: String) -> String {
            let at = b.reg("r")
            b.emit("mad.lo.u32 \(at), \(j), \(slotChunks), \(index);")
            b.emit("mad.lo.u32 \(at), \(at), \(chunkBytes), \(base);")
            return at
        }
        for (c, chunk) in chunks.enumerated() {
            let skip = b.label("chunk_sent"), j = b.reg("r"), remote = b.reg("r"), remoteBarrier = b.reg("r")
            b.emit("@\(chunk.owns) bra \(skip);")
            b.emit("add.u32 \(j), \(rank), \(last);")
            b.emit("sub.u32 \(j), \(j), \(chunk.owner);")
            b.emit("rem.u32 \(j), \(j), \(splits);")
            b.emit("mapa.shared::cluster.u32 \(remote), \(slotAddress(j, chunk.index)), \(chunk.owner);")
            b.emit("mapa.shared::cluster.u32 \(remoteBarrier), \(bars), \(chunk.owner);")
            for i in stride(from: 0, to: perChunk, by: 4) {
                let v = flat[(perChunk * c + i)..<(perChunk * c + i + 4)].joined(separator: ", ")
                b.emit("st.async.shared::cluster.mbarrier::complete_tx::bytes.v4.f32 [\(remote)+\(2048 * (i / 4))], {\(v)}, [\(remoteBarrier)];")
            }
            b.place(skip)
        }
        let arrived = b.reg("p"), wait = b.label("copies_wait")
        b.place(wait)
        b.emit("mbarrier.try_wait.parity.shared::cta.b64 \(arrived), [\(bars)], \(phase);")
        b.emit("@!\(arrived) bra \(wait);")
        for (c, chunk) in chunks.enumerated() {
            let skip = b.label("chunk_reduced"), loop = b.label("chunk_partials"), j = b.reg("r"), more = b.reg("p")
            b.emit("@!\(chunk.owns) bra \(skip);")
            b.emit("mov.u32 \(j), 0;")
            b.place(loop)
            let at = slotAddress(j, chunk.index)
            for i in stride(from: 0, to: perChunk, by: 4) {
                let v = b.regs("f", 4)
                b.emit("ld.shared.v4.f32 {\(v.joined(separator: ", "))}, [\(at)+\(2048 * (i / 4))];")
                for (x, a) in zip(v, flat[(perChunk * c + i)..<(perChunk * c + i + 4)]) { b.emit("add.f32 \(a), \(a), \(x);") }
            }
            b.emit("add.u32 \(j), \(j), 1;")
            b.emit("setp.lt.u32 \(more), \(j), \(last);")
            b.emit("@\(more) bra \(loop);")
            b.place(skip)
        }
        b.place(done)
        return chunks.map(\.owns)
    }
}
