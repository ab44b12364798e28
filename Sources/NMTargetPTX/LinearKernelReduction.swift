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
        if splits > 1 {
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
        let leaderDone = splits > 1 ? b.label("leader_done") : ""
        if splits > 1 {
            let rank = b.reg("r"), leader = b.reg("p")
            b.emit("mov.u32 \(rank), %cluster_ctarank;")
            b.emit("setp.eq.u32 \(leader), \(rank), 0;")
            b.emit("@!\(leader) bra \(leaderDone);")
        }
        eachItem { item, done in
            let sum: String
            if splits > 1 {
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
        if splits > 1 {
            b.place(leaderDone)
            b.emit("barrier.cluster.arrive;")
            b.emit("barrier.cluster.wait;")
        }
    }
}
