import NMIR

/// A dense tensor as the interpreter holds it: float element types as f32, integer ones as i32
/// (exact for every value NMIR's integer types can hold).
public struct Tensor: Sendable, Equatable {
    public var shape: [Int]
    public var dtype: DType
    /// Elements in row-major order when `dtype` is a float type.
    public var floats: [Float]
    /// Elements in row-major order when `dtype` is an integer type.
    public var ints: [Int32]

    public init(shape: [Int], floats: [Float], dtype: DType = .f32) {
        self.shape = shape
        self.dtype = dtype
        self.floats = floats
        self.ints = []
    }

    public init(shape: [Int], ints: [Int32], dtype: DType = .i32) {
        self.shape = shape
        self.dtype = dtype
        self.floats = []
        self.ints = ints
    }

    public static func scalar(_ v: Int32) -> Tensor { Tensor(shape: [], ints: [v]) }

    public var count: Int { shape.reduce(1, *) }
    public var isFloat: Bool { dtype.isFloat }

    /// Element `i` as a Double, whatever the element type.
    public func element(_ i: Int) -> Double { isFloat ? Double(floats[i]) : Double(ints[i]) }
}

/// The key or value cache of one layer. A reference: `kv.append` writes into it in place, which
/// is the op's functional meaning as long as the old cache value is not used afterwards (the
/// graphs NMC builds thread each cache through once).
public final class KVCache: @unchecked Sendable {
    public let type: KVCacheType
    /// [capacity, heads, headDim], row-major.
    public var storage: [Float]

    public init(type: KVCacheType) {
        self.type = type
        storage = [Float](repeating: 0, count: type.capacity * type.heads * type.headDim)
    }
}

/// A packed quantized weight: its type and storage bytes.
public struct PackedTensor: Sendable {
    public var type: PackedWeightType
    public var bytes: [UInt8]
}

/// Any value a function's arguments, ops and results can hold.
public enum RuntimeValue: Sendable {
    case tensor(Tensor)
    case packed(PackedTensor)
    case kvCache(KVCache)

    public var tensor: Tensor? { if case .tensor(let t) = self { return t } else { return nil } }
}

/// What goes wrong at run time: a value that breaks an op's rules (an id past the vocabulary,
/// a cache overflow), or a weight that cannot be read.
public struct InterpreterError: Error, CustomStringConvertible, Sendable {
    public var location: SourceLocation
    public var message: String

    public init(at location: SourceLocation = .unknown, _ message: String) {
        self.location = location
        self.message = message
    }

    public var description: String { Diagnostic(at: location, message).description }
}
