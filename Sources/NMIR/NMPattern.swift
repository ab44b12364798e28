/// An N:M structured-sparsity pattern: in every group of `m` consecutive weights
/// along the input dimension at most `n` are non-zero. Printed `2:4`.
public struct NMPattern: Hashable, Sendable, CustomStringConvertible {
    public let n: Int
    public let m: Int

    /// The patterns NMC supports: 1 ≤ N < M ≤ 16.
    public static func isValid(n: Int, m: Int) -> Bool { n >= 1 && n < m && m <= 16 }

    /// Creates a pattern; fails when `1 ≤ n < m ≤ 16` does not hold.
    public init?(n: Int, m: Int) {
        guard NMPattern.isValid(n: n, m: m) else { return nil }
        self.n = n
        self.m = m
    }

    public var description: String { "\(n):\(m)" }
    /// Fraction of weights kept.
    public var density: Double { Double(n) / Double(m) }
}
