/// Bulk weights (`LinearKernel.bulkWeights`, sm_90): a block's whole run of weights, metadata
/// and scales comes into its shared memory by the bulk copy engine, all of it asked for when the
/// block starts, and the warps read their units from there.
///
/// The decode kernels otherwise load each unit into registers a batch at a time, so the bytes a
/// warp has on their way are what its registers hold; at M = 16 that left the kernels waiting on
/// memory with ten warps an SM (session 17 of docs/performance-gpu.md). Here one
/// `cp.async.bulk` a (round, row tile, array) puts every byte of the block in flight at once,
/// before `griddepcontrol.wait` where launched dependently, and each warp waits only on the
/// mbarrier of the round its next unit belongs to (round j: units j·W … j·W + W − 1, the units
/// the block's W warps take together).
///
/// Shared memory past the reduction and staging buffer (`workBytes`), at 16-byte offsets:
/// weights, metadata and scales, each the block's R row tiles × U units in the global layout's
/// order (KernelWeightLayout: row tile r's unit u at r·U + u), then one mbarrier a round.
extension LinearKernel {
    /// The largest dynamic shared memory a block may have on sm_90 (227 KB).
    static let maxSharedBytes = 232_448

    /// Bytes of one (row tile, unit) in each array the kernel reads: weights, metadata, scales.
    var arrayUnitBytes: [Int] { [unitBytes] + (weights == .int4Sparse24 ? [256] : []) + (weights == .fp16 ? [] : [32]) }

    /// Offsets in shared memory of the bulk weight arrays (same order as `arrayUnitBytes`) and of
    /// the mbarriers; the end is `sharedBytes`.
    var bulkOffsets: (arrays: [Int], barriers: Int, end: Int) {
        var offset = (workBytes + 15) / 16 * 16
        var arrays: [Int] = []
        for bytes in arrayUnitBytes {
            arrays.append(offset)
            offset += rowTiles * units * bytes
        }
        return (arrays, offset, offset + 8 * rounds)
    }

    /// Thread 0 sets up one mbarrier a round; then lane 0 of warp j mod W asks for round j: each
    /// row tile's run of the round's units in each array, completing on the round's mbarrier.
    /// Returns the block's shared base (`entry_red`).
    func issueBulkCopies(_ b: inout PTXBuilder, arrays: [String], tile: String, tid: String, lane: String, warp: String) -> String {
        let smem = b.reg("r"), first = b.reg("p"), lane0 = b.reg("p")
        let (offsets, bars, _) = bulkOffsets
        b.emit("mov.u32 \(smem), \(entry)_red;")
        b.emit("setp.eq.u32 \(first), \(tid), 0;")
        for j in 0..<rounds { b.emit("@\(first) mbarrier.init.shared::cta.b64 [\(smem)+\(bars + 8 * j)], 1;") }
        b.emit("@\(first) fence.mbarrier_init.release.cluster;")
        b.emit("bar.sync 0;")
        b.emit("setp.eq.u32 \(lane0), \(lane), 0;")
        // The block's first unit in the layouts: tile·R·U.
        let blockUnit = b.reg("r")
        b.emit("mul.lo.u32 \(blockUnit), \(tile), \(rowTiles * units);")
        let sources = zip(arrays, arrayUnitBytes).map { b.wide($0, blockUnit, times: $1) }
        let state = b.reg("rd")
        for j in 0..<rounds {
            let issuer = b.reg("p"), skip = b.label("issued")
            b.emit("setp.eq.u32 \(issuer), \(warp), \(j % warps);")
            b.emit("and.pred \(issuer), \(issuer), \(lane0);")
            b.emit("@!\(issuer) bra \(skip);")
            let count = min(warps, units - j * warps)
            let bytes = rowTiles * count * arrayUnitBytes.reduce(0, +)
            b.emit("mbarrier.arrive.expect_tx.shared::cta.b64 \(state), [\(smem)+\(bars + 8 * j)], \(bytes);")
            for (a, unitBytes) in arrayUnitBytes.enumerated() {
                for r in 0..<rowTiles {
                    let at = (r * units + j * warps) * unitBytes
                    b.emit("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [\(smem)+\(offsets[a] + at)], [\(sources[a])+\(at)], \(count * unitBytes), [\(smem)+\(bars + 8 * j)];")
                }
            }
            b.place(skip)
        }
        return smem
    }

    /// Waits until round j's bytes have landed (each mbarrier completes one phase, parity 0).
    func waitBulkRound(_ b: inout PTXBuilder, _ j: Int, smem: String, guardPredicate: String?) {
        let wait = b.label("bulk_wait"), done = b.label("bulk_ready"), ready = b.reg("p")
        if let p = guardPredicate { b.emit("@!\(p) bra \(done);") }
        b.place(wait)
        b.emit("mbarrier.try_wait.parity.shared::cta.b64 \(ready), [\(smem)+\(bulkOffsets.barriers + 8 * j)], 0;")
        b.emit("@!\(ready) bra \(wait);")
        b.place(done)
    }
}
