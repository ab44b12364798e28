/// What a warp of the decode kernel (`LinearKernel`) does with one unit of 128 columns: load its
/// weights (and metadata, scales) and activations, stage a 16-token unit's rows for `ldmatrix`,
/// and run its tensor-core steps.
extension LinearKernel {
    /// The lane's addresses of unit `warp + j·W`'s weight vectors (512 bytes a warp each),
    /// metadata and scale: what `loadUnit` loads and `prefetchAhead` asks the L2 for.
    func unitAddresses(unitOffset: Int, lanes: Lanes) -> (w: [String], meta: String?, scale: String?, all: [String]) {
        let w = (0..<(unitBytes / 512)).map { "[\(lanes.w)+\(unitOffset * unitBytes + 512 * $0)]" }
        let meta = weights == .int4Sparse24 ? "[\(lanes.meta)+\(unitOffset * 256)]" : nil
        let scale = weights != .fp16 ? "[\(lanes.scale)+\(unitOffset * 32)]" : nil
        return (w, meta, scale, w + [meta, scale].compactMap { $0 })
    }

    /// Issues the loads of unit `warp + j·W`'s weights (and metadata, scales).
    func loadUnit(_ b: inout PTXBuilder, unitOffset: Int, pred: String, lanes: Lanes, op: String) -> UnitRegisters {
        let at = unitAddresses(unitOffset: unitOffset, lanes: lanes)
        let w = at.w.flatMap { address -> [String] in
            let r = b.regs("r", 4)
            b.emit("\(pred)\(op).v4.u32 {\(r.joined(separator: ", "))}, \(address);")
            return r
        }
        var meta: [String] = []
        if let address = at.meta {
            meta = b.regs("r", 2)
            b.emit("\(pred)\(op).v2.u32 {\(meta.joined(separator: ", "))}, \(address);")
        }
        let scale = at.scale.map { address -> String in
            let s = b.reg("r")
            b.emit("\(pred)\(op).u32 \(s), \(address);")
            return s
        }
        return UnitRegisters(w: w, meta: meta, scale: scale)
    }

    /// The activations' load: `ld.global.nc` (the read-only path), but not where the kernel
    /// may start before the kernel that writes them has ended (`dependentLaunch`): there the
    /// buffer is not read-only for the kernel's lifetime, and ptxas moves `.nc` loads across
    /// `griddepcontrol.wait` (measured in session 17's SASS: with the L2 prefetch, every
    /// activation load and `mma` ran before the wait).
    var activationLoad: String { dependentLaunch ? "ld.global" : "ld.global.nc" }
    /// The weights' load: `ld.global.nc`, but weak for the batch loaded before the wait where
    /// `weakWeightLoads` asks for it (ptxas keeps weak loads above the wait).
    func weightLoad(firstBatch: Bool) -> String { weakFirstBatch && firstBatch ? "ld.global" : "ld.global.nc" }

    /// Loads unit `warp + j·W`'s activations for each token tile: 16 registers (f16 pairs) per
    /// tile, in the order the mma steps use them (dense: 16 consecutive columns per half;
    /// 2:4: the pairs at 32s + 2t + 8jj).
    func loadActivations(_ b: inout PTXBuilder, j: Int, pred: String, xLane: [String]) -> [[String]] {
        let xUnit = j * splits * warps * KernelWeightLayout.unitColumns * 2  // bytes
        if staged {  // 8 rows' chunks, 16 bytes each, for `stage`
            return [xLane.flatMap { row in
                let r = b.regs("r", 4)
                b.emit("\(pred)\(activationLoad).v4.u32 {\(r.joined(separator: ", "))}, [\(row)+\(xUnit)];")
                return r
            }]
        }
        return xLane.map { lane in
            let r = b.regs("r", 16)
            if weights == .int4Sparse24 {
                for s in 0..<4 { for jj in 0..<4 {
                    b.emit("\(pred)\(activationLoad).u32 \(r[4 * s + jj]), [\(lane)+\(xUnit + 64 * s + 16 * jj)];")
                } }
            } else {
                for v in 0..<4 {
                    let offset = xUnit + 128 * (v / 2) + 16 * (v % 2)
                    b.emit("\(pred)\(activationLoad).v4.u32 {\(r[(4 * v)..<(4 * v + 4)].joined(separator: ", "))}, [\(lane)+\(offset)];")
                }
            }
            return r
        }
    }

    /// Writes a unit's 16 activation rows (loaded by `loadActivations`) to the warp's rows in
    /// shared memory and takes each step's B fragments for both token tiles with `ldmatrix`.
    func stage(_ b: inout PTXBuilder, _ x: [String], _ staging: (store: String, load: String)) -> [[String]] {
        b.emit("bar.warp.sync -1;")  // the previous unit's ldmatrix reads are done
        for i in 0..<8 {
            b.emit("st.shared.v4.u32 [\(staging.store)+\(2 * i * Self.stagedRowBytes)], {\(x[(4 * i)..<(4 * i + 4)].joined(separator: ", "))};")
        }
        b.emit("bar.warp.sync -1;")
        return (0..<2).map { nt in
            (0..<4).flatMap { s -> [String] in
                let r = b.regs("r", 4)
                b.emit("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {\(r.joined(separator: ", "))}, [\(staging.load)+\(nt * 8 * Self.stagedRowBytes + 64 * s)];")
                return r
            }
        }
    }

    /// Dequantizes one unit's weights (for each row tile) and runs its tensor-core steps for
    /// every token tile (`half` h: only the steps of its h-th 64 columns). INT4 weights go to the `mma` unscaled (q exactly, in f16): a unit is one
    /// scale group, so its steps sum into fresh f32 accumulators, and one `fma` a sum applies the
    /// row's scale while adding it to the kernel's (`acc`). That leaves one `sub.f16x2` a weight
    /// pair, not a `sub` and a `mul`, and is exact up to the f32 sums.
    func computeUnit(_ b: inout PTXBuilder, regs: [UnitRegisters], x: [[String]], acc: [[[String]]], consts: [String], zero: [String],
                             half: Int? = nil) {
        func mine(_ i: Int, of n: Int) -> Bool { half.map { i / (n / 2) == $0 } ?? true }
        func mma(_ d: [String], _ c: [String], _ a: [String], _ bRegs: [String], meta: String? = nil, selector: Int = 0) {
            let (d, c) = ("{\(d.joined(separator: ", "))}", "{\(c.joined(separator: ", "))}")
            if let e = meta {
                b.emit("mma.sp.sync.aligned.m16n8k32.row.col.f32.f16.f16.f32 \(d), {\(a.joined(separator: ", "))}, {\(bRegs.joined(separator: ", "))}, \(c), \(e), \(selector);")
            } else {
                b.emit("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 \(d), {\(a.joined(separator: ", "))}, {\(bRegs.joined(separator: ", "))}, \(c);")
            }
        }
        if weights == .fp16 {
            for h in 0..<2 where mine(h, of: 2) { for s in 0..<4 { for r in 0..<rowTiles {
                let a = Array(regs[r].w[(16 * h + 4 * s)..<(16 * h + 4 * s + 4)])
                for nt in 0..<tokenTiles { mma(acc[r][nt], acc[r][nt], a, [x[nt][8 * h + 2 * s], x[nt][8 * h + 2 * s + 1]]) }
            } } }
            return
        }
        // (word, B registers of token tile nt, metadata, selector) of each tensor-core step
        let steps: [(word: Int, x: (Int) -> [String], meta: (Int) -> String?, selector: Int)] = weights == .int4Sparse24
            ? (0..<4).filter { mine($0, of: 4) }.map { s in (s, { nt in Array(x[nt][(4 * s)..<(4 * s + 4)]) }, { r in regs[r].meta[s % 2] }, s / 2) }
            : (0..<8).filter { mine($0, of: 8) }.map { i in (i, { nt in [x[nt][2 * i], x[nt][2 * i + 1]] }, { _ in nil }, 0) }
        guard scaleSums else {
            let scales = regs.map { b.scalePairs($0.scale!) }
            for step in steps { for r in 0..<rowTiles {
                let a = b.dequantizeInt4(regs[r].w[step.word], constants: consts, scales: scales[r])
                for nt in 0..<tokenTiles { mma(acc[r][nt], acc[r][nt], a, step.x(nt), meta: step.meta(r), selector: step.selector) }
            } }
            return
        }
        for r in 0..<rowTiles {
            let sums = (0..<tokenTiles).map { _ in b.regs("f", 4) }
            for (i, step) in steps.enumerated() {
                let a = b.dequantizeInt4(regs[r].w[step.word], constants: consts, scales: nil)
                for nt in 0..<tokenTiles { mma(sums[nt], i == 0 ? zero : sums[nt], a, step.x(nt), meta: step.meta(r), selector: step.selector) }
            }
            let scale = b.scaleFloats(regs[r].scale!)
            for nt in 0..<tokenTiles {
                for c in 0..<4 { b.emit("fma.rn.f32 \(acc[r][nt][c]), \(sums[nt][c]), \(c < 2 ? scale.0 : scale.1), \(acc[r][nt][c]);") }
            }
        }
    }
}
