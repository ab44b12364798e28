import NMIR

/// The positions an N:M weight keeps: in every group of M columns of a row, exactly N, in
/// increasing order. They are the non-zero positions; when a group has fewer than N non-zeros,
/// the lowest-index zero positions fill it up (a kept value may be zero, as ir-specs/quant.md
/// allows). A group with more than N non-zeros does not satisfy the pattern.
public struct NMKeptPositions: Sendable, Equatable {
    public var pattern: NMPattern
    public var rows: Int
    public var columns: Int
    /// `rows × (columns / M · N)`: each kept value's column within its group (0 ..< M).
    public var indices: [UInt8]
    /// `rows × columns`: whether each position is kept.
    public var mask: [Bool]

    /// A group of a row that holds more non-zeros than the pattern allows.
    public struct Violation: Error, Sendable {
        public var row: Int
        public var column: Int
        public var nonZeros: Int
    }

    /// Reads the kept positions off `weights` (`rows × columns`, row-major; `columns` a multiple of M).
    public init(weights: [Double], rows: Int, columns: Int, pattern: NMPattern) throws(Violation) {
        let n = pattern.n, m = pattern.m, groups = columns / m
        self.pattern = pattern
        self.rows = rows
        self.columns = columns
        indices = []
        indices.reserveCapacity(rows * groups * n)
        mask = [Bool](repeating: false, count: rows * columns)
        for r in 0..<rows {
            for k in 0..<groups {
                let base = r * columns + k * m
                var keep = [Bool](repeating: false, count: m)
                var count = 0
                for i in 0..<m where weights[base + i] != 0 {
                    keep[i] = true
                    count += 1
                }
                guard count <= n else { throw Violation(row: r, column: k * m, nonZeros: count) }
                for i in 0..<m where count < n && !keep[i] {
                    keep[i] = true
                    count += 1
                }
                for i in 0..<m where keep[i] {
                    indices.append(UInt8(i))
                    mask[base + i] = true
                }
            }
        }
    }
}

/// Writes a quantized matrix in the storage layout of `quant.packed` (ir-specs/README.md,
/// *Storage layout*): the values section, a bit stream of `bits`-bit two's-complement integers,
/// lowest bits first (for i4 the low nibble first), row after row with no padding, holding every
/// column (dense) or only the kept ones (N:M); then, for N:M, from the next byte on, the index
/// section: each kept value's column within its group in ⌈log2 M⌉ bits, in the same order.
public enum PackedWeightWriter {
    /// The storage bytes of `q` as a weight of `type` (`kept` is required exactly when the type
    /// has an `nm` pattern). The result has `WeightStore.storageByteCount(of: .packed(type))` bytes.
    public static func bytes(of q: GroupQuantized, type: PackedWeightType, kept: NMKeptPositions?) -> [UInt8] {
        let bits = type.bits
        let rows = type.rows, columns = type.columns
        var values = BitStreamWriter(capacity: (rows * type.keptPerRow * bits + 7) / 8)
        precondition((type.nm == nil) == (kept == nil), "N:M kept positions go with an N:M packed type")
        guard let nm = type.nm, let kept else {
            if bits == 4 {
                // Two values a byte, low nibble first; the stream runs on across rows.
                var out = [UInt8](repeating: 0, count: (rows * columns + 1) / 2)
                for (i, v) in q.q.enumerated() {
                    let nibble = UInt8(bitPattern: v) & 0xF
                    out[i >> 1] |= i & 1 == 0 ? nibble : nibble << 4
                }
                return out
            }
            for v in q.q { values.append(Int(v), bits: bits) }
            return values.finish()
        }
        let keptPerRow = type.keptPerRow
        let indexBits = Int.bitWidth - (nm.m - 1).leadingZeroBitCount
        var indexStream = BitStreamWriter(capacity: (rows * keptPerRow * indexBits + 7) / 8)
        for r in 0..<rows {
            for j in 0..<keptPerRow {
                let index = Int(kept.indices[r * keptPerRow + j])
                let column = (j / nm.n) * nm.m + index
                values.append(Int(q.q[r * columns + column]), bits: bits)
                indexStream.append(index, bits: indexBits)
            }
        }
        return values.finish() + indexStream.finish()
    }
}

/// Appends fixed-width fields to a byte string, lowest bits first (bit j of the stream is bit
/// j mod 8 of byte ⌊j / 8⌋); negative values are written in two's complement.
struct BitStreamWriter {
    private var bytes: [UInt8] = []
    private var pending: UInt64 = 0
    private var pendingBits = 0

    init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    /// Appends the low `bits` bits of `value` (1 ≤ bits ≤ 32).
    mutating func append(_ value: Int, bits: Int) {
        pending |= (UInt64(truncatingIfNeeded: value) & ((1 << UInt64(bits)) - 1)) << UInt64(pendingBits)
        pendingBits += bits
        while pendingBits >= 8 {
            bytes.append(UInt8(truncatingIfNeeded: pending))
            pending >>= 8
            pendingBits -= 8
        }
    }

    /// The bytes written, the last one padded with zero bits.
    mutating func finish() -> [UInt8] {
        if pendingBits > 0 {
            bytes.append(UInt8(truncatingIfNeeded: pending))
            pending = 0
            pendingBits = 0
        }
        return bytes
    }
}
