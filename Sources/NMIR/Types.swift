/// One dimension of a tensor shape: a known size or `?`.
public enum Dim: Hashable, Sendable, CustomStringConvertible {
    case known(Int)
    case dynamic

    public var value: Int? { if case .known(let v) = self { return v } else { return nil } }
    public var description: String { value.map(String.init) ?? "?" }

    /// Two dims are compatible when they are equal or either is dynamic.
    public func isCompatible(with other: Dim) -> Bool {
        switch (self, other) {
        case (.known(let a), .known(let b)): return a == b
        default: return true
        }
    }

    /// The more precise of two compatible dims.
    public func refined(by other: Dim) -> Dim { self == .dynamic ? other : self }
}

/// `tensor<?x576xf32>` or, for a weight whose zeros follow a pattern, `tensor<576x1536xf32, nm = 2:4>`.
public struct TensorType: Hashable, Sendable, CustomStringConvertible {
    public var shape: [Dim]
    public var dtype: DType
    /// The N:M sparsity that the values are known to satisfy along the last dimension.
    public var nm: NMPattern?

    public init(shape: [Dim], dtype: DType, nm: NMPattern? = nil) {
        self.shape = shape
        self.dtype = dtype
        self.nm = nm
    }

    public init(_ dims: [Int?], _ dtype: DType, nm: NMPattern? = nil) {
        self.init(shape: dims.map { $0.map(Dim.known) ?? .dynamic }, dtype: dtype, nm: nm)
    }

    public var rank: Int { shape.count }
    public var isStatic: Bool { shape.allSatisfy { $0.value != nil } }
    /// Number of elements when every dim is known (and the product does not overflow).
    public var elementCount: Int? {
        var count = 1
        for d in shape {
            guard let v = d.value else { return nil }
            let (p, overflow) = count.multipliedReportingOverflow(by: v)
            if overflow { return nil }
            count = p
        }
        return count
    }

    public var description: String {
        let dims = shape.map { "\($0)x" }.joined()
        return "tensor<\(dims)\(dtype)\(nm.map { ", nm = \($0)" } ?? "")>"
    }
}

/// A weight matrix stored packed in low-bit integers: logical shape `[out, in]`,
/// values of `bits` bits in groups of `group` along `in`, one scale of `scale`
/// dtype per group (and a zero point per group when `zeroPoint`), and, when `nm`
/// is set, only the N kept values of every M stored together with their indices.
/// Printed `quant.packed<1536x576xi4, group = 128, scale = f16, zero_point = false, nm = 2:4>`.
public struct PackedWeightType: Hashable, Sendable, CustomStringConvertible {
    public var rows: Int
    public var columns: Int
    public var storage: DType
    public var group: Int
    public var scale: DType
    public var zeroPoint: Bool
    public var nm: NMPattern?

    public init(rows: Int, columns: Int, storage: DType = .i4, group: Int, scale: DType = .f16,
                zeroPoint: Bool = false, nm: NMPattern? = nil) {
        self.rows = rows
        self.columns = columns
        self.storage = storage
        self.group = group
        self.scale = scale
        self.zeroPoint = zeroPoint
        self.nm = nm
    }

    public var bits: Int { storage.bitWidth }
    /// Values stored per row: all columns, or N of every M with an N:M pattern.
    public var keptPerRow: Int { nm.map { columns / $0.m * $0.n } ?? columns }

    /// Why this type is not a valid packed weight, or nil when it is: storage i4 or i8, positive
    /// dims and group, a float scale type, and with N:M an input dim that is a multiple of M.
    public var invalidReason: String? {
        if storage != .i4 && storage != .i8 { return "packed storage must be i4 or i8, got \(storage)" }
        if rows <= 0 || columns <= 0 { return "packed weight dims must be positive" }
        if group <= 0 { return "group must be positive" }
        if !scale.isFloat { return "scale type must be a float type, got \(scale)" }
        if let nm, columns % nm.m != 0 { return "input dim \(columns) is not a multiple of M = \(nm.m)" }
        return nil
    }
    /// Groups per row: scales (and zero points) have shape `[rows, groupsPerRow]`.
    public var groupsPerRow: Int { (columns + group - 1) / group }
    public var scaleType: TensorType { TensorType([rows, groupsPerRow], scale) }
    public var zeroPointType: TensorType { TensorType([rows, groupsPerRow], .i8) }
    /// The dequantized matrix.
    public var dequantizedType: TensorType { TensorType([rows, columns], .f32, nm: nm) }

    public var description: String {
        "quant.packed<\(rows)x\(columns)x\(storage), group = \(group), scale = \(scale), zero_point = \(zeroPoint)"
            + (nm.map { ", nm = \($0)" } ?? "") + ">"
    }
}

/// The key or value cache of one attention layer: `kv.cache<2048x3x64xf32>` holds up to
/// 2048 positions of 3 heads of 64 values.
public struct KVCacheType: Hashable, Sendable, CustomStringConvertible {
    public var capacity: Int
    public var heads: Int
    public var headDim: Int
    public var dtype: DType

    public init(capacity: Int, heads: Int, headDim: Int, dtype: DType = .f32) {
        self.capacity = capacity
        self.heads = heads
        self.headDim = headDim
        self.dtype = dtype
    }

    public var description: String { "kv.cache<\(capacity)x\(heads)x\(headDim)x\(dtype)>" }
}

/// Every type an NMIR value can have.
public enum NMType: Hashable, Sendable, CustomStringConvertible {
    case tensor(TensorType)
    case packed(PackedWeightType)
    case kvCache(KVCacheType)

    public var description: String {
        switch self {
        case .tensor(let t): return t.description
        case .packed(let p): return p.description
        case .kvCache(let k): return k.description
        }
    }

    public var tensor: TensorType? { if case .tensor(let t) = self { return t } else { return nil } }
    public var packed: PackedWeightType? { if case .packed(let p) = self { return p } else { return nil } }
    public var kvCache: KVCacheType? { if case .kvCache(let k) = self { return k } else { return nil } }

    /// Same kind and element type, and every dim compatible.
    public func isCompatible(with other: NMType) -> Bool {
        switch (self, other) {
        case (.tensor(let a), .tensor(let b)):
            return a.dtype == b.dtype && a.nm == b.nm && a.rank == b.rank
                && zip(a.shape, b.shape).allSatisfy { $0.isCompatible(with: $1) }
        default:
            return self == other
        }
    }

    /// `self` with dynamic dims replaced by `other`'s known ones (the two must be compatible).
    public func refined(by other: NMType) -> NMType {
        guard case .tensor(var a) = self, case .tensor(let b) = other, a.rank == b.rank else { return self }
        a.shape = zip(a.shape, b.shape).map { $0.refined(by: $1) }
        return .tensor(a)
    }
}
