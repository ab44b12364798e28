extension LinearKernel {
    /// Sums the warps' partial results in shared memory and writes f16 outputs of valid tokens.
    /// Slot (r·T + nt)·4 + c of lane (g, t) is row 16r + g + 8·(c / 2), token 8nt + 2t + c % 2.
    func reduceAndStore(_ b: inout PTXBuilder, acc: [[[String]]], tid: String, lane: String, warp: String,
                        tile: String, tokenBase: String, m: String, yPtr: String) {
        let T = tokenTiles, slots = 4 * T * rowTiles
        let red = b.reg("r"), mine = b.reg("r")
        b.emit("mov.u32 \(red), \(entry)_red;")
        b.emit("mad.lo.u32 \(mine), \(warp), \(slots * 32), \(lane);")
        b.emit("mad.lo.u32 \(mine), \(mine), 4, \(red);")
        for (i, a) in acc.joined().joined().enumerated() { b.emit("st.shared.f32 [\(mine)+\(i * 128)], \(a);") }
        b.emit("bar.sync 0;")
        let g = b.reg("r"), t = b.reg("r")
        b.emit("shr.u32 \(g), \(lane), 2;")
        b.emit("and.b32 \(t), \(lane), 3;")
        let passes = (slots * 32 + threads - 1) / threads
        // Each pass sums one slot per thread: the thread's id is slot·32 + lane.
        func blockSum(_ item: String) -> String {
            let slotAddr = b.reg("r")
            b.emit("mad.lo.u32 \(slotAddr), \(item), 4, \(red);")
            let sum = b.reg("f")
            b.emit("ld.shared.f32 \(sum), [\(slotAddr)];")
            for w in 1..<warps {
                let v = b.reg("f")
                b.emit("ld.shared.f32 \(v), [\(slotAddr)+\(w * slots * 128)];")
                b.emit("add.f32 \(sum), \(sum), \(v);")
            }
            return sum
        }
        // Runs `body(item, done)` for each slot this thread sums, one pass each.
        func eachItem(_ body: (String, String) -> Void) {
            for pass in 0..<passes {
                let done = b.label("done")
                let item = b.reg("r"), active = b.reg("p")
                b.emit("add.u32 \(item), \(tid), \(pass * threads);")
                b.emit("setp.lt.u32 \(active), \(item), \(slots * 32);")
                b.emit("@!\(active) bra \(done);")
                body(item, done)
                b.place(done)
            }
        }
        // Split: every block writes its sums after the warps' slots, the cluster meets, block 0
        // adds the S blocks' sums (its own included) and stores, and the cluster meets again so
        // that no block leaves while its shared memory is read.
        var peers: [String] = []
        var partials: (first: String, leave: String)? = nil
        if workspaceSplits {
            let slot = workspaceSlots(&b, tile: tile)
            eachItem { item, _ in
                let sum = blockSum(item)
                let addr = b.reg("rd"), wide = b.reg("rd")
                b.emit("mul.wide.u32 \(wide), \(item), 4;")
                b.emit("add.s64 \(addr), \(slot.mine), \(wide);")
                b.emit("st.global.f32 [\(addr)], \(sum);")
            }
            partials = (slot.first, countIn(&b, counter: slot.counter, tid: tid, red: red))
        }
        if clusterSplits {
            let partial = b.reg("r")
            b.emit("add.u32 \(partial), \(red), \(warps * slots * 128);")
            eachItem { item, _ in
                let sum = blockSum(item)
                let addr = b.reg("r")
                b.emit("mad.lo.u32 \(addr), \(item), 4, \(partial);")
                b.emit("st.shared.f32 [\(addr)], \(sum);")
            }
            b.emit("barrier.cluster.arrive;")
            b.emit("barrier.cluster.wait;")
            for r in 0..<splits {
                let p = b.reg("r")
                b.emit("mapa.shared::cluster.u32 \(p), \(partial), \(r);")
                peers.append(p)
            }
        }
        let leaderDone = clusterSplits ? b.label("leader_done") : ""
        if clusterSplits {
            let rank = b.reg("r"), leader = b.reg("p")
            b.emit("mov.u32 \(rank), %cluster_ctarank;")
            b.emit("setp.eq.u32 \(leader), \(rank), 0;")
            b.emit("@!\(leader) bra \(leaderDone);")
        }
        eachItem { item, done in
            let sum: String
            if let partials {
                sum = b.reg("f")
                let addr = b.reg("rd"), wide = b.reg("rd")
                b.emit("mul.wide.u32 \(wide), \(item), 4;")
                b.emit("add.s64 \(addr), \(partials.first), \(wide);")
                for s in 0..<splits {  // split by split, so that every run adds in one order
                    let v = s == 0 ? sum : b.reg("f")
                    b.emit("ld.global.cg.f32 \(v), [\(addr)+\(s * slots * 128)];")
                    if s > 0 { b.emit("add.f32 \(sum), \(sum), \(v);") }
                }
            } else if clusterSplits {
                sum = b.reg("f")
                let offset = b.reg("r")
                b.emit("shl.b32 \(offset), \(item), 2;")
                for (r, p) in peers.enumerated() {
                    let addr = b.reg("r"), v = r == 0 ? sum : b.reg("f")
                    b.emit("add.u32 \(addr), \(p), \(offset);")
                    b.emit("ld.shared::cluster.f32 \(v), [\(addr)];")
                    if r > 0 { b.emit("add.f32 \(sum), \(sum), \(v);") }
                }
            } else {
                sum = blockSum(item)
            }
            let slot = b.reg("r"), c = b.reg("r"), nt = b.reg("r"), r = b.reg("r"), tmp = b.reg("r")
            b.emit("shr.u32 \(slot), \(item), 5;")
            b.emit("and.b32 \(c), \(slot), 3;")
            b.emit("shr.u32 \(slot), \(slot), 2;")
            b.emit("rem.u32 \(nt), \(slot), \(T);")
            b.emit("div.u32 \(r), \(slot), \(T);")
            let row = b.reg("r"), token = b.reg("r")
            b.emit("shr.u32 \(tmp), \(c), 1;")
            b.emit("mad.lo.u32 \(row), \(tmp), 8, \(g);")
            b.emit("mad.lo.u32 \(row), \(r), 16, \(row);")
            b.emit("mad.lo.u32 \(row), \(tile), \(16 * rowTiles), \(row);")
            b.emit("and.b32 \(tmp), \(c), 1;")
            b.emit("mad.lo.u32 \(token), \(t), 2, \(tmp);")
            b.emit("mad.lo.u32 \(token), \(nt), 8, \(token);")
            b.emit("add.u32 \(token), \(token), \(tokenBase);")
            let valid = b.reg("p")
            b.emit("setp.lt.u32 \(valid), \(token), \(m);")
            b.emit("@!\(valid) bra \(done);")
            let index = b.reg("rd"), wide = b.reg("rd"), addr = b.reg("rd")
            b.emit("mul.wide.u32 \(index), \(token), \(rows);")
            b.emit("cvt.u64.u32 \(wide), \(row);")
            b.emit("add.s64 \(index), \(index), \(wide);")
            b.emit("shl.b64 \(index), \(index), 1;")
            b.emit("add.s64 \(addr), \(yPtr), \(index);")
            let h = b.reg("h")
            b.emit("cvt.rn.f16.f32 \(h), \(sum);")
            b.emit("st.global.b16 [\(addr)], \(h);")
        }
        if let partials { b.place(partials.leave) }
        if clusterSplits {
            b.place(leaderDone)
            b.emit("barrier.cluster.arrive;")
            b.emit("barrier.cluster.wait;")
        }
    }

    /// Split K through the workspace (`workspaceSplits`): block s of row tile group G (over
    /// every token block: G = ctaid.y · groups + tile) stores its sums, item by item, at `mine`,
    /// slot G·S + s of `ws` (slots·32 f32 each; `first` is slot G·S), and counts itself in at
    /// `counter`, `cnt[G]` (`countIn`); the last to arrive adds the S slots.
    func workspaceSlots(_ b: inout PTXBuilder, tile: String) -> (first: String, mine: String, counter: String) {
        let slots = 4 * tokenTiles * rowTiles, groups = rows / (KernelWeightLayout.tileRows * rowTiles)
        let pointers = ["ws", "cnt"].map { name -> String in
            let p = b.reg("rd"), g = b.reg("rd")
            b.emit("ld.param.u64 \(p), [\(entry)_\(name)];")
            b.emit("cvta.to.global.u64 \(g), \(p);")
            return g
        }
        let group = b.reg("r"), rank = b.reg("r"), slot = b.reg("r"), first = b.reg("rd"), mine = b.reg("rd"), counter = b.reg("rd")
        b.emit("mov.u32 \(group), %ctaid.y;")
        b.emit("mad.lo.u32 \(group), \(group), \(groups), \(tile);")
        b.emit("mov.u32 \(rank), %ctaid.x;")
        b.emit("and.b32 \(rank), \(rank), \(splits - 1);")
        b.emit("mul.lo.u32 \(slot), \(group), \(splits * slots * 32);")
        b.emit("mul.wide.u32 \(first), \(slot), 4;")
        b.emit("add.s64 \(first), \(first), \(pointers[0]);")
        b.emit("mul.lo.u32 \(slot), \(rank), \(slots * 128);")
        b.emit("cvt.u64.u32 \(mine), \(slot);")
        b.emit("add.s64 \(mine), \(mine), \(first);")
        b.emit("mul.wide.u32 \(counter), \(group), 4;")
        b.emit("add.s64 \(counter), \(counter), \(pointers[1]);")
        return (first, mine, counter)
    }

    /// After the block's sums are stored: fences, and thread 0 counts the block in, handing the
    /// count to the block through a shared word past the warps' sums; every block but the last
    /// to arrive leaves for the returned label, and the last resets the counter (the next launch
    /// counts from zero: dependent launches touch it only after their wait).
    func countIn(_ b: inout PTXBuilder, counter: String, tid: String, red: String) -> String {
        let slots = 4 * tokenTiles * rowTiles
        b.emit("membar.gl;")
        b.emit("bar.sync 0;")
        let flag = b.reg("r"), arrived = b.reg("r"), firstThread = b.reg("p"), notLast = b.reg("p")
        b.emit("add.u32 \(flag), \(red), \(warps * slots * 128);")
        b.emit("setp.eq.u32 \(firstThread), \(tid), 0;")
        b.emit("@\(firstThread) atom.global.add.u32 \(arrived), [\(counter)], 1;")
        b.emit("@\(firstThread) st.shared.u32 [\(flag)], \(arrived);")
        b.emit("bar.sync 0;")
        b.emit("ld.shared.u32 \(arrived), [\(flag)];")
        b.emit("setp.ne.u32 \(notLast), \(arrived), \(splits - 1);")
        let leave = b.label("not_last")
        b.emit("@\(notLast) bra \(leave);")
        b.emit("@\(firstThread) st.global.u32 [\(counter)], 0;")
        b.emit("membar.gl;")
        return leave
    }

    /// The workspace (bytes) and counters (u32, zero before the first launch) that a kernel with
    /// `workspaceSplits` needs for M tokens; nil without.
    public func splitScratch(tokens m: Int) -> (workspaceBytes: Int, counters: Int)? {
        guard workspaceSplits else { return nil }
        let groups = rows / (KernelWeightLayout.tileRows * rowTiles) * launchShape(tokens: m).grid.1
        return (groups * splits * 4 * tokenTiles * rowTiles * 32 * 4, groups)
    }
}
