import NMIR

/// A `quant.packed<RxCxi4, group = G, scale = f16, zero_point = false[, nm = 2:4]>` weight in
/// host memory, read from (and written to) the storage bytes of ir-specs/README.md § Storage
/// layout, with the dequantization of ir-specs/quant.md. It is what the PTX kernels' weight
/// re-layout starts from, and the host reference the GPU results are checked against.
public struct PackedINT4Weight: Sendable {
    public let rows: Int
    public let columns: Int
    public let group: Int
    /// true for `nm = 2:4` (the only N:M the tensor cores take), false for dense storage.
    public let sparse24: Bool
    /// The stored values, row-major: `columns` per row, or `columns / 2` kept ones with 2:4.
    public let values: [Int8]
    /// With 2:4: each stored value's column within its group of 4 (increasing within a group).
    public let indices: [UInt8]
    /// f16 bit patterns, `[rows, groups]`.
    public let scaleBits: [UInt16]

    public var keptPerRow: Int { sparse24 ? columns / 2 : columns }
    public var groups: Int { (columns + group - 1) / group }

    public init(rows: Int, columns: Int, group: Int, sparse24: Bool, values: [Int8], indices: [UInt8], scaleBits: [UInt16]) throws {
        guard rows > 0, columns > 0, group > 0 else { throw PTXError("packed weight \(rows)x\(columns), group \(group): sizes must be positive") }
        guard !sparse24 || columns % 4 == 0 else { throw PTXError("2:4 weight with \(columns) columns: not a multiple of 4") }
        self.rows = rows; self.columns = columns; self.group = group; self.sparse24 = sparse24
        self.values = values; self.indices = indices; self.scaleBits = scaleBits
        guard values.count == rows * keptPerRow, values.allSatisfy({ (-8...7).contains($0) }) else {
            throw PTXError("packed weight: expected \(rows * keptPerRow) values in -8…7, got \(values.count)")
        }
        guard !sparse24 || indices.count == values.count else { throw PTXError("2:4 weight: \(indices.count) indices for \(values.count) values") }
        if sparse24 {
            for j in stride(from: 0, to: indices.count, by: 2) where !(indices[j] < indices[j + 1] && indices[j + 1] < 4) {
                throw PTXError("2:4 weight: group \(j / 2) has indices \(indices[j]), \(indices[j + 1]) (want two distinct, increasing, < 4)")
            }
        }
        guard scaleBits.count == rows * groups else { throw PTXError("packed weight: expected \(rows * groups) scales, got \(scaleBits.count)") }
    }

    /// Reads the storage bytes (values section, then for 2:4 the 2-bit index section).
    public init(storage: [UInt8], rows: Int, columns: Int, group: Int, sparse24: Bool, scaleBits: [UInt16]) throws {
        let kept = rows * (sparse24 ? columns / 2 : columns)
        let valueBytes = (kept * 4 + 7) / 8
        let indexBytes = sparse24 ? (kept * 2 + 7) / 8 : 0
        guard storage.count == valueBytes + indexBytes else {
            throw PTXError("packed weight \(rows)x\(columns)\(sparse24 ? " 2:4" : ""): \(storage.count) bytes, expected \(valueBytes + indexBytes)")
        }
        var values = [Int8](repeating: 0, count: kept)
        for i in 0..<kept {
            let nibble = (storage[i / 2] >> (4 * UInt8(i % 2))) & 0xF
            values[i] = Int8(bitPattern: nibble << 4) >> 4
        }
        var indices: [UInt8] = []
        if sparse24 {
            indices = (0..<kept).map { i in (storage[valueBytes + i / 4] >> (2 * UInt8(i % 4))) & 3 }
        }
        try self.init(rows: rows, columns: columns, group: group, sparse24: sparse24, values: values, indices: indices, scaleBits: scaleBits)
    }

    /// The storage bytes of ir-specs/README.md § Storage layout.
    public var storage: [UInt8] {
        var bytes = [UInt8](repeating: 0, count: (values.count * 4 + 7) / 8)
        for (i, v) in values.enumerated() { bytes[i / 2] |= (UInt8(bitPattern: v) & 0xF) << (4 * UInt8(i % 2)) }
        if sparse24 {
            var idx = [UInt8](repeating: 0, count: (indices.count * 2 + 7) / 8)
            for (i, v) in indices.enumerated() { idx[i / 4] |= v << (2 * UInt8(i % 4)) }
            bytes += idx
        }
        return bytes
    }

    public func scale(row: Int, group g: Int) -> Float { Float(Float16(bitPattern: scaleBits[row * groups + g])) }

    /// Row `r` dequantized: `w[r, c] = q[r, c] · scale[r, ⌊c / G⌋]`, 0 where 2:4 drops a column.
    public func dequantizedRow(_ r: Int) -> [Double] {
        var w = [Double](repeating: 0, count: columns)
        let k = keptPerRow
        for j in 0..<k {
            let c = sparse24 ? (j / 2) * 4 + Int(indices[r * k + j]) : j
            w[c] = Double(values[r * k + j]) * Double(scale(row: r, group: c / group))
        }
        return w
    }

    /// The value `quant.linear` defines for the given tokens: `y[m, r] = Σ_c x[m, c] · w[r, c]`,
    /// in Double, with `x` given as f16 bit patterns `[tokens, columns]`.
    public func referenceLinear(x: [UInt16], tokens: [Int]) -> [[Double]] {
        let xs = tokens.map { m in (0..<columns).map { Double(Float(Float16(bitPattern: x[m * columns + $0]))) } }
        var y = [[Double]](repeating: [Double](repeating: 0, count: rows), count: tokens.count)
        for r in 0..<rows {
            let w = dequantizedRow(r)
            for (i, xr) in xs.enumerated() {
                var s = 0.0
                for c in 0..<columns { s += xr[c] * w[c] }
                y[i][r] = s
            }
        }
        return y
    }

    /// A weight with uniformly random values in −8…7, for 2:4 two random kept columns per group
    /// (each of the six pairs alike), and f16 scales in [0.002, 0.02] (the range int4
    /// quantization gives LLaMA weights). Each 64-bit draw of `rng` gives 16 values (a nibble
    /// each) or up to 21 pair choices (3 bits each, 6 and 7 redrawn), so that a 4096×11008
    /// weight takes a fraction of a second. (Called from another module the generic `rng` is not
    /// specialized; drawing one value at a time, a 4096×11008 weight took 11 s.)
    public static func random<G: RandomNumberGenerator>(rows: Int, columns: Int, group: Int, sparse24: Bool,
                                                        using rng: inout G) throws -> PackedINT4Weight {
        let kept = rows * (sparse24 ? columns / 2 : columns)
        var values = [Int8](repeating: 0, count: kept)
        var word: UInt64 = 0
        for i in 0..<kept {
            if i % 16 == 0 { word = rng.next() }
            values[i] = Int8(truncatingIfNeeded: word & 0xF) - 8
            word >>= 4
        }
        var indices: [UInt8] = []
        if sparse24 {
            let pairs: [(UInt8, UInt8)] = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
            indices.reserveCapacity(kept)
            var bits = 0
            for _ in 0..<(kept / 2) {
                var choice = 6
                while choice >= 6 {
                    if bits < 3 { word = rng.next(); bits = 63 }
                    choice = Int(word & 7); word >>= 3; bits -= 3
                }
                let p = pairs[choice]
                indices.append(p.0); indices.append(p.1)
            }
        }
        let groups = (columns + group - 1) / group
        let scales = (0..<(rows * groups)).map { _ in Float16(Float.random(in: 0.002...0.02, using: &rng)).bitPattern }
        return try PackedINT4Weight(rows: rows, columns: columns, group: group, sparse24: sparse24,
                                    values: values, indices: indices, scaleBits: scales)
    }
}

/// A PTX backend error: bad input or an unsupported shape, with the reason.
public struct PTXError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}
