import CLLVM
import NMIR
import NMRuntime

/// A dim of a value while its function is generated: the LLVM value that holds it at run time,
/// its constant when static, and the largest it can be (what memory is planned for).
struct DimValue {
    let value: LLVMValueRef
    let constant: Int?
    let bound: Int
}

/// A value of the function being generated: where it lives and its shape.
struct CValue {
    enum Kind {
        /// `dtype` is the declared element type; memory holds f32 for float types, i32 for integers.
        case tensor(DType, [DimValue])
        case packed(PackedWeightType)
        case cache(KVCacheType)
    }
    var kind: Kind
    var pointer: LLVMValueRef
    /// The arena buffer the value lives in (aliases share their source's buffer).
    var buffer: Int?

    var dims: [DimValue] { if case .tensor(_, let d) = kind { return d } else { return [] } }
    var dtype: DType { if case .tensor(let t, _) = kind { return t } else { return .f32 } }
    var isFloat: Bool { dtype.isFloat }
}

/// An error in generating code: an op or a shape the CPU backend does not handle.
public struct CodegenError: Error, CustomStringConvertible, Sendable {
    public var location: SourceLocation
    public var message: String
    public init(at location: SourceLocation = .unknown, _ message: String) {
        self.location = location
        self.message = message
    }
    public var description: String { Diagnostic(at: location, "cpu backend: " + message).description }
}

/// Generates `i32 nmc_<name>(ptr ctx)` for one NMIR function: each op becomes a call to a
/// kernel (shared by every op of the same kind and static shape) run through the runtime's
/// `parallelFor`; intermediate tensors live in one arena whose offsets are planned after all ops
/// are emitted, so that buffers whose lifetimes do not overlap share memory.
final class FunctionCodegen {
    let g: IRGen
    let kernels: KernelLibrary
    let function: Function
    let weightIndex: [String: Int]
    let dynamicBound: Int

    private(set) var llvmFunction: LLVMValueRef!
    private var ctx: LLVMValueRef!
    private var values: [String: CValue] = [:]
    /// Arena buffers: size in bytes and live range in op indices.
    private var buffers: [(bytes: Int, first: Int, last: Int)] = []
    private var offsetsGlobal: LLVMValueRef!
    private var slotArray: LLVMValueRef!
    private static let maxSlots = 32
    private var opIndex = 0
    private var returnedNames: Set<String> = []
    private var resultIndexByName: [String: Int] = [:]
    var arguments: [TensorABI] = []
    var results: [TensorABI] = []
    private(set) var arenaBytes = 0
    /// Shared tables (rotary cos/sin) by key, with the buffer holding them.
    var sharedTables: [String: CValue] = [:]

    init(g: IRGen, kernels: KernelLibrary, function: Function, weightIndex: [String: Int], dynamicBound: Int) {
        self.g = g
        self.kernels = kernels
        self.function = function
        self.weightIndex = weightIndex
        self.dynamicBound = dynamicBound
    }

    static func symbol(for name: String) -> String { "nmc_" + name }

    func generate() throws {
        llvmFunction = g.function(Self.symbol(for: function.name), returns: g.i32, [g.ptr])
        offsetsGlobal = LLVMAddGlobal(g.module, LLVMArrayType(g.i64, 0), "nmc_offsets_" + function.name)
        LLVMSetLinkage(offsetsGlobal, LLVMInternalLinkage)
        var failure: Error?
        g.define(llvmFunction) {
            do { try emitBody() } catch { failure = error }
        }
        if let failure { throw failure }
        finishArena()
    }

    private func slot(_ s: CPUABI.Slot) -> LLVMValueRef {
        g.load(g.ptr, ctx, at: g.int(s.rawValue), align: 8)
    }

    private func emitBody() throws {
        ctx = g.param(llvmFunction, 0)
        slotArray = g.alloca(g.i64, count: Self.maxSlots)
        returnedNames = Set(function.returnValues.map(\.name))
        try bindArguments()
        // Tensor results written by an op go straight into the caller's result buffer.
        var tensorResult = 0
        for v in function.returnValues where v.type.tensor != nil {
            if resultIndexByName[v.name] == nil { resultIndexByName[v.name] = tensorResult }
            tensorResult += 1
        }
        for (i, op) in function.body.enumerated() {
            opIndex = i
            try emit(op)
        }
        opIndex = function.body.count
        try emitReturn()
    }

    // MARK: Arguments and results

    private func bindArguments() throws {
        let args = slot(.arguments), argDims = slot(.argumentDims)
        var dynamicIndex = 0
        for (i, arg) in function.arguments.enumerated() {
            let pointer = g.load(g.ptr, args, at: g.int(i), align: 8)
            switch arg.type {
            case .tensor(let t):
                let dims = t.shape.map { d -> DimValue in
                    if let v = d.value { return constant(v) }
                    let v = g.load(g.i64, argDims, at: g.int(dynamicIndex), align: 8)
                    dynamicIndex += 1
                    return DimValue(value: v, constant: nil, bound: dynamicBound)
                }
                values[arg.name] = CValue(kind: .tensor(t.dtype, dims), pointer: pointer)
                arguments.append(TensorABI(kind: .tensor, element: t.dtype.isFloat ? "f32" : "i32", dims: t.shape.map(\.value),
                                           boundElements: dims.reduce(1) { $0 * $1.bound }))
            case .kvCache(let c):
                values[arg.name] = CValue(kind: .cache(c), pointer: pointer)
                arguments.append(TensorABI(kind: .cache, element: "f32", dims: [c.capacity, c.heads, c.headDim],
                                           boundElements: c.capacity * c.heads * c.headDim))
            case .packed:
                throw CodegenError(at: function.location, "@\(function.name): packed weights as arguments are not supported; pass them as weights")
            }
        }
    }

    private func emitReturn() throws {
        let resultsArray = slot(.results), resultDims = slot(.resultDims)
        var tensorIndex = 0, dimIndex = 0
        for v in function.returnValues {
            guard let value = values[v.name] else { throw CodegenError(at: function.returnLocation, "%\(v.name) has no value") }
            switch value.kind {
            case .tensor(let dtype, let dims):
                let destination = g.load(g.ptr, resultsArray, at: g.int(tensorIndex), align: 8)
                let writtenInPlace = producedInPlace.contains(v.name) && resultIndexByName[v.name] == tensorIndex
                if !writtenInPlace {
                    // An alias, an argument, a weight or a second return of the same value: copy it.
                    copy(elements: elementCount(dims), from: value.pointer, to: destination)
                }
                for d in dims where d.constant == nil {
                    g.store(d.value, resultDims, at: g.int(dimIndex), align: 8)
                    dimIndex += 1
                }
                results.append(TensorABI(kind: .tensor, element: dtype.isFloat ? "f32" : "i32", dims: dims.map(\.constant),
                                         boundElements: dims.reduce(1) { $0 * $1.bound }))
                tensorIndex += 1
            case .cache(let c):
                guard let argument = cacheArgument[v.name] else {
                    throw CodegenError(at: function.returnLocation, "returned cache %\(v.name) is not an argument's cache updated by kv.append")
                }
                results.append(TensorABI(kind: .cache, element: "f32", dims: [c.capacity, c.heads, c.headDim],
                                         boundElements: c.capacity * c.heads * c.headDim, argument: argument))
            case .packed:
                throw CodegenError(at: function.returnLocation, "returning a packed weight is not supported")
            }
        }
        g.ret(g.i32(0))
    }

    /// Values written by their op directly into a result buffer.
    private var producedInPlace: Set<String> = []
    /// For each cache value, the argument whose storage it is.
    private var cacheArgument: [String: Int] = [:]

    // MARK: Values, dims, buffers

    func constant(_ v: Int) -> DimValue { DimValue(value: g.int(v), constant: v, bound: v) }

    func value(_ v: Value, in op: Operation) throws -> CValue {
        guard let value = values[v.name] else { throw CodegenError(at: op.location, "%\(v.name) has no value") }
        if let b = value.buffer { buffers[b].last = max(buffers[b].last, opIndex) }
        return value
    }

    func bind(_ v: Value, _ value: CValue) { values[v.name] = value }

    func mul(_ a: DimValue, _ b: DimValue) -> DimValue {
        if let x = a.constant, let y = b.constant { return constant(x * y) }
        return DimValue(value: g.mul(a.value, b.value), constant: nil, bound: a.bound * b.bound)
    }

    func add(_ a: DimValue, _ b: DimValue, bound: Int? = nil) -> DimValue {
        if let x = a.constant, let y = b.constant { return constant(x + y) }
        return DimValue(value: g.add(a.value, b.value), constant: nil, bound: bound ?? (a.bound + b.bound))
    }

    func elementCount(_ dims: [DimValue]) -> DimValue { dims.reduce(constant(1)) { mul($0, $1) } }

    /// A new tensor for `result` with `dims`: in the caller's result buffer when it is returned,
    /// otherwise in the arena.
    func allocate(_ result: Value, dtype: DType, dims: [DimValue]) -> CValue {
        if returnedNames.contains(result.name), let index = resultIndexByName[result.name], !producedInPlace.contains(result.name) {
            producedInPlace.insert(result.name)
            let pointer = g.load(g.ptr, slot(.results), at: g.int(index), align: 8)
            let value = CValue(kind: .tensor(dtype, dims), pointer: pointer)
            values[result.name] = value
            return value
        }
        let bytes = max(dims.reduce(4) { $0 * $1.bound }, 4)
        let value = CValue(kind: .tensor(dtype, dims), pointer: arenaPointer(bytes: bytes), buffer: buffers.count - 1)
        values[result.name] = value
        return value
    }

    /// Scratch memory that stays valid until the op at index `lastUse` (or the function's end).
    func longLivedScratch(bytes: Int) -> (LLVMValueRef, Int) {
        let p = arenaPointer(bytes: max(bytes, 4))
        buffers[buffers.count - 1].last = function.body.count
        return (p, buffers.count - 1)
    }

    private func arenaPointer(bytes: Int) -> LLVMValueRef {
        let index = buffers.count
        buffers.append((bytes: (bytes + 63) / 64 * 64, first: opIndex, last: opIndex))
        let offset = g.load(g.i64, g.gep(g.i64, offsetsGlobal, g.int(index)), align: 8)
        return g.gep(g.i8, slot(.arena), offset)
    }

    /// Places the buffers, largest first, at the lowest offset that overlaps no placed buffer
    /// alive at the same time; then fills in the offsets table the code reads.
    private func finishArena() {
        let order = buffers.indices.sorted { buffers[$0].bytes > buffers[$1].bytes || (buffers[$0].bytes == buffers[$1].bytes && $0 < $1) }
        var offsets = [Int](repeating: 0, count: buffers.count)
        var placed: [Int] = []
        for b in order {
            let live = placed.filter { p in buffers[p].first <= buffers[b].last && buffers[b].first <= buffers[p].last }
                .map { (offsets[$0], offsets[$0] + buffers[$0].bytes) }.sorted { $0.0 < $1.0 }
            var offset = 0
            for (start, end) in live {
                if offset + buffers[b].bytes <= start { break }
                offset = max(offset, end)
            }
            offsets[b] = offset
            placed.append(b)
            arenaBytes = max(arenaBytes, offset + buffers[b].bytes)
        }
        let type = LLVMArrayType(g.i64, UInt32(offsets.count))!
        let table = LLVMAddGlobal(g.module, type, "nmc_offsets_" + function.name + "_table")!
        var constants: [LLVMValueRef?] = offsets.map { g.int($0) }
        LLVMSetInitializer(table, LLVMConstArray(g.i64, &constants, UInt32(constants.count)))
        LLVMSetGlobalConstant(table, 1)
        LLVMSetLinkage(table, LLVMInternalLinkage)
        LLVMReplaceAllUsesWith(offsetsGlobal, table)
        LLVMDeleteGlobal(offsetsGlobal)
    }

    // MARK: Calling kernels

    /// Calls `kernel(slots, begin, end)` over `0 ..< work` through the runtime's parallelFor;
    /// `grain` is the least work worth a thread.
    func run(_ kernel: LLVMValueRef, slots: [LLVMValueRef], work: LLVMValueRef, grain: Int) {
        precondition(slots.count <= Self.maxSlots, "a kernel takes at most \(Self.maxSlots) slots")
        for (i, s) in slots.enumerated() {
            let kind = LLVMGetTypeKind(LLVMTypeOf(s))
            let stored = kind == LLVMPointerTypeKind || kind == LLVMIntegerTypeKind && LLVMGetIntTypeWidth(LLVMTypeOf(s)) == 64
                ? s : g.sext(s, g.i64)
            g.store(stored, slotArray, at: g.int(i), align: 8)
        }
        let parallelType = g.functionType(returns: g.void, [g.ptr, g.ptr, g.ptr, g.i64, g.i64])
        var args: [LLVMValueRef?] = [slot(.pool), kernel, slotArray, work, g.int(grain)]
        LLVMBuildCall2(g.builder, parallelType, slot(.parallelFor), &args, 5, "")
    }

    /// Returns the status a kernel stored (with the op's index) when it is not zero.
    func checkStatus() {
        let statusArray = slot(.status)
        let code = g.load(g.i64, statusArray, at: g.int(0), align: 8)
        let failBlock = g.block("failed"), ok = g.block("ok")
        LLVMBuildCondBr(g.builder, g.icmp(LLVMIntNE, code, g.int(0)), failBlock, ok)
        LLVMPositionBuilderAtEnd(g.builder, failBlock)
        g.store(g.int(opIndex), statusArray, at: g.int(2), align: 8)
        g.ret(g.trunc(code, g.i32))
        LLVMPositionBuilderAtEnd(g.builder, ok)
    }

    /// Fails the function with `status` and `detail` when `condition` holds.
    func fail(when condition: LLVMValueRef, _ status: CPUABI.Status, detail: LLVMValueRef) {
        let statusArray = slot(.status)
        let failBlock = g.block("fail"), ok = g.block("ok")
        LLVMBuildCondBr(g.builder, condition, failBlock, ok)
        LLVMPositionBuilderAtEnd(g.builder, failBlock)
        g.store(g.int(Int(status.rawValue)), statusArray, at: g.int(0), align: 8)
        g.store(detail, statusArray, at: g.int(1), align: 8)
        g.store(g.int(opIndex), statusArray, at: g.int(2), align: 8)
        g.ret(g.i32(Int(status.rawValue)))
        LLVMPositionBuilderAtEnd(g.builder, ok)
    }

    var statusPointer: LLVMValueRef { slot(.status) }

    func copy(elements: DimValue, from source: LLVMValueRef, to destination: LLVMValueRef) {
        let kernel = kernels.copy()
        run(kernel, slots: [destination, source], work: elements.value, grain: 1 << 16)
    }

    func markCache(_ name: String, argumentOf source: String) {
        if let a = cacheArgument[source] { cacheArgument[name] = a; return }
        if let i = function.arguments.firstIndex(where: { $0.name == source }) { cacheArgument[name] = i }
    }

    func weightPointer(_ name: String, at location: SourceLocation) throws -> LLVMValueRef {
        guard let index = weightIndex[name] else { throw CodegenError(at: location, "unknown weight @\(name)") }
        return g.load(g.ptr, slot(.weights), at: g.int(index), align: 8)
    }
}
