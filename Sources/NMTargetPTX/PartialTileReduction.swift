/// The reduction of partial tiles that split K (`TiledLinearKernel`, `WarpgroupLinearKernel`)
/// and stream-K (`WarpgroupStreamK.swift`) share: each block but the tile's last to arrive
/// leaves its f32 accumulators in a global workspace; the last adds them to its own.
extension TiledLinearKernel {
    /// Split K: every split stores its accumulators to the workspace (slot tile·S + z,
    /// `partialAddress`'s layout), fences, and thread 0 counts the split in; all but
    /// the last split of the tile return, the last adds the others' partials.
    static func reduceSplits(_ b: inout PTXBuilder, acc flat: [String], entry: String, threads: Int, tid: String, split: String,
                             splits: String, workspace: String, counters: String, staging: PartialStaging? = nil) {
        let single = b.reg("p"), done = b.label("reduced")
        b.emit("setp.eq.u32 \(single), \(splits), 1;")
        b.emit("@\(single) bra \(done);")
        let tileIndex = b.reg("r"), gx = b.reg("r"), cx = b.reg("r")
        b.emit("mov.u32 \(tileIndex), %ctaid.y;")
        b.emit("mov.u32 \(gx), %nctaid.x;")
        b.emit("mov.u32 \(cx), %ctaid.x;")
        b.emit("mad.lo.u32 \(tileIndex), \(tileIndex), \(gx), \(cx);")
        // The address of this thread's first accumulators for split z.
        let slot = { (b: inout PTXBuilder, z: String) -> String in
            let index = b.reg("r")
            b.emit("mad.lo.u32 \(index), \(tileIndex), \(splits), \(z);")
            return partialAddress(&b, slot: index, accumulators: flat.count, threads: threads, tid: tid, workspace: workspace)
        }
        sumPartialsInLastBlock(&b, acc: flat, threads: threads, tid: tid, me: split, from: "0", to: splits, tileIndex: tileIndex,
                               counters: counters, notLast: "\(entry)_EXIT", slot: slot,
                               flag: { b in
                                   let flag = b.reg("r")
                                   b.emit("mov.u32 \(flag), \(entry)_stage;")  // the stage buffer is free now: it carries the count
                                   return flag
                               },
                               lastArrival: { b in
                                   let last = b.reg("r")
                                   b.emit("sub.u32 \(last), \(splits), 1;")
                                   return last
                               }, staging: staging)
        b.place(done)
    }

    /// The address of thread `tid`'s first four accumulators in partial slot `slot` of the
    /// workspace: a slot holds the block's accumulators four by four, accumulators 4q … 4q + 3 of
    /// every thread at + q · threads · 16, so that each warp moves 512 contiguous bytes a vector.
    static func partialAddress(_ b: inout PTXBuilder, slot: String, accumulators: Int, threads: Int, tid: String,
                               workspace: String) -> String {
        let index = b.reg("r"), addr = b.reg("rd")
        b.emit("mul.lo.u32 \(index), \(slot), \(accumulators * threads);")
        b.emit("mad.lo.u32 \(index), \(tid), 4, \(index);")
        b.emit("mul.wide.u32 \(addr), \(index), 4;")
        b.emit("add.s64 \(addr), \(addr), \(workspace);")
        return addr
    }

    /// The reduction split K and stream-K share: blocks `from` … `to` − 1 each hold a partial
    /// of one tile (counter `counters[tileIndex]`). This block (`me`) stores its accumulators at
    /// `slot(me)` (`partialAddress`'s layout, in 16-byte vectors), fences, and thread 0 counts
    /// it in, handing the count to the block through the shared word at `flag`; every block but
    /// the last (count `lastArrival`) leaves for `notLast`; the last resets the counter and
    /// adds the others' partials into `acc`: through `staging` where the kernel lends shared
    /// memory (`addPartialThroughSharedMemory`), else by loads into registers.
    static func sumPartialsInLastBlock(_ b: inout PTXBuilder, acc flat: [String], threads: Int, tid: String, me: String,
                                       from: String, to: String, tileIndex: String, counters: String, notLast leave: String,
                                       slot: (inout PTXBuilder, String) -> String, flag: (inout PTXBuilder) -> String,
                                       lastArrival: (inout PTXBuilder) -> String, staging: PartialStaging? = nil) {
        precondition(flat.count % 4 == 0, "partials move in vectors of four accumulators")
        let vectors = flat.count / 4
        let mine = slot(&b, me)
        for q in 0..<vectors {
            b.emit("st.global.v4.f32 [\(mine)+\(q * threads * 16)], {\(flat[4 * q ..< 4 * q + 4].joined(separator: ", "))};")
        }
        b.emit("membar.gl;")
        b.emit("bar.sync 0;")
        let counter = b.reg("rd"), arrived = b.reg("r"), isFirstThread = b.reg("p")
        b.emit("mul.wide.u32 \(counter), \(tileIndex), 4;")
        b.emit("add.s64 \(counter), \(counter), \(counters);")
        let shared = flag(&b)
        b.emit("setp.eq.u32 \(isFirstThread), \(tid), 0;")
        b.emit("@\(isFirstThread) atom.global.add.u32 \(arrived), [\(counter)], 1;")
        b.emit("@\(isFirstThread) st.shared.u32 [\(shared)], \(arrived);")
        b.emit("bar.sync 0;")
        b.emit("ld.shared.u32 \(arrived), [\(shared)];")
        let last = lastArrival(&b), notLast = b.reg("p")
        b.emit("setp.ne.u32 \(notLast), \(arrived), \(last);")
        b.emit("@\(notLast) bra \(leave);")
        b.emit("membar.gl;")
        b.emit("@\(isFirstThread) st.global.u32 [\(counter)], 0;")  // ready for the next launch
        if staging != nil { b.emit("bar.sync 0;") }  // every thread has read the count before copies overwrite it
        let z = b.reg("r"), loop = b.label("partials"), next = b.label("partial_next"), more = b.reg("p"), same = b.reg("p")
        b.emit("mov.u32 \(z), \(from);")
        b.place(loop)
        b.emit("setp.eq.u32 \(same), \(z), \(me);")
        b.emit("@\(same) bra \(next);")
        let other = slot(&b, z)
        if let staging {
            addPartialThroughSharedMemory(&b, acc: flat, threads: threads, from: other, staging: staging)
        } else {
            addPartialFromRegisters(&b, acc: flat, threads: threads, from: other)
        }
        b.place(next)
        b.emit("add.u32 \(z), \(z), 1;")
        b.emit("setp.lt.u32 \(more), \(z), \(to);")
        b.emit("@\(more) bra \(loop);")
    }

    /// Shared memory a kernel lends the reduction: `bytes` from the u32 address `thread`, which
    /// is already offset by tid · 16 (a thread's vectors sit threads · 16 bytes apart, as in the
    /// workspace), free once the block's count is read.
    struct PartialStaging {
        let thread: String, bytes: Int
    }

    /// Adds the partial at `other` with one 16-byte `cp.async` a vector into the thread's own
    /// staging (as many at once as the staging holds), then `ld.shared`: the copies hold no
    /// registers, so a whole partial is in flight at once instead of the few vectors registers
    /// leave room for (a partial of 128 KB took about 10 us as loads into registers on an H100).
    static func addPartialThroughSharedMemory(_ b: inout PTXBuilder, acc flat: [String], threads: Int, from other: String,
                                              staging: PartialStaging) {
        let vectors = flat.count / 4, chunk = min(vectors, staging.bytes / (threads * 16))
        precondition(chunk > 0, "the staging holds a vector a thread")
        for first in stride(from: 0, to: vectors, by: chunk) {
            let qs = first ..< min(first + chunk, vectors)
            for q in qs {
                b.emit("cp.async.cg.shared.global [\(staging.thread)+\((q - first) * threads * 16)], [\(other)+\(q * threads * 16)], 16;")
            }
            b.emit("cp.async.commit_group;")
            b.emit("cp.async.wait_group 0;")
            for q in qs {
                let p = (0..<4).map { _ in b.reg("f") }
                b.emit("ld.shared.v4.f32 {\(p.joined(separator: ", "))}, [\(staging.thread)+\((q - first) * threads * 16)];")
                for e in 0..<4 { b.emit("add.f32 \(flat[4 * q + e]), \(flat[4 * q + e]), \(p[e]);") }
            }
        }
    }

    /// Adds the partial at `other` by 16-byte loads into registers, eight vectors before their adds.
    static func addPartialFromRegisters(_ b: inout PTXBuilder, acc flat: [String], threads: Int, from other: String) {
        let vectors = flat.count / 4, loadBatch = 8
        for batch in stride(from: 0, to: vectors, by: loadBatch) {
            let qs = batch ..< min(batch + loadBatch, vectors)
            let loaded = qs.map { q -> [String] in
                let p = (0..<4).map { _ in b.reg("f") }
                b.emit("ld.global.cg.v4.f32 {\(p.joined(separator: ", "))}, [\(other)+\(q * threads * 16)];")
                return p
            }
            for (q, p) in zip(qs, loaded) {
                for e in 0..<4 { b.emit("add.f32 \(flat[4 * q + e]), \(flat[4 * q + e]), \(p[e]);") }
            }
        }
    }
}
