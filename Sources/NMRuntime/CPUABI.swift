/// The contract between the code the CPU backend generates and the runtime that calls it. It is
/// written into `manifest.json` beside `model.so`, so a runtime without LLVM can load and run it.
///
/// Every generated function `nmc_<name>` has the C signature `int32_t nmc_<name>(void **ctx)`,
/// with `ctx` an array of `CPUABI.Slot`s, and returns 0 or a `CPUABI.Status`.
public enum CPUABI {
    /// The slots of the context array a generated function receives.
    public enum Slot: Int, CaseIterable {
        /// `void **`: one pointer per entry of `CPUModuleABI.weights`, in compute layout (float
        /// tensors as f32, integer tensors as i32, packed weights as their storage bytes).
        case weights = 0
        /// `void **`: one pointer per function argument (tensors in compute layout, caches as f32 arrays).
        case arguments
        /// `void **`: one pointer per tensor result, each with room for `ResultABI.boundElements`.
        case results
        /// `void *`: scratch memory of `FunctionABI.arenaBytes`, 64-byte aligned.
        case arena
        /// `int64_t *`: the dynamic dims of the arguments, in argument order then dim order.
        case argumentDims
        /// `void (*)(void *pool, void (*kernel)(void *, int64_t, int64_t), void *args, int64_t n, int64_t grain)`:
        /// runs `kernel(args, begin, end)` over pieces of `0 ..< n` (inline when `n <= grain`).
        case parallelFor
        /// `void *`: the pool handed to `parallelFor`.
        case pool
        /// `int64_t[3]`: on failure, the status code, a detail value and the index of the failing op
        /// in the function body. Kernels set the first two; the caller must zero them.
        case status
        /// `int64_t *`: the generated code writes the dynamic dims of the tensor results here.
        case resultDims
    }

    /// Nonzero return values of a generated function.
    public enum Status: Int32, Sendable {
        case tokenOutOfRange = 1
        case cacheOverflow = 2
        case divisionByZero = 3
        case castOutOfRange = 4
        case sliceOutOfRange = 5

        public func message(detail: Int64) -> String {
            switch self {
            case .tokenOutOfRange: return "token id \(detail) is outside the embedding table"
            case .cacheOverflow: return "positions up to \(detail) do not fit the KV cache"
            case .divisionByZero: return "integer division by zero"
            case .castOutOfRange: return "a value does not fit the cast's target type"
            case .sliceOutOfRange: return "a slice reaches past the axis of \(detail)"
            }
        }
    }
}

/// How a weight reaches the generated code.
public struct WeightABI: Codable, Sendable, Equatable {
    public enum Layout: String, Codable, Sendable {
        /// A float tensor widened to f32.
        case f32
        /// An integer tensor widened to i32.
        case i32
        /// The storage bytes of a packed weight, as `ir-specs/README.md` lays them out.
        case packedBytes = "packed"
        /// A 2:4 INT4 weight's storage bytes with the 16 value nibbles of every 32 columns (one
        /// 8-byte word) reordered for the AVX-512 kernel (`laneNibble`); indices, scales unchanged.
        case packedLaneNibbles = "packed-2:4-lanes"
    }

    /// Where the `o`-th value nibble of a 16-nibble word (a 2:4 block of 32 columns, in storage
    /// order: group g's two kept values at 2g and 2g + 1) goes in `packedLaneNibbles`. The kernel
    /// broadcasts the word to every 64-bit lane and shifts 32-bit lane l right by 4 · ⌊l / 2⌋,
    /// so lane l reads nibble ⌊l / 2⌋ of the word's low half (l even) or high half (l odd); lane
    /// l < 8 must hold group l's first kept value and lane l ≥ 8 group l − 8's second.
    public static func laneNibble(_ o: Int) -> Int {
        let lane = o / 2 + 8 * (o % 2)
        return lane / 2 + 8 * (lane % 2)
    }

    /// Reorders the value nibbles of a 2:4 INT4 weight in place (`valueBytes` = rows · kept / 2, a
    /// multiple of 8) into `packedLaneNibbles`.
    public static func layLaneNibbles(_ bytes: UnsafeMutableRawPointer, valueBytes: Int) {
        let words = bytes.assumingMemoryBound(to: UInt8.self)
        for word in stride(from: 0, to: valueBytes, by: 8) {
            var source: UInt64 = 0, target: UInt64 = 0
            for b in 0..<8 { source |= UInt64(words[word + b]) << (8 * b) }
            for o in 0..<16 { target |= ((source >> (4 * o)) & 0xF) << (4 * laneNibble(o)) }
            for b in 0..<8 { words[word + b] = UInt8(truncatingIfNeeded: target >> (8 * b)) }
        }
    }
    public var name: String
    public var layout: Layout
    public var elements: Int
    public init(name: String, layout: Layout, elements: Int) {
        self.name = name
        self.layout = layout
        self.elements = elements
    }
}

/// One argument or result of a generated function.
public struct TensorABI: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case tensor, cache }
    public var kind: Kind
    /// `f32` or `i32` (the compute layout); caches are f32.
    public var element: String
    /// Static dims, `nil` for a dynamic one.
    public var dims: [Int?]
    /// The most elements the value can have (dynamic dims at their bound).
    public var boundElements: Int
    /// For a cache result: the argument it is (caches are updated in place).
    public var argument: Int?
    public init(kind: Kind, element: String, dims: [Int?], boundElements: Int, argument: Int? = nil) {
        self.kind = kind
        self.element = element
        self.dims = dims
        self.boundElements = boundElements
        self.argument = argument
    }
}

public struct FunctionABI: Codable, Sendable, Equatable {
    public var name: String
    public var symbol: String
    public var arguments: [TensorABI]
    public var results: [TensorABI]
    public var arenaBytes: Int
    /// The bound every dynamic dim was planned for.
    public var dynamicDimBound: Int
    public init(name: String, symbol: String, arguments: [TensorABI], results: [TensorABI], arenaBytes: Int, dynamicDimBound: Int) {
        self.name = name
        self.symbol = symbol
        self.arguments = arguments
        self.results = results
        self.arenaBytes = arenaBytes
        self.dynamicDimBound = dynamicDimBound
    }
}

public struct CPUModuleABI: Codable, Sendable, Equatable {
    public var functions: [FunctionABI]
    public var weights: [WeightABI]
    /// The host CPU and features the code was generated for.
    public var cpu: String
    public var features: String

    public init(functions: [FunctionABI], weights: [WeightABI], cpu: String, features: String) {
        self.functions = functions
        self.weights = weights
        self.cpu = cpu
        self.features = features
    }

    public func function(named name: String) -> FunctionABI? { functions.first { $0.name == name } }
}
