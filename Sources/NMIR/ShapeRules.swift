/// Checks shared by the op type rules.
enum ShapeRules {
    static func requireRank(_ t: TensorType, _ rank: Int, _ what: String) throws(OpError) {
        guard t.rank == rank else { throw OpError("\(what) must have rank \(rank), got \(t)") }
    }

    static func requireMinRank(_ t: TensorType, _ rank: Int, _ what: String) throws(OpError) {
        guard t.rank >= rank else { throw OpError("\(what) must have rank ≥ \(rank), got \(t)") }
    }

    static func requireFloat(_ t: TensorType, _ what: String) throws(OpError) {
        guard t.dtype.isFloat else { throw OpError("\(what) must have a float element type, got \(t)") }
    }

    static func requireDType(_ t: TensorType, _ dtype: DType, _ what: String) throws(OpError) {
        guard t.dtype == dtype else { throw OpError("\(what) must have element type \(dtype), got \(t)") }
    }

    /// Two dims that must be the same size; returns the more precise one.
    static func match(_ a: Dim, _ b: Dim, _ what: String) throws(OpError) -> Dim {
        guard a.isCompatible(with: b) else { throw OpError("\(what): \(a) does not match \(b)") }
        return a.refined(by: b)
    }

    /// NumPy-style broadcasting of two shapes aligned at their last dim.
    static func broadcast(_ a: [Dim], _ b: [Dim]) throws(OpError) -> [Dim] {
        let rank = max(a.count, b.count)
        var out: [Dim] = []
        for i in 0..<rank {
            let x = i < rank - a.count ? Dim.known(1) : a[i - (rank - a.count)]
            let y = i < rank - b.count ? Dim.known(1) : b[i - (rank - b.count)]
            switch (x, y) {
            case (.known(1), _): out.append(y)
            case (_, .known(1)): out.append(x)
            case (.known(let p), .known(let q)):
                guard p == q else {
                    throw OpError("shapes \(a.map(\.description).joined(separator: "x")) and \(b.map(\.description).joined(separator: "x")) cannot be broadcast together")
                }
                out.append(x)
            case (.dynamic, _): out.append(y == .dynamic ? .dynamic : y)
            case (_, .dynamic): out.append(x)
            }
        }
        return out
    }

    /// An axis attribute (negative counts from the end) checked against a rank.
    static func normalizedAxis(_ axis: Int, rank: Int) throws(OpError) -> Int {
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0, a < rank else { throw OpError("axis \(axis) is out of range for rank \(rank)") }
        return a
    }

    /// A dim a type rule computes, kept within what the parser accepts so results print and read back.
    static func bounded(_ v: Int, _ what: String) throws(OpError) -> Dim {
        guard v >= 0, v <= Parser.maxDimension else { throw OpError("\(what) \(v) is out of range (at most \(Parser.maxDimension))") }
        return .known(v)
    }

    static func scalar(_ t: TensorType, _ what: String) throws(OpError) {
        guard t.rank == 0, t.dtype == .i32 else { throw OpError("\(what) must be a scalar tensor<i32>, got \(t)") }
    }
}
