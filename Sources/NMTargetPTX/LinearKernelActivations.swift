/// The staged and unstaged decode kernels' activations into registers (`LinearKernel`; the
/// tensor copy engine's form is LinearKernelTensorActivations.swift).
extension LinearKernel {
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
}
