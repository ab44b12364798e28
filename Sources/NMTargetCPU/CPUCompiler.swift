import CLLVM
import Foundation
import NMIR
import NMRuntime

public struct CPUCompileOptions: Sendable {
    /// The largest value a dynamic dim may take; nil: the functions' KV-cache capacity.
    public var dynamicDimBound: Int?
    /// `default<O3>` unless changed (tests of the emitted IR use `default<O0>`).
    public var passPipeline = "default<O3>"
    public init(dynamicDimBound: Int? = nil) { self.dynamicDimBound = dynamicDimBound }
}

/// NMIR → LLVM IR for the host CPU: one `nmc_<function>` per function, kernels shared between
/// them, optimized by LLVM's new pass manager. The result is JIT-compiled (`jit()`) or written
/// as an object and linked into a shared library (`writeObject`, `SharedLibraryLinker`).
public final class CPUCompiler {
    public let abi: CPUModuleABI
    let g: IRGen
    private let targetMachine: LLVMTargetMachineRef
    /// The module's IR as generated, before optimization.
    public let unoptimizedIR: String
    private let threadSafeContext: LLVMOrcThreadSafeContextRef
    /// Names of the kernels in the module.
    public let kernelNames: [String]

    public init(module: Module, options: CPUCompileOptions = CPUCompileOptions()) throws {
        Self.initializeTarget()
        threadSafeContext = LLVMOrcCreateNewThreadSafeContext()
        g = IRGen(moduleName: "nmc", context: LLVMOrcThreadSafeContextGetContext(threadSafeContext))
        let host = HostTarget()
        targetMachine = try host.makeTargetMachine()
        LLVMSetTarget(g.module, host.triple)
        let layout = LLVMCreateTargetDataLayout(targetMachine)
        LLVMSetModuleDataLayout(g.module, layout)
        LLVMDisposeTargetData(layout)

        let kernels = KernelLibrary(g: g, avx512: host.features.contains("+avx512f") && host.features.contains("+avx512bw"))
        var weightIndex: [String: Int] = [:]
        var weights: [WeightABI] = []
        for entry in module.weights.entries {
            weightIndex[entry.name] = weights.count
            switch entry.type {
            case .tensor(let t):
                weights.append(WeightABI(name: entry.name, layout: t.dtype.isFloat ? .f32 : .i32, elements: t.elementCount ?? 0))
            case .packed(let p):
                weights.append(WeightABI(name: entry.name, layout: kernels.usesLaneNibbles(p) ? .packedLaneNibbles : .packedBytes,
                                         elements: WeightStore.storageByteCount(of: .packed(p)) ?? 0))
            case .kvCache:
                continue
            }
        }
        let bound = options.dynamicDimBound ?? Self.cacheCapacity(of: module) ?? 1
        var functions: [FunctionABI] = []
        for function in module.functions {
            let codegen = FunctionCodegen(g: g, kernels: kernels, function: function, weightIndex: weightIndex, dynamicBound: bound)
            try codegen.generate()
            functions.append(FunctionABI(name: function.name, symbol: FunctionCodegen.symbol(for: function.name),
                                         arguments: codegen.arguments, results: codegen.results,
                                         arenaBytes: codegen.arenaBytes, dynamicDimBound: bound))
        }
        kernelNames = kernels.names
        abi = CPUModuleABI(functions: functions, weights: weights, cpu: host.cpu, features: host.features)
        host.annotate(g)
        unoptimizedIR = g.text
        var message: UnsafeMutablePointer<CChar>?
        if LLVMVerifyModule(g.module, LLVMReturnStatusAction, &message) != 0 {
            let text = message.map { String(cString: $0) } ?? "unknown"
            LLVMDisposeMessage(message)
            throw CodegenError("generated LLVM IR does not verify: \(text.prefix(2000))")
        }
        LLVMDisposeMessage(message)
        try optimize(options.passPipeline)
    }

    deinit {
        LLVMDisposeTargetMachine(targetMachine)
    }

    /// The module's IR now (after optimization).
    public var optimizedIR: String { g.text }

    private func optimize(_ pipeline: String) throws {
        let options = LLVMCreatePassBuilderOptions()
        defer { LLVMDisposePassBuilderOptions(options) }
        LLVMPassBuilderOptionsSetLoopVectorization(options, 1)
        LLVMPassBuilderOptionsSetSLPVectorization(options, 1)
        LLVMPassBuilderOptionsSetLoopUnrolling(options, 1)
        if let error = LLVMRunPasses(g.module, pipeline, targetMachine, options) {
            throw CodegenError("LLVM passes '\(pipeline)' failed: \(Self.consume(error))")
        }
    }

    static func consume(_ error: LLVMErrorRef) -> String {
        guard let raw = LLVMGetErrorMessage(error) else { return "unknown error" }
        defer { LLVMDisposeErrorMessage(raw) }
        return String(cString: raw)
    }

    private static func cacheCapacity(of module: Module) -> Int? {
        module.functions.flatMap(\.arguments).compactMap { $0.type.kvCache?.capacity }.max()
    }

    private static let initialized: Bool = {
        LLVMInitializeX86TargetInfo()
        LLVMInitializeX86Target()
        LLVMInitializeX86TargetMC()
        LLVMInitializeX86AsmPrinter()
        LLVMInitializeX86AsmParser()
        return true
    }()

    static func initializeTarget() { _ = initialized }

    // MARK: Outputs

    /// Writes the optimized module as a native object file.
    public func writeObject(to path: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        let failed = path.withCString { p in
            LLVMTargetMachineEmitToFile(targetMachine, g.module, p, LLVMObjectFile, &message)
        }
        if failed != 0 {
            let text = message.map { String(cString: $0) } ?? "unknown"
            LLVMDisposeMessage(message)
            throw CodegenError("cannot write object file '\(path)': \(text)")
        }
    }

    /// Compiles the module in memory with ORC's LLJIT and returns the entry points by function
    /// name. The compiler can no longer be used afterwards (the JIT owns the module).
    public func jit() throws -> JITModule {
        var builderTM: LLVMOrcJITTargetMachineBuilderRef?
        if let error = LLVMOrcJITTargetMachineBuilderDetectHost(&builderTM) { throw CodegenError("JIT: \(Self.consume(error))") }
        let builder = LLVMOrcCreateLLJITBuilder()
        LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder, builderTM)
        var jit: LLVMOrcLLJITRef?
        if let error = LLVMOrcCreateLLJIT(&jit, builder) { throw CodegenError("JIT: \(Self.consume(error))") }
        guard let jit else { throw CodegenError("JIT: no instance") }
        var generator: LLVMOrcDefinitionGeneratorRef?
        if let error = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&generator, LLVMOrcLLJITGetGlobalPrefix(jit), nil, nil) {
            throw CodegenError("JIT: \(Self.consume(error))")
        }
        let dylib = LLVMOrcLLJITGetMainJITDylib(jit)
        LLVMOrcJITDylibAddGenerator(dylib, generator)
        let module = LLVMOrcCreateNewThreadSafeModule(g.module, threadSafeContext)
        g.ownsModule = false
        if let error = LLVMOrcLLJITAddLLVMIRModule(jit, dylib, module) { throw CodegenError("JIT: \(Self.consume(error))") }
        var entries: [String: CPUFunctionPointer] = [:]
        for function in abi.functions {
            var address: LLVMOrcExecutorAddress = 0
            if let error = LLVMOrcLLJITLookup(jit, &address, function.symbol) { throw CodegenError("JIT: \(Self.consume(error))") }
            guard let raw = UnsafeRawPointer(bitPattern: UInt(address)) else { throw CodegenError("JIT: \(function.symbol) has no address") }
            entries[function.name] = unsafeBitCast(raw, to: CPUFunctionPointer.self)
        }
        return JITModule(jit: jit, context: threadSafeContext, entries: entries)
    }
}

/// The JIT holding compiled code; the entry points are valid while it lives.
public final class JITModule: @unchecked Sendable {
    private let jit: LLVMOrcLLJITRef
    private let context: LLVMOrcThreadSafeContextRef
    public let entries: [String: CPUFunctionPointer]

    init(jit: LLVMOrcLLJITRef, context: LLVMOrcThreadSafeContextRef, entries: [String: CPUFunctionPointer]) {
        self.jit = jit
        self.context = context
        self.entries = entries
    }

    deinit {
        _ = LLVMOrcDisposeLLJIT(jit)
        LLVMOrcDisposeThreadSafeContext(context)
    }
}

/// The host as LLVM sees it: triple, CPU name and features.
struct HostTarget {
    let triple: String
    let cpu: String
    let features: String

    init() {
        func take(_ raw: UnsafeMutablePointer<CChar>?) -> String {
            guard let raw else { return "" }
            defer { LLVMDisposeMessage(raw) }
            return String(cString: raw)
        }
        triple = take(LLVMGetDefaultTargetTriple())
        cpu = take(LLVMGetHostCPUName())
        features = take(LLVMGetHostCPUFeatures())
    }

    func makeTargetMachine() throws -> LLVMTargetMachineRef {
        var target: LLVMTargetRef?
        var message: UnsafeMutablePointer<CChar>?
        if LLVMGetTargetFromTriple(triple, &target, &message) != 0 {
            let text = message.map { String(cString: $0) } ?? ""
            LLVMDisposeMessage(message)
            throw CodegenError("no LLVM target for \(triple): \(text)")
        }
        guard let machine = LLVMCreateTargetMachine(target, triple, cpu, features, LLVMCodeGenLevelAggressive, LLVMRelocPIC, LLVMCodeModelDefault) else {
            throw CodegenError("cannot create a target machine for \(cpu)")
        }
        return machine
    }

    /// Marks every defined function with the host CPU so the optimizer and code generator use all
    /// of it, 512-bit vectors included.
    func annotate(_ g: IRGen) {
        var f = LLVMGetFirstFunction(g.module)
        while let function = f {
            if LLVMCountBasicBlocks(function) > 0 {
                for (key, value) in [("target-cpu", cpu), ("target-features", features), ("prefer-vector-width", "512")] {
                    let attribute = LLVMCreateStringAttribute(g.context, key, UInt32(key.utf8.count), value, UInt32(value.utf8.count))
                    LLVMAddAttributeAtIndex(function, UInt32(bitPattern: -1), attribute)
                }
            }
            f = LLVMGetNextFunction(function)
        }
    }
}
