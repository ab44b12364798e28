#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The kernels of a decode step other than the linear layers, one token at a time. The residual
/// stream and the KV caches are f32, the linear layers' inputs and outputs f16 (inputs padded to
/// the kernels' 128-column units with zeros). The step's variable inputs live in a device `state`
/// buffer (u32 token, u32 position) so that the whole step replays as one CUDA graph.
/// Semantics follow ir-specs/nn.md and kv.md (the reference interpreter's order of operations).
public enum DecodeStepKernels {
    public static let threads = 256

    /// `nm_embedding_dD(table f32 [V, D], state, out f32 [D])`: out = table[token].
    public static func embedding(dim: Int) -> (entry: String, ptx: String) {
        let name = "nm_embedding_d\(dim)"
        var b = PTXBuilder()
        let table = b.pointerParam(name, "table"), state = b.pointerParam(name, "state"), out = b.pointerParam(name, "out")
        let exit = b.label("exit")
        let count = b.constant(UInt32(dim))
        let i = b.globalIndex(threads: threads, count: count, exit: exit)
        let token = b.reg("r"), row = b.reg("rd"), wide = b.reg("rd"), f = b.reg("f")
        b.emit("ld.global.u32 \(token), [\(state)];")
        b.emit("mul.wide.u32 \(row), \(token), \(dim * 4);")
        b.emit("add.s64 \(row), \(table), \(row);")
        b.emit("mul.wide.u32 \(wide), \(i), 4;")
        b.emit("add.s64 \(row), \(row), \(wide);")
        b.emit("ld.global.f32 \(f), [\(row)];")
        let dst = b.element(out, i, 4)
        b.emit("st.global.f32 [\(dst)], \(f);")
        b.place(exit)
        return (name, b.entryText(name, params: [("table", "u64"), ("state", "u64"), ("out", "u64")], threads: threads))
    }

    /// Sum over the block (`threads` threads) through `red` (a shared array of a float per warp,
    /// named or in a register); every thread gets the total. `max` reduces with max instead.
    static func blockReduce(_ b: inout PTXBuilder, _ v: String, red: String, threads: Int, max: Bool = false) -> String {
        let op = max ? "max.f32" : "add.rn.f32"
        for shift in [16, 8, 4, 2, 1] {
            let o = b.reg("f")
            b.emit("shfl.sync.bfly.b32 \(o), \(v), \(shift), 31, 0xFFFFFFFF;")
            b.emit("\(op) \(v), \(v), \(o);")
        }
        let tid = b.reg("r"), lane = b.reg("r"), base = b.reg("r"), slot = b.reg("r"), p = b.reg("p")
        b.emit("mov.u32 \(tid), %tid.x;")
        b.emit("and.b32 \(lane), \(tid), 31;")
        b.emit("shr.u32 \(slot), \(tid), 5;")
        b.emit("mov.u32 \(base), \(red);")
        b.emit("mad.lo.u32 \(slot), \(slot), 4, \(base);")
        b.emit("setp.eq.u32 \(p), \(lane), 0;")
        b.emit("@\(p) st.shared.f32 [\(slot)], \(v);")
        b.emit("bar.sync 0;")
        let total = b.reg("f")
        b.emit("ld.shared.f32 \(total), [\(base)];")
        for w in 1..<(threads / 32) {
            let o = b.reg("f")
            b.emit("ld.shared.f32 \(o), [\(base)+\(4 * w)];")
            b.emit("\(op) \(total), \(total), \(o);")
        }
        b.emit("bar.sync 0;")
        return total
    }

    /// `nm_rms_norm_dD_pP[_add](x f32, [y f16, sum f32,] w f32, out f16 [P])`, one block:
    /// with `add`, x + y is written to `sum` and normalized (a residual add fused with the
    /// norm that reads it); out = v · (1/√(mean v² + eps)) · w, and 0 in columns D…P−1.
    public static func rmsNorm(dim: Int, padded: Int, eps: Double, add: Bool) -> (entry: String, ptx: String) {
        let name = "nm_rms_norm_d\(dim)_p\(padded)\(add ? "_add" : "")"
        var b = PTXBuilder()
        let x = b.pointerParam(name, "x")
        let y = add ? b.pointerParam(name, "y") : "", sum = add ? b.pointerParam(name, "sum") : ""
        let w = b.pointerParam(name, "w"), out = b.pointerParam(name, "out")
        let tid = b.reg("r")
        b.emit("mov.u32 \(tid), %tid.x;")
        let perThread = (dim + threads - 1) / threads
        let acc = b.reg("f")
        b.emit("mov.f32 \(acc), 0f00000000;")
        var values: [String] = []
        // Every load first (a store between them would keep each next load waiting on the last
        // one's data: in-order issue), then the sums, the stores and the squares.
        var loads: [(i: String, p: String, v: String, h: String?)] = []
        for k in 0..<perThread {
            let i = b.reg("r"), p = b.reg("p"), v = b.reg("f")
            b.emit("add.u32 \(i), \(tid), \(k * threads);")
            b.emit("setp.lt.u32 \(p), \(i), \(dim);")
            b.emit("mov.f32 \(v), 0f00000000;")
            let src = b.element(x, i, 4)
            b.emit("@\(p) ld.global.f32 \(v), [\(src)];")
            var h: String? = nil
            if add {
                let ya = b.element(y, i, 2), hy = b.reg("h")
                b.emit("mov.b16 \(hy), 0;")
                b.emit("@\(p) ld.global.b16 \(hy), [\(ya)];")
                h = hy
            }
            loads.append((i, p, v, h))
        }
        for l in loads {
            if let h = l.h {
                let f = b.reg("f")
                b.emit("cvt.f32.f16 \(f), \(h);")
                b.emit("add.rn.f32 \(l.v), \(l.v), \(f);")
                let sa = b.element(sum, l.i, 4)
                b.emit("@\(l.p) st.global.f32 [\(sa)], \(l.v);")
            }
            b.emit("fma.rn.f32 \(acc), \(l.v), \(l.v), \(acc);")
            values.append(l.v)
        }
        let total = blockReduce(&b, acc, red: "\(name)_red", threads: threads)
        let inv = b.reg("f")
        b.emit("mul.rn.f32 \(inv), \(total), 0f\(hexFloat(Float(1.0 / Double(dim))));")
        b.emit("add.rn.f32 \(inv), \(inv), 0f\(hexFloat(Float(eps)));")
        b.emit("sqrt.rn.f32 \(inv), \(inv);")
        b.emit("rcp.rn.f32 \(inv), \(inv);")
        var weights: [String] = []
        for k in values.indices {
            let i = b.reg("r"), p = b.reg("p"), wv = b.reg("f")
            b.emit("add.u32 \(i), \(tid), \(k * threads);")
            b.emit("setp.lt.u32 \(p), \(i), \(dim);")
            let wa = b.element(w, i, 4)
            b.emit("mov.f32 \(wv), 0f00000000;")
            b.emit("@\(p) ld.global.f32 \(wv), [\(wa)];")
            weights.append(wv)
        }
        for (k, v) in values.enumerated() {
            let i = b.reg("r"), h = b.reg("h")
            b.emit("add.u32 \(i), \(tid), \(k * threads);")
            b.emit("mul.rn.f32 \(v), \(v), \(inv);")
            b.emit("mul.rn.f32 \(v), \(v), \(weights[k]);")
            b.emit("cvt.rn.f16.f32 \(h), \(v);")
            let oa = b.element(out, i, 2), q = b.reg("p")
            b.emit("setp.lt.u32 \(q), \(i), \(padded);")
            b.emit("@\(q) st.global.b16 [\(oa)], \(h);")
        }
        var params = [("x", "u64")]
        if add { params += [("y", "u64"), ("sum", "u64")] }
        params += [("w", "u64"), ("out", "u64")]
        return (name, b.entryText(name, params: params, threads: threads, shared: [".shared .align 16 .b8 \(name)_red[32];"]))
    }

    /// `nm_rope_hH_dD_STYLE(x f16 [H·D], out f32, table f32 [C, D/2, 2], state, row u32)`: rotates
    /// each pair by the position's (cos, sin) from `table` (made on the host as the interpreter
    /// computes them) and writes f32 at `out + position · row` (row = 0 for queries, H·D for a
    /// cache's new row).
    public static func rope(heads: Int, headDim: Int, interleaved: Bool) -> (entry: String, ptx: String) {
        let name = "nm_rope_h\(heads)_d\(headDim)_\(interleaved ? "interleaved" : "half")"
        let half = headDim / 2
        var b = PTXBuilder()
        let x = b.pointerParam(name, "x"), out = b.pointerParam(name, "out")
        let table = b.pointerParam(name, "table"), state = b.pointerParam(name, "state")
        let rowElems = b.u32Param(name, "row")
        let exit = b.label("exit")
        let count = b.constant(UInt32(heads * half))
        let pair = b.globalIndex(threads: threads, count: count, exit: exit)
        let head = b.reg("r"), i = b.reg("r"), a = b.reg("r"), c = b.reg("r"), pos = b.reg("r")
        b.emit("div.u32 \(head), \(pair), \(half);")
        b.emit("rem.u32 \(i), \(pair), \(half);")
        if interleaved {
            b.emit("mad.lo.u32 \(a), \(head), \(headDim), \(i);")
            b.emit("add.u32 \(a), \(a), \(i);")
            b.emit("add.u32 \(c), \(a), 1;")
        } else {
            b.emit("mad.lo.u32 \(a), \(head), \(headDim), \(i);")
            b.emit("add.u32 \(c), \(a), \(half);")
        }
        b.emit("ld.global.u32 \(pos), [\(state)+4];")
        let tIndex = b.reg("r")
        b.emit("mad.lo.u32 \(tIndex), \(pos), \(half), \(i);")
        let ta = b.element(table, tIndex, 8)
        let cosv = b.reg("f"), sinv = b.reg("f")
        b.emit("ld.global.v2.f32 {\(cosv), \(sinv)}, [\(ta)];")
        let ha = b.reg("h"), hc = b.reg("h"), x0 = b.reg("f"), x1 = b.reg("f")
        let xa = b.element(x, a, 2), xc = b.element(x, c, 2)
        b.emit("ld.global.b16 \(ha), [\(xa)];")
        b.emit("ld.global.b16 \(hc), [\(xc)];")
        b.emit("cvt.f32.f16 \(x0), \(ha);")
        b.emit("cvt.f32.f16 \(x1), \(hc);")
        let r0 = b.reg("f"), r1 = b.reg("f"), t = b.reg("f")
        b.emit("mul.rn.f32 \(r0), \(x0), \(cosv);")
        b.emit("mul.rn.f32 \(t), \(x1), \(sinv);")
        b.emit("sub.rn.f32 \(r0), \(r0), \(t);")
        b.emit("mul.rn.f32 \(r1), \(x0), \(sinv);")
        b.emit("mul.rn.f32 \(t), \(x1), \(cosv);")
        b.emit("add.rn.f32 \(r1), \(r1), \(t);")
        let base = b.reg("r"), oa = b.reg("r"), oc = b.reg("r")
        b.emit("mul.lo.u32 \(base), \(pos), \(rowElems);")
        b.emit("add.u32 \(oa), \(base), \(a);")
        b.emit("add.u32 \(oc), \(base), \(c);")
        let pa = b.element(out, oa, 4), pc = b.element(out, oc, 4)
        b.emit("st.global.f32 [\(pa)], \(r0);")
        b.emit("st.global.f32 [\(pc)], \(r1);")
        b.place(exit)
        return (name, b.entryText(name, params: [("x", "u64"), ("out", "u64"), ("table", "u64"), ("state", "u64"), ("row", "u32")],
                                  threads: threads))
    }

    /// `nm_kv_store_nN(x f16 [N], cache f32 [C, N], state)`: the cache's row at the position = x.
    public static func kvStore(elements n: Int) -> (entry: String, ptx: String) {
        let name = "nm_kv_store_n\(n)"
        var b = PTXBuilder()
        let x = b.pointerParam(name, "x"), cache = b.pointerParam(name, "cache"), state = b.pointerParam(name, "state")
        let exit = b.label("exit")
        let count = b.constant(UInt32(n))
        let i = b.globalIndex(threads: threads, count: count, exit: exit)
        let pos = b.reg("r"), h = b.reg("h"), f = b.reg("f"), idx = b.reg("r")
        b.emit("ld.global.u32 \(pos), [\(state)+4];")
        let xa = b.element(x, i, 2)
        b.emit("ld.global.b16 \(h), [\(xa)];")
        b.emit("cvt.f32.f16 \(f), \(h);")
        b.emit("mad.lo.u32 \(idx), \(pos), \(n), \(i);")
        let ca = b.element(cache, idx, 4)
        b.emit("st.global.f32 [\(ca)], \(f);")
        b.place(exit)
        return (name, b.entryText(name, params: [("x", "u64"), ("cache", "u64"), ("state", "u64")], threads: threads))
    }

    public static let attentionThreads = 256

    /// `nm_attention_hqQ_hkvK_dD_cC[_sS](q f32 [Q·D], k f32 [C, K, D], v f32 [C, K, D], out f16, state,
    /// scale f32[, scratch])`: with S splits (grid Q × S) each block takes a contiguous S-th of the
    /// positions and the last of a head's blocks combines their partial softmaxes (scratch:
    /// Q·S·(D + 2) f32, then Q u32 counters, zeroed once); otherwise one block of 256 threads per
    /// query head over the positions 0 … position (the
    /// cache rows `kv.append` has written); query head h reads kv head h / (Q/K) (GQA). Scores in
    /// shared memory (C ≤ 8192), softmax with the maximum subtracted, then thread d sums
    /// p_j · v[j, d]. The output is f16 (the input of the output projection).
    public static func attention(heads: Int, kvHeads: Int, headDim: Int, capacity: Int, splits: Int = 1) throws -> (entry: String, ptx: String) {
        guard headDim <= attentionThreads, headDim % 4 == 0, attentionThreads % (headDim / 4) == 0, capacity <= 8192, heads % kvHeads == 0 else {
            throw PTXError("attention with head dim \(headDim), context \(capacity), \(heads)/\(kvHeads) heads: the PTX decode step needs head dim ≤ \(attentionThreads) and context ≤ 8192")
        }
        guard (1...32).contains(splits) else { throw PTXError("attention: \(splits) splits (1…32)") }
        let name = "nm_attention_hq\(heads)_hkv\(kvHeads)_d\(headDim)_c\(capacity)" + (splits > 1 ? "_s\(splits)" : "")
        let T = attentionThreads, group = heads / kvHeads, rowStride = kvHeads * headDim
        var b = PTXBuilder()
        let q = b.pointerParam(name, "q"), k = b.pointerParam(name, "k"), v = b.pointerParam(name, "v")
        let out = b.pointerParam(name, "out"), state = b.pointerParam(name, "state")
        let scale = b.f32Param(name, "scale")
        let scratch = splits > 1 ? b.pointerParam(name, "scratch") : ""
        let tid = b.reg("r"), head = b.reg("r"), kvHead = b.reg("r"), count = b.reg("r")
        b.emit("mov.u32 \(tid), %tid.x;")
        b.emit("mov.u32 \(head), %ctaid.x;")
        b.emit("div.u32 \(kvHead), \(head), \(group);")
        b.emit("ld.global.u32 \(count), [\(state)+4];")
        b.emit("add.u32 \(count), \(count), 1;")
        // Split s of S takes positions start ..< end, ⌈count / S⌉ of them (flash decoding); the
        // scores in shared memory are indexed from `start`.
        let start = b.reg("r"), split = b.reg("r")
        if splits > 1 {
            let chunk = b.reg("r")
            b.emit("mov.u32 \(split), %ctaid.y;")
            b.emit("add.u32 \(chunk), \(count), \(splits - 1);")
            b.emit("div.u32 \(chunk), \(chunk), \(splits);")
            b.emit("mul.lo.u32 \(start), \(split), \(chunk);")
            b.emit("add.u32 \(chunk), \(start), \(chunk);")
            b.emit("min.u32 \(count), \(count), \(chunk);")  // count is now this split's end
        } else {
            b.emit("mov.u32 \(start), 0;")
        }
        let qs = b.reg("r"), scores = b.reg("r"), red = b.reg("r")
        b.emit("mov.u32 \(qs), \(name)_qs;")
        b.emit("mov.u32 \(scores), \(name)_sc;")
        b.emit("mov.u32 \(red), \(name)_rd;")
        // q of this head into shared memory.
        let inD = b.reg("p"), qi = b.reg("r"), qv = b.reg("f")
        b.emit("setp.lt.u32 \(inD), \(tid), \(headDim);")
        b.emit("mad.lo.u32 \(qi), \(head), \(headDim), \(tid);")
        let qa = b.element(q, qi, 4)
        b.emit("@\(inD) ld.global.f32 \(qv), [\(qa)];")
        let qsa = b.reg("r")
        b.emit("mad.lo.u32 \(qsa), \(tid), 4, \(qs);")
        b.emit("@\(inD) st.shared.f32 [\(qsa)], \(qv);")
        b.emit("bar.sync 0;")
        // Scores: thread j takes positions j, j + T, …
        let mx = b.reg("f"), j = b.reg("r"), p = b.reg("p")
        b.emit("mov.f32 \(mx), 0fFF800000;")
        b.emit("add.u32 \(j), \(start), \(tid);")
        let local = b.reg("r")
        let scoreLoop = b.label("scores"), scoreDone = b.label("scoresdone")
        b.place(scoreLoop)
        b.emit("setp.ge.u32 \(p), \(j), \(count);")
        b.emit("@\(p) bra \(scoreDone);")
        let krow = b.reg("r"), dot = b.reg("f")
        b.emit("mad.lo.u32 \(krow), \(j), \(rowStride), 0;")
        b.emit("mad.lo.u32 \(krow), \(kvHead), \(headDim), \(krow);")
        let ka = b.element(k, krow, 4)
        b.emit("mov.f32 \(dot), 0f00000000;")
        for d in stride(from: 0, to: headDim, by: 4) {
            let kv4 = b.regs("f", 4), qv4 = b.regs("f", 4)
            b.emit("ld.global.v4.f32 {\(kv4.joined(separator: ", "))}, [\(ka)+\(4 * d)];")
            b.emit("ld.shared.v4.f32 {\(qv4.joined(separator: ", "))}, [\(qs)+\(4 * d)];")
            for e in 0..<4 { b.emit("fma.rn.f32 \(dot), \(qv4[e]), \(kv4[e]), \(dot);") }
        }
        b.emit("mul.rn.f32 \(dot), \(dot), \(scale);")
        let sa = b.reg("r")
        b.emit("sub.u32 \(local), \(j), \(start);")
        b.emit("mad.lo.u32 \(sa), \(local), 4, \(scores);")
        b.emit("st.shared.f32 [\(sa)], \(dot);")
        b.emit("max.f32 \(mx), \(mx), \(dot);")
        b.emit("add.u32 \(j), \(j), \(T);")
        b.emit("bra \(scoreLoop);")
        b.place(scoreDone)
        let maxAll = blockReduce(&b, mx, red: red, threads: T, max: true)
        // exp(s − max), summed.
        let sum = b.reg("f")
        b.emit("mov.f32 \(sum), 0f00000000;")
        b.emit("add.u32 \(j), \(start), \(tid);")
        let expLoop = b.label("exp"), expDone = b.label("expdone")
        b.place(expLoop)
        b.emit("setp.ge.u32 \(p), \(j), \(count);")
        b.emit("@\(p) bra \(expDone);")
        let e = b.reg("f")
        b.emit("sub.u32 \(local), \(j), \(start);")
        b.emit("mad.lo.u32 \(sa), \(local), 4, \(scores);")
        b.emit("ld.shared.f32 \(e), [\(sa)];")
        b.emit("sub.rn.f32 \(e), \(e), \(maxAll);")
        b.emit("mul.rn.f32 \(e), \(e), 0f3FB8AA3B;")  // log2(e)
        b.emit("ex2.approx.ftz.f32 \(e), \(e);")
        b.emit("st.shared.f32 [\(sa)], \(e);")
        b.emit("add.rn.f32 \(sum), \(sum), \(e);")
        b.emit("add.u32 \(j), \(j), \(T);")
        b.emit("bra \(expLoop);")
        b.place(expDone)
        let total = blockReduce(&b, sum, red: red, threads: T)  // ends with bar.sync: all exps are visible
        // out[d] = Σ_j p_j v[j, d] / total: D/4 lanes cover a row with 16-byte loads, the block's
        // G = 4T/D row groups take positions g, g + G, … (eight at a time, independent loads), and
        // the G partial rows are summed through shared memory.
        let lanesPerRow = headDim / 4, groups = T / lanesPerRow
        let grp = b.reg("r"), l4 = b.reg("r")
        b.emit("div.u32 \(grp), \(tid), \(lanesPerRow);")
        b.emit("rem.u32 \(l4), \(tid), \(lanesPerRow);")
        let acc = b.regs("f", 4)
        for a in acc { b.emit("mov.f32 \(a), 0f00000000;") }
        let active = b.reg("p")
        b.emit("setp.lt.u32 \(active), \(grp), \(groups);")
        b.emit("add.u32 \(j), \(start), \(grp);")
        let vLoop = b.label("v"), vDone = b.label("vdone")
        b.place(vLoop)
        b.emit("setp.ge.u32 \(p), \(j), \(count);")
        b.emit("@\(p) bra \(vDone);")
        b.emit("@!\(active) bra \(vDone);")
        var loaded: [(String, [String], String)] = []
        for u in 0..<8 {
            let jj = b.reg("r"), ok = b.reg("p"), pj = b.reg("f"), vv = b.regs("f", 4), vi = b.reg("r"), sa2 = b.reg("r")
            b.emit("add.u32 \(jj), \(j), \(u * groups);")
            b.emit("setp.lt.u32 \(ok), \(jj), \(count);")
            b.emit("mov.f32 \(pj), 0f00000000;")
            for x in vv { b.emit("mov.f32 \(x), 0f00000000;") }
            let lj = b.reg("r")
            b.emit("sub.u32 \(lj), \(jj), \(start);")
            b.emit("mad.lo.u32 \(sa2), \(lj), 4, \(scores);")
            b.emit("@\(ok) ld.shared.f32 \(pj), [\(sa2)];")
            b.emit("mad.lo.u32 \(vi), \(jj), \(rowStride), 0;")
            b.emit("mad.lo.u32 \(vi), \(kvHead), \(headDim), \(vi);")
            b.emit("mad.lo.u32 \(vi), \(l4), 4, \(vi);")
            let va = b.element(v, vi, 4)
            b.emit("@\(ok) ld.global.v4.f32 {\(vv.joined(separator: ", "))}, [\(va)];")
            loaded.append((pj, vv, ok))
        }
        for (pj, vv, _) in loaded { for c in 0..<4 { b.emit("fma.rn.f32 \(acc[c]), \(pj), \(vv[c]), \(acc[c]);") } }
        b.emit("add.u32 \(j), \(j), \(8 * groups);")
        b.emit("bra \(vLoop);")
        b.place(vDone)
        let pv = b.reg("r"), slotAddr = b.reg("r")
        b.emit("mov.u32 \(pv), \(name)_pv;")
        b.emit("mad.lo.u32 \(slotAddr), \(grp), \(4 * headDim), \(pv);")
        b.emit("mad.lo.u32 \(slotAddr), \(l4), 16, \(slotAddr);")
        b.emit("@\(active) st.shared.v4.f32 [\(slotAddr)], {\(acc.joined(separator: ", "))};")
        b.emit("bar.sync 0;")
        let done = b.label("done"), written = b.label("written")
        b.emit("@!\(inD) bra \(splits > 1 ? written : done);")
        let outSum = b.reg("f"), ta = b.reg("r")
        b.emit("mad.lo.u32 \(ta), \(tid), 4, \(pv);")
        b.emit("ld.shared.f32 \(outSum), [\(ta)];")
        for g in 1..<groups {
            let o = b.reg("f")
            b.emit("ld.shared.f32 \(o), [\(ta)+\(4 * headDim * g)];")
            b.emit("add.rn.f32 \(outSum), \(outSum), \(o);")
        }
        let oa = b.element(out, qi, 2)
        if splits == 1 {
            b.emit("div.rn.f32 \(outSum), \(outSum), \(total);")
            let h = b.reg("h")
            b.emit("cvt.rn.f16.f32 \(h), \(outSum);")
            b.emit("st.global.b16 [\(oa)], \(h);")
        } else {
            // This split's partial row (unnormalized Σ p·v), its max and its Σ p, in scratch
            // [head][split][D + 2]; the last split of a head to finish (a counter per head after
            // the partials, reset by that split) combines them: out = Σ e^(m_s − M) acc_s / Σ e^(m_s − M) l_s.
            let stride = headDim + 2
            let slot = b.reg("r")
            b.emit("mad.lo.u32 \(slot), \(head), \(splits), \(split);")
            b.emit("mul.lo.u32 \(slot), \(slot), \(stride);")
            let rowAddr = b.element(scratch, slot, 4)
            let da = b.reg("rd"), wide = b.reg("rd")
            b.emit("mul.wide.u32 \(wide), \(tid), 4;")
            b.emit("add.s64 \(da), \(rowAddr), \(wide);")
            b.emit("st.global.f32 [\(da)], \(outSum);")
            let first = b.reg("p")
            b.emit("setp.eq.u32 \(first), \(tid), 0;")
            b.emit("@\(first) st.global.v2.f32 [\(rowAddr)+\(4 * headDim)], {\(maxAll), \(total)};")
            b.place(written)
            b.emit("membar.gl;")
            b.emit("bar.sync 0;")
            let counter = b.reg("r"), old = b.reg("r"), last = b.reg("p"), flag = b.reg("r")
            b.emit("add.u32 \(counter), \(head), \(heads * splits * stride);")
            let ca = b.element(scratch, counter, 4)
            b.emit("setp.eq.u32 \(first), \(tid), 0;")
            b.emit("mov.u32 \(old), 0;")
            b.emit("@\(first) atom.global.add.u32 \(old), [\(ca)], 1;")
            b.emit("@\(first) st.shared.u32 [\(red)], \(old);")
            b.emit("bar.sync 0;")
            b.emit("ld.shared.u32 \(flag), [\(red)];")
            b.emit("setp.ne.u32 \(last), \(flag), \(splits - 1);")
            b.emit("@\(last) bra \(done);")
            b.emit("membar.gl;")
            b.emit("@\(first) st.global.u32 [\(ca)], 0;")
            b.emit("@!\(inD) bra \(done);")
            let base = b.reg("r")
            b.emit("mul.lo.u32 \(base), \(head), \(splits * stride);")
            let headAddr = b.element(scratch, base, 4)
            var parts: [(m: String, l: String, a: String)] = []
            for sp in 0..<splits {
                let m = b.reg("f"), l = b.reg("f"), a = b.reg("f"), pa = b.reg("rd")
                b.emit("ld.global.cg.v2.f32 {\(m), \(l)}, [\(headAddr)+\(4 * (sp * stride + headDim))];")
                b.emit("add.s64 \(pa), \(headAddr), \(wide);")
                b.emit("ld.global.cg.f32 \(a), [\(pa)+\(4 * sp * stride)];")
                parts.append((m, l, a))
            }
            let big = b.reg("f")
            b.emit("mov.f32 \(big), \(parts[0].m);")
            for part in parts.dropFirst() { b.emit("max.f32 \(big), \(big), \(part.m);") }
            let num = b.reg("f"), den = b.reg("f")
            b.emit("mov.f32 \(num), 0f00000000;")
            b.emit("mov.f32 \(den), 0f00000000;")
            for part in parts {
                let w = b.reg("f")
                b.emit("sub.rn.f32 \(w), \(part.m), \(big);")
                b.emit("mul.rn.f32 \(w), \(w), 0f3FB8AA3B;")
                b.emit("ex2.approx.ftz.f32 \(w), \(w);")
                b.emit("fma.rn.f32 \(num), \(w), \(part.a), \(num);")
                b.emit("fma.rn.f32 \(den), \(w), \(part.l), \(den);")
            }
            b.emit("div.rn.f32 \(num), \(num), \(den);")
            let h = b.reg("h")
            b.emit("cvt.rn.f16.f32 \(h), \(num);")
            b.emit("st.global.b16 [\(oa)], \(h);")
        }
        b.place(done)
        let params: [(String, String)] = [("q", "u64"), ("k", "u64"), ("v", "u64"), ("out", "u64"), ("state", "u64"), ("scale", "f32")]
            + (splits > 1 ? [("scratch", "u64")] : [])
        return (name, b.entryText(name, params: params,
                                  threads: T, shared: [".shared .align 16 .b8 \(name)_qs[\(4 * headDim)];",
                                                       ".shared .align 16 .b8 \(name)_sc[\(4 * capacity)];",
                                                       ".shared .align 16 .b8 \(name)_rd[\(4 * T / 32)];",
                                                       ".shared .align 16 .b8 \(name)_pv[\(16 * T)];"]))
    }

    /// `nm_silu_mul_nN(gate f16, up f16, out f16)`: out = silu(gate) · up = gate / (1 + e^−gate) · up.
    public static func siluMul(elements n: Int) -> (entry: String, ptx: String) {
        let name = "nm_silu_mul_n\(n)"
        var b = PTXBuilder()
        let gate = b.pointerParam(name, "gate"), up = b.pointerParam(name, "up"), out = b.pointerParam(name, "out")
        let exit = b.label("exit")
        let count = b.constant(UInt32(n))
        let i = b.globalIndex(threads: threads, count: count, exit: exit)
        let hg = b.reg("h"), hu = b.reg("h"), g = b.reg("f"), u = b.reg("f"), e = b.reg("f")
        let ga = b.element(gate, i, 2), ua = b.element(up, i, 2)
        b.emit("ld.global.b16 \(hg), [\(ga)];")
        b.emit("ld.global.b16 \(hu), [\(ua)];")
        b.emit("cvt.f32.f16 \(g), \(hg);")
        b.emit("cvt.f32.f16 \(u), \(hu);")
        b.emit("mul.rn.f32 \(e), \(g), 0fBFB8AA3B;")  // −log2(e)
        b.emit("ex2.approx.ftz.f32 \(e), \(e);")
        b.emit("add.rn.f32 \(e), \(e), 0f3F800000;")
        b.emit("div.rn.f32 \(e), \(g), \(e);")
        b.emit("mul.rn.f32 \(e), \(e), \(u);")
        let h = b.reg("h")
        b.emit("cvt.rn.f16.f32 \(h), \(e);")
        let oa = b.element(out, i, 2)
        b.emit("st.global.b16 [\(oa)], \(h);")
        b.place(exit)
        return (name, b.entryText(name, params: [("gate", "u64"), ("up", "u64"), ("out", "u64")], threads: threads))
    }

    /// PTX's hex float literal digits (`0f3F800000` is 1.0).
    static func hexFloat(_ f: Float) -> String {
        let s = String(f.bitPattern, radix: 16, uppercase: true)
        return String(repeating: "0", count: 8 - s.count) + s
    }

    /// The (cos, sin) table the rope kernel reads: `[capacity, headDim/2]` pairs of f32, computed
    /// as the interpreter does (Double angle `p · theta^(−2i/D)`, then rounded).
    public static func ropeTable(theta: Double, headDim: Int, capacity: Int) -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(capacity * headDim)
        for p in 0..<capacity {
            for i in 0..<(headDim / 2) {
                let angle = Double(p) * pow(theta, -2 * Double(i) / Double(headDim))
                out.append(Float(cos(angle)))
                out.append(Float(sin(angle)))
            }
        }
        return out
    }
}
