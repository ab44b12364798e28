#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NMIR

/// `int32_t nmc_<function>(void **ctx)`, as the CPU backend generates it.
public typealias CPUFunctionPointer = @convention(c) (UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int32

/// A failure reported by generated code, or a call that does not fit a function's ABI.
public struct CPURuntimeError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// 64-byte aligned memory that lives as long as the object.
public final class AlignedBuffer: @unchecked Sendable {
    public let pointer: UnsafeMutableRawPointer
    public let byteCount: Int

    public init(byteCount: Int) {
        self.byteCount = max(byteCount, 64)
        var raw: UnsafeMutableRawPointer?
        posix_memalign(&raw, 64, self.byteCount)
        pointer = raw!
        memset(pointer, 0, self.byteCount)
    }

    deinit { free(pointer) }

    public func floats(_ count: Int) -> UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: pointer.assumingMemoryBound(to: Float.self), count: count)
    }
}

/// Compiled functions of a module with their weights and working memory: what `nmc run` gets
/// from the JIT and `nmc-run` from `model.so`. Calls go one at a time (the arena and result
/// buffers are reused); the kernels inside a call run on the thread pool.
public final class CPUExecutable: @unchecked Sendable {
    public let abi: CPUModuleABI
    public let pool: ThreadPool
    private let entries: [String: CPUFunctionPointer]
    private let weights: [AlignedBuffer]
    private var weightPointers: [UnsafeMutableRawPointer?]
    private var arenas: [String: AlignedBuffer] = [:]
    private var resultBuffers: [String: [AlignedBuffer]] = [:]
    /// Keeps the code alive: the JIT, or the `dlopen` handle.
    private let owner: AnyObject?

    /// `weightData(name)`: the weight's storage bytes and its NMIR type.
    public init(abi: CPUModuleABI, entries: [String: CPUFunctionPointer], threads: Int, owner: AnyObject?,
                weightData: (String) throws -> (bytes: ArraySlice<UInt8>, type: NMType)) throws {
        self.abi = abi
        self.entries = entries
        self.owner = owner
        pool = ThreadPool(threads: threads)
        var prepared: [AlignedBuffer] = []
        for w in abi.weights {
            let (bytes, type) = try weightData(w.name)
            prepared.append(try bytes.withUnsafeBytes { try Self.prepare(w, bytes: $0, type: type) })
        }
        weights = prepared
        weightPointers = prepared.map { $0.pointer }
        for f in abi.functions {
            guard entries[f.name] != nil else { throw CPURuntimeError("compiled code has no entry for @\(f.name)") }
            arenas[f.name] = AlignedBuffer(byteCount: f.arenaBytes)
            resultBuffers[f.name] = f.results.filter { $0.kind == .tensor }.map { AlignedBuffer(byteCount: $0.boundElements * 4) }
        }
    }

    /// A weight in the layout generated code reads: f32 or i32 elements, or packed bytes padded so
    /// that a kernel may read a few bytes past the last index.
    static func prepare(_ w: WeightABI, bytes: UnsafeRawBufferPointer, type: NMType) throws -> AlignedBuffer {
        switch (w.layout, type) {
        case (.packedBytes, _), (.packedLaneNibbles, _):
            let buffer = AlignedBuffer(byteCount: bytes.count + 64)
            if let base = bytes.baseAddress { buffer.pointer.copyMemory(from: base, byteCount: bytes.count) }
            if w.layout == .packedLaneNibbles {
                guard case .packed(let p) = type, p.bits == 4, p.nm?.m == 4, p.nm?.n == 2, p.columns % 32 == 0 else {
                    throw CPURuntimeError("weight @\(w.name) of type \(type) cannot take the layout \(w.layout.rawValue)")
                }
                WeightABI.layLaneNibbles(buffer.pointer, valueBytes: p.rows * p.keptPerRow / 2)
            }
            return buffer
        case (.f32, .tensor(let t)) where t.dtype == .f32:
            guard bytes.count == w.elements * 4 else { throw CPURuntimeError("weight @\(w.name) has \(bytes.count) bytes, expected \(w.elements * 4)") }
            let buffer = AlignedBuffer(byteCount: bytes.count)
            if let base = bytes.baseAddress { buffer.pointer.copyMemory(from: base, byteCount: bytes.count) }
            return buffer
        case (.f32, .tensor(let t)), (.i32, .tensor(let t)):
            let values = WeightEncoding.decode(bytes, as: t.dtype, count: w.elements)
            guard values.count == w.elements else { throw CPURuntimeError("weight @\(w.name) holds \(values.count) elements, expected \(w.elements)") }
            let buffer = AlignedBuffer(byteCount: w.elements * 4)
            if w.layout == .f32 {
                let out = buffer.pointer.assumingMemoryBound(to: Float.self)
                for (i, v) in values.enumerated() { out[i] = Float(v) }
            } else {
                let out = buffer.pointer.assumingMemoryBound(to: Int32.self)
                for (i, v) in values.enumerated() { out[i] = Int32(clamping: Int64(v)) }
            }
            return buffer
        default:
            throw CPURuntimeError("weight @\(w.name) of type \(type) does not match the compiled layout \(w.layout.rawValue)")
        }
    }

    /// The result of one call: each tensor result's memory (valid until the next call of the same
    /// function) and its dims.
    public struct CallResult {
        public var tensors: [(pointer: UnsafeMutableRawPointer, dims: [Int])]
    }

    /// Calls `function` on `arguments` (pointers in compute layout; caches are updated in place)
    /// with the dynamic dims of the arguments, in order.
    public func call(_ function: String, arguments: [UnsafeMutableRawPointer], dynamicDims: [Int]) throws -> CallResult {
        guard let f = abi.function(named: function), let entry = entries[function], let arena = arenas[function],
              let results = resultBuffers[function] else {
            throw CPURuntimeError("no compiled function @\(function)")
        }
        guard arguments.count == f.arguments.count else {
            throw CPURuntimeError("@\(function) takes \(f.arguments.count) arguments, got \(arguments.count)")
        }
        var expectedDynamic = 0
        for a in f.arguments { expectedDynamic += a.dims.filter { $0 == nil }.count }
        guard dynamicDims.count == expectedDynamic else {
            throw CPURuntimeError("@\(function) has \(expectedDynamic) dynamic argument dims, got \(dynamicDims.count)")
        }
        if let over = dynamicDims.first(where: { $0 < 0 || $0 > f.dynamicDimBound }) {
            throw CPURuntimeError("a dynamic dim of \(over) exceeds the bound of \(f.dynamicDimBound) @\(function) was compiled for")
        }
        var argumentArray: [UnsafeMutableRawPointer?] = arguments
        var resultArray: [UnsafeMutableRawPointer?] = results.map { $0.pointer }
        var dims: [Int64] = dynamicDims.map(Int64.init) + [0]
        var status: [Int64] = [0, 0, 0]
        var resultDims = [Int64](repeating: 0, count: 16)
        let code: Int32 = weightPointers.withUnsafeMutableBufferPointer { weightsPointer in
            argumentArray.withUnsafeMutableBufferPointer { argumentsPointer in
                resultArray.withUnsafeMutableBufferPointer { resultsPointer in
                    dims.withUnsafeMutableBufferPointer { dimsPointer in
                        status.withUnsafeMutableBufferPointer { statusPointer in
                            resultDims.withUnsafeMutableBufferPointer { resultDimsPointer in
                                var context: [UnsafeMutableRawPointer?] = [
                                    UnsafeMutableRawPointer(weightsPointer.baseAddress),
                                    UnsafeMutableRawPointer(argumentsPointer.baseAddress),
                                    UnsafeMutableRawPointer(resultsPointer.baseAddress),
                                    arena.pointer,
                                    UnsafeMutableRawPointer(dimsPointer.baseAddress),
                                    unsafeBitCast(ThreadPool.parallelForEntry, to: UnsafeMutableRawPointer.self),
                                    Unmanaged.passUnretained(pool).toOpaque(),
                                    UnsafeMutableRawPointer(statusPointer.baseAddress),
                                    UnsafeMutableRawPointer(resultDimsPointer.baseAddress),
                                ]
                                return context.withUnsafeMutableBufferPointer { entry($0.baseAddress) }
                            }
                        }
                    }
                }
            }
        }
        if code != 0 {
            let reason = CPUABI.Status(rawValue: code)?.message(detail: status[1]) ?? "status \(code)"
            throw CPURuntimeError("@\(function), op \(status[2]): \(reason)")
        }
        var tensors: [(UnsafeMutableRawPointer, [Int])] = []
        var dimIndex = 0
        for (buffer, r) in zip(results, f.results.filter { $0.kind == .tensor }) {
            let shape = r.dims.map { d -> Int in
                if let d { return d }
                defer { dimIndex += 1 }
                return Int(resultDims[dimIndex])
            }
            tensors.append((buffer.pointer, shape))
        }
        return CallResult(tensors: tensors)
    }
}
