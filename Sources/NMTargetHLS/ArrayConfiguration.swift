import NMIR

/// An error in the HLS backend's input (a configuration, a layer it cannot map); the tools print
/// the message and exit 1.
public struct HLSError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The weight pattern one processing element (PE) handles: N multipliers, each fed one of M
/// activations through an M-to-1 multiplexer by a stored index. Dense is N:N: the same N
/// multipliers, each wired to one activation, no indices.
public struct PEPattern: Hashable, Sendable, CustomStringConvertible {
    public let n: Int
    public let m: Int

    public init(n: Int, m: Int) throws(HLSError) {
        guard n >= 1, m >= n, m <= 16 else { throw HLSError("PE pattern \(n):\(m) needs 1 ≤ N ≤ M ≤ 16") }
        self.n = n
        self.m = m
    }

    /// The PE of a weight with this N:M (or dense with `lanes` multipliers).
    public init(_ nm: NMPattern?, denseLanes: Int) throws(HLSError) {
        if let nm { try self.init(n: nm.n, m: nm.m) } else { try self.init(n: denseLanes, m: denseLanes) }
    }

    public var isDense: Bool { n == m }
    /// The dense PE with the same multipliers: the baseline a pattern is compared with.
    public var denseBaseline: PEPattern { isDense ? self : (try? PEPattern(n: n, m: n)) ?? self }
    /// Bits of a stored index: ⌈log2 M⌉, 0 for dense.
    public var indexBits: Int { isDense ? 0 : Int.bitWidth - (m - 1).leadingZeroBitCount }
    /// Bits one PE's weights take in the packed stream: N INT4 values and N indices.
    public var slotBits: Int { n * (4 + indexBits) }
    public var description: String { isDense ? "dense(\(n) mult)" : "\(n):\(m)" }
    /// How the pattern is written on the command line and in reports.
    public var name: String { isDense ? "dense(\(n))" : "\(n):\(m)" }
}

/// The PE grid: `rows` output rows at a time, `cols` PE columns along the input dimension.
public struct ArrayShape: Hashable, Sendable, CustomStringConvertible {
    public let rows: Int
    public let cols: Int

    public init(rows: Int, cols: Int) throws(HLSError) {
        guard (1...256).contains(rows), (1...256).contains(cols) else {
            throw HLSError("array \(rows)x\(cols): rows and columns must be from 1 to 256")
        }
        self.rows = rows
        self.cols = cols
    }

    /// Parses `32x32` (rows x cols).
    public init(parsing text: String) throws(HLSError) {
        let parts = text.lowercased().split(separator: "x")
        guard parts.count == 2, let r = Int(parts[0]), let c = Int(parts[1]) else {
            throw HLSError("--array '\(text)' is not ROWSxCOLS (like 32x32)")
        }
        try self.init(rows: r, cols: c)
    }

    public var description: String { "\(rows)x\(cols)" }
}

/// One linear layer as the array sees it: `rows` outputs, `columns` inputs, weight groups of
/// `group` columns (one scale each), for `tokens` tokens at once.
public struct LayerShape: Hashable, Sendable, CustomStringConvertible {
    public var rows: Int
    public var columns: Int
    public var group: Int
    public var tokens: Int

    public init(rows: Int, columns: Int, group: Int, tokens: Int) {
        self.rows = rows
        self.columns = columns
        self.group = group
        self.tokens = tokens
    }

    public var description: String { "\(rows)x\(columns)" }
}
