/// Activations by the bulk tensor copy engine for the staged 2:4 decode kernel
/// (`LinearKernel.tensorActivations`; the default where a 16-warp kernel has several batches).
///
/// The staged kernel (two token tiles) loads each unit's 16 token rows of 256 bytes with 16-byte
/// loads into registers and stores them to its warp's rows in shared memory, for `ldmatrix`.
/// Session 28's ablations (docs/performance-gpu.md) put the cost of those loads at 4096×4096,
/// M = 16, at 0.74 us of 4.56, 0.48 us of it with the bytes served from L1: the loads' own pass
/// through the SM. A first try with the copy engine, a 1-D `cp.async.bulk` of 256 bytes a token
/// row, lost 2.2 us to 512 requests a block (commit 9aae545). Here lane 0 of each warp asks for a
/// unit's rows in two 2-D boxes of 16 tokens × 64 columns (2 KB each, a tensor map over x with
/// the 128-byte swizzle passed by value, as the `wgmma` kernels do), 64 requests a block at
/// 4096², completing on an mbarrier of the unit's buffer; the warp waits on it, then takes its
/// fragments with `ldmatrix` at the swizzled addresses. Rows past M read as zeros (the tensor map's
/// bounds), and their results are never stored. A warp has a buffer for each unit of a batch; a
/// batch reuses the buffers of the one before, after every lane's `ldmatrix` reads.
///
/// Multicast (`tensorMulticast`): the kernel runs as clusters of two neighbouring row blocks,
/// which read the same activations. Lane 0 of warp w in block r asks for box r of each of its
/// units into both blocks' buffers (`.multicast::cluster`, CTA mask 3), and each block's
/// mbarrier expects the whole unit, so the L2 serves each box once a pair. The blocks meet at a
/// cluster barrier between their mbarriers' initialization and the first copy (arrive before the
/// weights' loads, wait after the grid-dependency wait). Only where no buffer is refilled
/// (`batches` ≤ the buffer sets): a refill would have to wait for the other block's `ldmatrix`s.
/// A block leaves only once every copy into it has landed, and a copy into the other block
/// leaves nothing in this one, so no barrier is needed at the end.
extension LinearKernel {
    /// A warp's buffers and mbarriers, and the lane's addresses in them.
    struct TensorStaging {
        /// The lane's `ldmatrix` addresses in buffer 0 for the even and the odd steps.
        let even: String, odd: String
        /// Where the warp's copies go in its first buffer and their first unit's first column (the
        /// buffer's start and the unit's first column; with multicast, this block's box in both),
        /// the tensor map (generic address).
        let buffer: String, column: String, map: String
        /// The warp's first mbarrier (one a buffer, 8 bytes apart); its token tile's first row.
        let barriers: String, tokenBase: String
        /// Lane 0: expects the bytes and asks for the boxes.
        let leader: String
        /// Multicast: the CTA mask (u16).
        let mask: String?
    }

    /// A unit's rows in shared memory: two boxes of 16 rows × 128 bytes.
    static var tensorBufferBytes: Int { 2 * tensorBoxBytes }
    static var tensorBoxBytes: Int { 16 * 128 }
    /// The mbarriers' place: past the warps' buffers and the reduction's buffer (which reuses the
    /// buffers once every unit is done).
    var tensorBarrierOffset: Int { max(reductionBytes, warps * tensorBuffers * Self.tensorBufferBytes) }
    /// A warp's buffers: one a unit of a batch, two sets of them with the copies a batch ahead.
    var tensorBuffers: Int { batch * tensorSets }
    /// Sets of a batch's buffers.
    var tensorSets: Int { tensorAhead ? 2 : 1 }
    /// Batch k's first buffer, and the phase of its mbarriers when batch k's rows are in (each
    /// set's k-th use completes phase k).
    func tensorSet(_ k: Int) -> (first: Int, parity: Int) { tensorAhead ? ((k % 2) * batch, (k / 2) % 2) : (0, k % 2) }
    /// The batches whose copies are asked for before batch k computes: k itself, or, a batch
    /// ahead, 0 and 1 before the first and k + 1 (into the set batch k − 1 read) before each other.
    func tensorBatchesToCopy(at k: Int, batches: Int) -> [Int] {
        (tensorAhead ? (k == 0 ? [0, 1] : [k + 1]) : [k]).filter { $0 < batches }
    }

    /// The warp's buffers, its mbarriers (initialized here: shared memory only, so before the
    /// grid-dependency wait), and the lane's addresses.
    func tensorSetup(_ b: inout PTXBuilder, warp: String, lane: String, vwarp: String, tokenBase: String) -> TensorStaging {
        let base = b.reg("r"), barriers = b.reg("r")
        b.emit("mov.u32 \(base), \(entry)_red;")
        b.emit("mad.lo.u32 \(barriers), \(warp), \(8 * tensorBuffers), \(base);")
        b.emit("add.u32 \(barriers), \(barriers), \(tensorBarrierOffset);")
        b.emit("mad.lo.u32 \(base), \(warp), \(tensorBuffers * Self.tensorBufferBytes), \(base);")
        // ldmatrix: lane l reads row r = l % 8 (+ 8 for the second token tile) of matrix l / 8, at
        // 16-byte chunk q = l / 8 + 4s of the unit's 256-byte row in step s: box s / 2, chunk
        // q % 8 of that box's 128-byte row, which the swizzle stores at chunk (q % 8) ^ (r % 8).
        let row = b.reg("r"), chunk = b.reg("r"), rowBase = b.reg("r"), even = b.reg("r"), odd = b.reg("r")
        b.emit("and.b32 \(row), \(lane), 7;")
        b.emit("shr.u32 \(chunk), \(lane), 3;")
        b.emit("xor.b32 \(chunk), \(chunk), \(row);")         // steps 0 and 2: q % 8 = l / 8
        b.emit("mad.lo.u32 \(rowBase), \(row), 128, \(base);")
        b.emit("mad.lo.u32 \(even), \(chunk), 16, \(rowBase);")
        b.emit("xor.b32 \(chunk), \(chunk), 4;")               // steps 1 and 3: q % 8 = l / 8 + 4
        b.emit("mad.lo.u32 \(odd), \(chunk), 16, \(rowBase);")
        let column = b.reg("r"), map = b.reg("rd"), leader = b.reg("p")
        b.emit("mul.lo.u32 \(column), \(vwarp), \(KernelWeightLayout.unitColumns);")
        b.emit("mov.u64 \(map), \(entry)_xmap;")
        b.emit("cvta.param.u64 \(map), \(map);")
        b.emit("setp.eq.u32 \(leader), \(lane), 0;")
        for i in 0..<tensorBuffers { b.emit("@\(leader) mbarrier.init.shared::cta.b64 [\(barriers)+\(8 * i)], 1;") }
        b.emit("@\(leader) fence.mbarrier_init.release.cluster;")
        b.emit("bar.warp.sync -1;")
        var (mask, copyColumn, copyBuffer): (String?, String, String) = (nil, column, base)
        if tensorMulticast {  // box r (columns 64r …) of each unit, into both blocks
            b.emit("barrier.cluster.arrive.release.aligned;")
            let rank = b.reg("r"), m = b.reg("h")
            (copyColumn, copyBuffer) = (b.reg("r"), b.reg("r"))
            b.emit("mov.u32 \(rank), %cluster_ctarank;")
            b.emit("mad.lo.u32 \(copyColumn), \(rank), 64, \(column);")
            b.emit("mad.lo.u32 \(copyBuffer), \(rank), \(Self.tensorBoxBytes), \(base);")
            b.emit("mov.u16 \(m), 3;")
            mask = m
        }
        return TensorStaging(even: even, odd: odd, buffer: copyBuffer, column: copyColumn, map: map, barriers: barriers,
                             tokenBase: tokenBase, leader: leader, mask: mask)
    }

    /// Asks for the boxes of units `units` (batch `batch`: unit j into buffer j − first unit + the
    /// batch's first buffer, `tensorSet`), each unit only where its guard (if any) holds.
    func tensorCopy(_ b: inout PTXBuilder, _ s: TensorStaging, units: [Int], batch k: Int, guards: [Int: String]) {
        let first = k * batch, firstBuffer = tensorSet(k).first
        if k >= tensorSets {  // a batch before read these buffers: every lane's ldmatrix is done
            b.emit("bar.warp.sync -1;")
            b.emit("fence.proxy.async.shared::cta;")
        }
        let state = b.reg("rd")
        for j in units {
            var on = s.leader
            if let g = guards[j] {
                on = b.reg("p")
                b.emit("and.pred \(on), \(s.leader), \(g);")
            }
            let barrier = "[\(s.barriers)+\(8 * (firstBuffer + j - first))]"
            b.emit("@\(on) mbarrier.arrive.expect_tx.shared::cta.b64 \(state), \(barrier), \(Self.tensorBufferBytes);")
            let (multicast, mask) = s.mask.map { (".multicast::cluster", ", \($0)") } ?? ("", "")
            for h in 0..<(s.mask == nil ? 2 : 1) {  // multicast: this block's box only, into both blocks
                let column = b.reg("r")
                b.emit("add.u32 \(column), \(s.column), \(j * splits * warps * KernelWeightLayout.unitColumns + 64 * h);")
                b.emit("@\(on) cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes\(multicast) [\(s.buffer)+\((firstBuffer + j - first) * Self.tensorBufferBytes + h * Self.tensorBoxBytes)], [\(s.map), {\(column), \(s.tokenBase)}], \(barrier)\(mask);")
            }
        }
    }

    /// Waits for buffer `buffer`'s rows (its mbarrier's phase `parity`) and takes the unit's B
    /// fragments for both token tiles from it.
    func tensorFragments(_ b: inout PTXBuilder, _ s: TensorStaging, buffer: Int, parity: Int) -> [[String]] {
        let wait = b.label("rows_wait"), arrived = b.reg("p")
        b.place(wait)
        b.emit("mbarrier.try_wait.parity.shared::cta.b64 \(arrived), [\(s.barriers)+\(8 * buffer)], \(parity);")
        b.emit("@!\(arrived) bra \(wait);")
        return (0..<2).map { nt in
            (0..<4).flatMap { step -> [String] in
                let r = b.regs("r", 4)
                let offset = buffer * Self.tensorBufferBytes + (step / 2) * Self.tensorBoxBytes + nt * 8 * 128
                b.emit("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {\(r.joined(separator: ", "))}, [\(step % 2 == 0 ? s.even : s.odd)+\(offset)];")
                return r
            }
        }
    }
}
