/// Element types of NMIR tensors.
public enum DType: String, CaseIterable, Sendable, Hashable {
    case f32, f16, bf16, i32, i8, i4, index

    /// Bits one element occupies in storage.
    public var bitWidth: Int {
        switch self {
        case .f32, .i32: return 32
        case .f16, .bf16: return 16
        case .i8: return 8
        case .i4: return 4
        case .index: return 64
        }
    }

    public var isFloat: Bool { self == .f32 || self == .f16 || self == .bf16 }
    public var isInteger: Bool { !isFloat }
}
