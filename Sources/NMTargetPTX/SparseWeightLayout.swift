/// The 2:4 INT4 layout for `mma.sp.m16n8k32` (see KernelWeightLayout for the tiles and units).
/// Step s (0…3) of a unit covers its columns 32s … 32s+31, eight groups of 4 in their natural
/// order. A lane's registers a0…a3 hold the two kept values of groups (8s+t, row g),
/// (8s+t, row g+8), (8s+t+4, row g), (8s+t+4, row g+8); its B registers b0…b3 the activation
/// pairs at columns 32s + 2t + 8j (j = 0…3).
///
/// Metadata (built here, at compile time): per row and 16-column half of a step, 16 bits, 4 per
/// group of 4 columns (the first kept index in the low 2 bits). For `.f16` m16n8k32 two lanes
/// of each quad supply it, chosen by the sparsity selector: lanes t = 0, 1 (selector 0) for
/// steps 0 and 1, lanes t = 2, 3 (selector 1) for steps 2 and 3, so every lane loads 8 bytes
/// per unit. A supplying lane with t % 2 = h holds half h of rows g (bits 0–15) and g + 8 (bits
/// 16–31).
extension KernelWeightLayout {
    /// Which lane of a quad holds which metadata; `rowsInHalves` is the layout above, the other
    /// the alternative reading of the PTX ISA's figure (lane t % 2 = 0 row g, 1 row g + 8). Only
    /// the first is used; the second stays so that `nmc-run --gpu-check` can tell them apart.
    public enum MetadataOrder: String, Sendable { case rowsInHalves, rowPerLane }

    /// 2:4 values: u32 index `((tile·U + unit)·32 + lane)·4 + s`, register a_i's kept pair at
    /// nibbles i and 4 + i, stored as q + 8.
    public static func int4Sparse24Values(_ w: PackedINT4Weight) throws -> [UInt32] {
        guard w.sparse24 else { throw PTXError("int4Sparse24 layout given a dense weight") }
        try checkShape(rows: w.rows, columns: w.columns)
        let units = w.columns / unitColumns, kept = w.keptPerRow
        var out = [UInt32](repeating: 0, count: w.rows * kept / 8)
        var o = 0
        for tile in 0..<(w.rows / tileRows) {
            for unit in 0..<units {
                for lane in 0..<32 {
                    let g = lane / 4, t = lane % 4
                    for s in 0..<4 {
                        var word: UInt32 = 0
                        for i in 0..<4 {
                            let row = tile * tileRows + g + (i % 2) * 8
                            let group4 = unit * 32 + 8 * s + t + (i / 2) * 4
                            let j = row * kept + group4 * 2
                            word |= UInt32(UInt8(bitPattern: w.values[j] &+ 8)) << (4 * i)
                            word |= UInt32(UInt8(bitPattern: w.values[j + 1] &+ 8)) << (16 + 4 * i)
                        }
                        out[o] = word
                        o += 1
                    }
                }
            }
        }
        return out
    }

    /// 2:4 metadata: u32 index `((tile·U + unit)·32 + lane)·2 + k` is the lane's operand for step
    /// `k` (t < 2) or `2 + k` (t ≥ 2).
    public static func int4Sparse24Metadata(_ w: PackedINT4Weight, order: MetadataOrder = .rowsInHalves) throws -> [UInt32] {
        guard w.sparse24 else { throw PTXError("int4Sparse24 layout given a dense weight") }
        try checkShape(rows: w.rows, columns: w.columns)
        let units = w.columns / unitColumns, kept = w.keptPerRow
        func half(row: Int, unit: Int, step: Int, h: Int) -> UInt32 {
            var bits: UInt32 = 0
            for c in 0..<4 {
                let j = row * kept + (unit * 32 + 8 * step + 4 * h + c) * 2
                bits |= (UInt32(w.indices[j]) | UInt32(w.indices[j + 1]) << 2) << (4 * c)
            }
            return bits
        }
        var out = [UInt32](repeating: 0, count: w.rows / tileRows * units * 64)
        var o = 0
        for tile in 0..<(w.rows / tileRows) {
            for unit in 0..<units {
                for lane in 0..<32 {
                    let g = lane / 4, t = lane % 4
                    let rowG = tile * tileRows + g
                    for k in 0..<2 {
                        let step = (t < 2 ? 0 : 2) + k
                        switch order {
                        case .rowsInHalves:
                            out[o] = half(row: rowG, unit: unit, step: step, h: t % 2)
                                | half(row: rowG + 8, unit: unit, step: step, h: t % 2) << 16
                        case .rowPerLane:
                            let row = rowG + (t % 2) * 8
                            out[o] = half(row: row, unit: unit, step: step, h: 0) | half(row: row, unit: unit, step: step, h: 1) << 16
                        }
                        o += 1
                    }
                }
            }
        }
        return out
    }
}
