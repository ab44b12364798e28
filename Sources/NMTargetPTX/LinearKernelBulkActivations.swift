/// Activations by the copy engine for the staged 2:4 decode kernel (`LinearKernel.bulkActivations`).
///
/// The staged kernel (two token tiles) loads each unit's 16 token rows of 256 bytes with 16-byte
/// loads into registers and stores them to its warp's rows in shared memory, for `ldmatrix`.
/// Session 28's ablations (docs/performance-gpu.md) put the cost of those loads at 4096×4096,
/// M = 16, at 0.74 us of 4.56, of which 0.48 us with the bytes served from L1: the 128 KB a
/// block passing through the SM's load path into registers, then again into shared memory.
/// Here each warp's lanes 0–15 instead ask the copy engine for one token row each
/// (`cp.async.bulk`, 256 bytes, straight into the row in shared memory; no tensor map), completing
/// on an mbarrier of the unit's buffer; the warp waits on it before its `ldmatrix`s. A warp has a
/// buffer (16 padded rows) for each unit of a batch, so the whole batch's rows are asked for at
/// once; a batch reuses the buffers of the one before, after every lane's `ldmatrix` reads.
extension LinearKernel {
    /// A warp's buffers and mbarriers, and the lane's addresses in them.
    struct BulkStaging {
        /// The lane's `ldmatrix` row in buffer 0, and its copy's row (lanes 0–15).
        let load: String, row: String
        /// The lane's token row of the warp's first unit in x (a global address).
        let source: String
        /// The warp's first mbarrier (one a buffer, 8 bytes apart).
        let barriers: String
        /// Lane 0 (expects the bytes), lanes 0–15 (copy a row each).
        let leader: String, copier: String
    }

    /// Bytes between a warp's buffers: 16 token rows of `stagedRowBytes`.
    static var bulkBufferBytes: Int { 16 * stagedRowBytes }
    /// The mbarriers' place: past the warps' buffers and the reduction's buffer (which reuses the
    /// buffers once every unit is done).
    var bulkBarrierOffset: Int { max(reductionBytes, warps * batch * Self.bulkBufferBytes) }

    /// The warp's buffers, its mbarriers (initialized here: shared memory only, so before the
    /// grid-dependency wait), and the lane's addresses.
    func bulkSetup(_ b: inout PTXBuilder, warp: String, lane: String, vwarp: String, tokenBase: String, mLast: String,
                   xPtr: String) -> BulkStaging {
        let base = b.reg("r"), barriers = b.reg("r"), tmp = b.reg("r")
        b.emit("mov.u32 \(base), \(entry)_red;")
        b.emit("mad.lo.u32 \(barriers), \(warp), \(8 * batch), \(base);")
        b.emit("add.u32 \(barriers), \(barriers), \(bulkBarrierOffset);")
        b.emit("mad.lo.u32 \(base), \(warp), \(batch * Self.bulkBufferBytes), \(base);")
        // ldmatrix: lane l reads row l % 8 of matrix l / 8 (as `stage`).
        let load = b.reg("r")
        b.emit("and.b32 \(tmp), \(lane), 7;")
        b.emit("mad.lo.u32 \(load), \(tmp), \(Self.stagedRowBytes), \(base);")
        b.emit("shr.u32 \(tmp), \(lane), 3;")
        b.emit("mad.lo.u32 \(load), \(tmp), 16, \(load);")
        // Copies: lane l < 16 brings token row l (clamped to M − 1, as the loads do).
        let tokenRow = b.reg("r"), row = b.reg("r"), token = b.reg("r"), elems = b.reg("r"), wide = b.reg("rd"), source = b.reg("rd")
        b.emit("and.b32 \(tokenRow), \(lane), 15;")
        b.emit("mad.lo.u32 \(row), \(tokenRow), \(Self.stagedRowBytes), \(base);")
        b.emit("add.u32 \(token), \(tokenBase), \(tokenRow);")
        b.emit("min.u32 \(token), \(token), \(mLast);")
        b.emit("mul.lo.u32 \(elems), \(token), \(columns);")
        b.emit("mad.lo.u32 \(elems), \(vwarp), \(KernelWeightLayout.unitColumns), \(elems);")
        b.emit("mul.wide.u32 \(wide), \(elems), 2;")
        b.emit("add.s64 \(source), \(xPtr), \(wide);")
        let leader = b.reg("p"), copier = b.reg("p")
        b.emit("setp.eq.u32 \(leader), \(lane), 0;")
        b.emit("setp.lt.u32 \(copier), \(lane), 16;")
        for i in 0..<batch { b.emit("@\(leader) mbarrier.init.shared::cta.b64 [\(barriers)+\(8 * i)], 1;") }
        b.emit("@\(leader) fence.mbarrier_init.release.cluster;")
        b.emit("bar.warp.sync -1;")
        return BulkStaging(load: load, row: row, source: source, barriers: barriers, leader: leader, copier: copier)
    }

    /// Asks for the rows of units `units` (a batch starting at unit `first`; unit j into buffer
    /// j − first), each unit only where its guard (if any) holds.
    func bulkCopy(_ b: inout PTXBuilder, _ s: BulkStaging, units: [Int], first: Int, guards: [Int: String]) {
        if first > 0 {  // the batch before read these buffers: every lane's ldmatrix is done
            b.emit("bar.warp.sync -1;")
            b.emit("fence.proxy.async.shared::cta;")
        }
        func on(_ p: String, _ j: Int) -> String {
            guard let g = guards[j] else { return p }
            let both = b.reg("p")
            b.emit("and.pred \(both), \(p), \(g);")
            return both
        }
        let state = b.reg("rd")
        for j in units {
            b.emit("@\(on(s.leader, j)) mbarrier.arrive.expect_tx.shared::cta.b64 \(state), [\(s.barriers)+\(8 * (j - first))], \(16 * 2 * KernelWeightLayout.unitColumns);")
        }
        b.emit("bar.warp.sync -1;")  // the bytes are expected before any copy completes
        for j in units {
            let xUnit = j * splits * warps * KernelWeightLayout.unitColumns * 2
            b.emit("@\(on(s.copier, j)) cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [\(s.row)+\((j - first) * Self.bulkBufferBytes)], [\(s.source)+\(xUnit)], \(2 * KernelWeightLayout.unitColumns), [\(s.barriers)+\(8 * (j - first))];")
        }
    }

    /// Waits for buffer `buffer`'s rows (its mbarrier's phase `parity`) and takes the unit's B
    /// fragments from it.
    func bulkFragments(_ b: inout PTXBuilder, _ s: BulkStaging, buffer: Int, parity: Int) -> [[String]] {
        let wait = b.label("rows_wait"), arrived = b.reg("p")
        b.place(wait)
        b.emit("mbarrier.try_wait.parity.shared::cta.b64 \(arrived), [\(s.barriers)+\(8 * buffer)], \(parity);")
        b.emit("@!\(arrived) bra \(wait);")
        let load = b.reg("r")
        b.emit("add.u32 \(load), \(s.load), \(buffer * Self.bulkBufferBytes);")
        return stagedFragments(&b, load: load)
    }
}
