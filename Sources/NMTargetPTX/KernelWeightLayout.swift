/// The order the PTX linear kernels read their weights in, built offline by the compiler
/// (docs/ptx-weight-layout.md describes it with a picture). A weight `[N, K]` is cut into row
/// tiles of 16 output rows and units of 128 input columns (one scale group); a warp reads one
/// (tile, unit) with full 16-byte loads, each lane's bytes already the tensor-core fragment it
/// feeds to `mma`, so that no shuffling happens on the GPU.
///
/// Fragment notation: lane = 4·g + t (g = lane / 4, t = lane % 4). In `mma.m16n8k16` the A
/// registers a0…a3 of a lane hold rows (g, g+8, g, g+8) and k-pairs (2t, 2t, 2t+8, 2t+8);
/// the k order inside a unit is ours to choose, so the layout maps the mma's k-pairs to the
/// columns `64h + 16t + 4s + {0,1}` (a0, a1) and `+{2,3}` (a2, a3) for step s of half h: each
/// lane then reads 16 consecutive activations per half, two 16-byte loads.
public enum KernelWeightLayout {
    public static let unitColumns = 128
    public static let tileRows = 16

    static func checkShape(rows: Int, columns: Int) throws {
        guard rows % tileRows == 0, columns % unitColumns == 0 else {
            throw PTXError("linear weight \(rows)x\(columns): the PTX kernels need rows a multiple of \(tileRows) and columns a multiple of \(unitColumns)")
        }
    }

    /// Row and column of the value pair that register `i` (0…3) of `lane` holds in step `s` of
    /// half `h` of a dense unit (its first column; the pair's second is the next column).
    @inline(__always)
    static func densePair(lane: Int, h: Int, s: Int, i: Int) -> (row: Int, column: Int) {
        let g = lane / 4, t = lane % 4
        return (g + (i % 2) * 8, 64 * h + 16 * t + 4 * s + (i / 2) * 2)
    }

    /// FP16 weights `[N, K]` (f16 bits): u32 index `((((tile·U + unit)·2 + h)·4 + s)·32 + lane)·4 + i`
    /// holds the f16 pair of register a_i; one step of one half is 512 contiguous bytes.
    public static func fp16(_ w: [UInt16], rows: Int, columns: Int) throws -> [UInt32] {
        try checkShape(rows: rows, columns: columns)
        let units = columns / unitColumns
        var out = [UInt32](repeating: 0, count: rows * columns / 2)
        var o = 0
        for tile in 0..<(rows / tileRows) {
            for unit in 0..<units {
                for h in 0..<2 { for s in 0..<4 { for lane in 0..<32 { for i in 0..<4 {
                    let p = densePair(lane: lane, h: h, s: s, i: i)
                    let base = (tile * tileRows + p.row) * columns + unit * unitColumns + p.column
                    out[o] = UInt32(w[base]) | UInt32(w[base + 1]) << 16
                    o += 1
                } } } }
            }
        }
        return out
    }

    /// Dense INT4: u32 index `(((tile·U + unit)·2 + h)·32 + lane)·4 + s` holds the 8 values of
    /// step s: register a_i's pair at nibbles i (low value) and 4 + i (high value), each stored
    /// as q + 8 so that the GPU turns it into an f16 with one `lop3` (0x6400 | n = 1024 + n).
    public static func int4Dense(_ w: PackedINT4Weight) throws -> [UInt32] {
        guard !w.sparse24 else { throw PTXError("int4Dense layout given a 2:4 weight") }
        try checkShape(rows: w.rows, columns: w.columns)
        let units = w.columns / unitColumns, k = w.columns
        var out = [UInt32](repeating: 0, count: w.rows * w.columns / 8)
        var o = 0
        for tile in 0..<(w.rows / tileRows) {
            for unit in 0..<units {
                for h in 0..<2 { for lane in 0..<32 { for s in 0..<4 {
                    var word: UInt32 = 0
                    for i in 0..<4 {
                        let p = densePair(lane: lane, h: h, s: s, i: i)
                        let base = (tile * tileRows + p.row) * k + unit * unitColumns + p.column
                        word |= UInt32(UInt8(bitPattern: w.values[base] &+ 8)) << (4 * i)
                        word |= UInt32(UInt8(bitPattern: w.values[base + 1] &+ 8)) << (16 + 4 * i)
                    }
                    out[o] = word
                    o += 1
                } } }
            }
        }
        return out
    }

    /// Scales of a unit's 16 rows: u32 index `(tile·U + unit)·8 + g` holds the f16 scales of rows
    /// g (low half) and g + 8 (high half) of the tile, for the group holding the unit's columns.
    public static func scales(_ w: PackedINT4Weight) throws -> [UInt32] {
        try checkShape(rows: w.rows, columns: w.columns)
        guard w.group % unitColumns == 0 else {
            throw PTXError("int4 weight with group \(w.group): the PTX kernels need a group that is a multiple of \(unitColumns)")
        }
        let units = w.columns / unitColumns
        var out = [UInt32](repeating: 0, count: w.rows / 2 * units)
        for tile in 0..<(w.rows / tileRows) {
            for unit in 0..<units {
                let group = unit * unitColumns / w.group
                for g in 0..<8 {
                    let lo = w.scaleBits[(tile * tileRows + g) * w.groups + group]
                    let hi = w.scaleBits[(tile * tileRows + g + 8) * w.groups + group]
                    out[(tile * units + unit) * 8 + g] = UInt32(lo) | UInt32(hi) << 16
                }
            }
        }
        return out
    }
}
