/// Seeded synthetic weights: every value is a pure function of (seed, weight name, element index),
/// a counter-based generator, so the CPU (these Swift functions) and the GPU (the kernels of
/// `SyntheticWeightKernels`, the same arithmetic in PTX) produce identical bits without copying
/// any weight. `nmc compile --config … --synthetic-weights SEED` uses them for both backends.
///
/// Values are chosen so that every one is exact in the format it is stored in (so f32 on the CPU
/// and f16 on the GPU hold the same number) and activations stay finite through all layers:
/// - dense values (embedding, f32/f16 linear weights): `k · 2^−(10+e)`, `k ∈ −1023…1023` (−1024 made 0, as for INT4), with
///   `e = round(log2 √in)` for linear weights (about uniform ±1/√in) and `e = 0` for the embedding;
/// - INT4 values `q ∈ −7…7` (the hash's −8 made 0, so that weights have mean 0: a common mode
///   in every weight makes a deep random model forget its input and repeat one token) (stored as nibbles `q + 8`), the 2:4 kept pair of each group of 4 one
///   of the six pairs, and f16 scales `m · 2^−p`, `m ∈ 16…31`, `p` chosen so that `q · scale` is
///   about uniform ±1/√in;
/// - columns past a weight's logical width (padding to the kernels' 128-column units) are 0.
public enum SyntheticWeights {
    /// The murmur3 32-bit finalizer: a bijection with full avalanche.
    @inline(__always)
    public static func mix(_ x: UInt32) -> UInt32 {
        var h = x
        h ^= h >> 16; h = h &* 0x85EB_CA6B
        h ^= h >> 13; h = h &* 0xC2B2_AE35
        h ^= h >> 16
        return h
    }

    /// The hash of element `index` of the stream `key`.
    @inline(__always)
    public static func hash(_ key: UInt32, _ index: UInt32) -> UInt32 { mix(index &* 0x9E37_79B1 &+ key) }

    /// The three streams of one weight: values, 2:4 pairs, scales.
    public struct Keys: Sendable, Equatable, Codable {
        public let values: UInt32
        public let pairs: UInt32
        public let scales: UInt32
    }

    /// The streams of weight `name` under `seed` (FNV-1a of the name, mixed with the seed).
    public static func keys(seed: UInt64, name: String) -> Keys {
        var fnv: UInt32 = 0x811C_9DC5
        for byte in name.utf8 { fnv = (fnv ^ UInt32(byte)) &* 0x0100_0193 }
        let key = mix(fnv ^ mix(UInt32(truncatingIfNeeded: seed)) ^ mix(UInt32(truncatingIfNeeded: seed >> 32) &+ 0x6A09_E667))
        return Keys(values: key, pairs: mix(key ^ 0xC2B2_AE3D), scales: mix(key ^ 0x85EB_CA77))
    }

    /// `e` of a linear weight with `columns` inputs: round(log2 √columns).
    public static func denseExponent(columns: Int) -> Int {
        roundedLog2(Double(max(columns, 1)).squareRoot())
    }

    /// `p` of an INT4 weight with `columns` inputs: q (std ≈ 4.6) times scales around 24 · 2^−p
    /// make weights of std ≈ 1/√columns.
    public static func scaleExponent(columns: Int) -> Int {
        min(18, max(1, roundedLog2(24 * 4.6 * Double(max(columns, 1)).squareRoot())))
    }

    /// log2 of a positive x, rounded to the nearest integer (in the log domain).
    static func roundedLog2(_ x: Double) -> Int {
        let e = Int(x.exponent)
        return x / Double(sign: .plus, exponent: e, significand: 1) >= 2.0.squareRoot() ? e + 1 : e
    }

    /// A dense value: `k · 2^−(10+e)`, 0 past `columns`.
    public static func denseValue(_ keys: Keys, row: Int, column: Int, columns: Int, exponent e: Int) -> Float {
        guard column < columns else { return 0 }
        let k = Int32(hash(keys.values, UInt32(truncatingIfNeeded: row * columns + column)) >> 21) - 1024
        return Float(k == -1024 ? 0 : k) * Float(sign: .plus, exponent: -(10 + e), significand: 1)
    }

    /// An INT4 value in −8…7, 0 past `columns`.
    public static func int4Value(_ keys: Keys, row: Int, column: Int, columns: Int) -> Int8 {
        guard column < columns else { return 0 }
        let q = Int8(hash(keys.values, UInt32(truncatingIfNeeded: row * columns + column)) >> 28) - 8
        return q == -8 ? 0 : q
    }

    /// The 2:4 kept pair of group `group4` (columns 4·group4 …): `first | second << 2`; (0, 1) past `columns`.
    public static func pairCode(_ keys: Keys, row: Int, group4: Int, columns: Int) -> UInt32 {
        guard 4 * group4 < columns else { return 0x4 }
        let p = hash(keys.pairs, UInt32(truncatingIfNeeded: row * (columns / 4) + group4)) % 6
        return (0xED9C84 >> (4 * p)) & 0xF
    }

    /// f16 bits of the scale of (row, group): `m · 2^−p`, `m = 16 + (hash >> 28)`.
    public static func scaleBits(_ keys: Keys, row: Int, group: Int, groups: Int, exponent p: Int) -> UInt16 {
        let top = hash(keys.scales, UInt32(truncatingIfNeeded: row * groups + group)) >> 28
        return UInt16(truncatingIfNeeded: UInt32(19 - p) << 10 | top << 6)
    }

    /// The packed INT4 weight `rows × columns` (group 128) these functions define; with
    /// `paddedColumns`, widened with zero columns as the PTX kernels read it.
    public static func packed(_ keys: Keys, rows: Int, columns: Int, sparse24: Bool, paddedColumns: Int? = nil) throws -> PackedINT4Weight {
        let width = paddedColumns ?? columns, group = KernelWeightLayout.unitColumns
        let groups = (width + group - 1) / group, p = scaleExponent(columns: columns)
        var values: [Int8] = [], indices: [UInt8] = []
        values.reserveCapacity(rows * (sparse24 ? width / 2 : width))
        for r in 0..<rows {
            if sparse24 {
                for g4 in 0..<(width / 4) {
                    let code = pairCode(keys, row: r, group4: g4, columns: columns)
                    for i in [code & 3, code >> 2] {
                        indices.append(UInt8(i))
                        values.append(int4Value(keys, row: r, column: 4 * g4 + Int(i), columns: columns))
                    }
                }
            } else {
                for c in 0..<width { values.append(int4Value(keys, row: r, column: c, columns: columns)) }
            }
        }
        var scales: [UInt16] = []
        scales.reserveCapacity(rows * groups)
        for r in 0..<rows { for g in 0..<groups { scales.append(scaleBits(keys, row: r, group: g, groups: groups, exponent: p)) } }
        return try PackedINT4Weight(rows: rows, columns: width, group: group, sparse24: sparse24,
                                    values: values, indices: indices, scaleBits: scales)
    }

    /// A dense `rows × columns` matrix (row-major f32) of `denseValue`s, widened to `paddedColumns`.
    public static func dense(_ keys: Keys, rows: Int, columns: Int, exponent e: Int, paddedColumns: Int? = nil) -> [Float] {
        let width = paddedColumns ?? columns
        var out = [Float](repeating: 0, count: rows * width)
        for r in 0..<rows { for c in 0..<columns { out[r * width + c] = denseValue(keys, row: r, column: c, columns: columns, exponent: e) } }
        return out
    }
}

extension PackedINT4Weight {
    /// This weight widened to `width` columns and `height` rows with zeros (2:4: kept pair (0, 1)
    /// of zeros; scales of new rows 0), as the PTX kernels read weights whose input dim is not a
    /// multiple of 128 (SmolLM2's 576) or whose output dim is not a multiple of 16.
    public func padded(to width: Int, rows height: Int? = nil) throws -> PackedINT4Weight {
        let height = height ?? rows
        guard width > columns || height > rows else { return self }
        let k = keptPerRow, extra = sparse24 ? (width - columns) / 2 : width - columns
        var v: [Int8] = [], idx: [UInt8] = []
        v.reserveCapacity(height * (k + extra))
        for r in 0..<height {
            if r < rows {
                v += values[(r * k)..<(r * k + k)]
                if sparse24 { idx += indices[(r * k)..<(r * k + k)] }
            } else {
                v += [Int8](repeating: 0, count: k)
                if sparse24 { for _ in 0..<(k / 2) { idx += [0, 1] } }
            }
            v += [Int8](repeating: 0, count: extra)
            if sparse24 { for _ in 0..<(extra / 2) { idx += [0, 1] } }
        }
        let newGroups = (width + group - 1) / group
        guard newGroups == groups else { throw PTXError("padding \(columns) columns to \(width) changes the groups of \(group)") }
        let scales = scaleBits + [UInt16](repeating: 0, count: (height - rows) * groups)
        return try PackedINT4Weight(rows: height, columns: width, group: group, sparse24: sparse24, values: v, indices: idx, scaleBits: scales)
    }
}
