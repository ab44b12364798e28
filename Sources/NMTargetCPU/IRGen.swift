import CLLVM

/// A thin, typed layer over the LLVM C API's builder: the types NMC's kernels use, arithmetic with
/// fast-math flags where NMC allows reassociation, structured loops, and intrinsics by name.
/// Every kernel emitter writes LLVM IR through it.
final class IRGen {
    let context: LLVMContextRef
    let module: LLVMModuleRef
    let builder: LLVMBuilderRef

    let void: LLVMTypeRef, i1: LLVMTypeRef, i8: LLVMTypeRef, i16: LLVMTypeRef, i32: LLVMTypeRef, i64: LLVMTypeRef
    let f16: LLVMTypeRef, f32: LLVMTypeRef, f64: LLVMTypeRef, ptr: LLVMTypeRef

    /// `contract` and `reassoc` (plus `afn` for the approximations of exp): the kernels' sums may
    /// be reordered and fused, which is what vectorized reductions need. NaN and infinity keep
    /// their IEEE meaning so that a diverging model shows as such.
    static let fastMath = LLVMFastMathFlags(LLVMFastMathAllowReassoc | LLVMFastMathAllowContract | LLVMFastMathApproxFunc)

    /// `context`: an existing context (the JIT's thread-safe one), or nil for a new one.
    init(moduleName: String, context existing: LLVMContextRef? = nil) {
        context = existing ?? LLVMContextCreate()
        ownsContext = existing == nil
        module = LLVMModuleCreateWithNameInContext(moduleName, context)
        builder = LLVMCreateBuilderInContext(context)
        void = LLVMVoidTypeInContext(context)
        i1 = LLVMInt1TypeInContext(context)
        i8 = LLVMInt8TypeInContext(context)
        i16 = LLVMInt16TypeInContext(context)
        i32 = LLVMInt32TypeInContext(context)
        i64 = LLVMInt64TypeInContext(context)
        f16 = LLVMHalfTypeInContext(context)
        f32 = LLVMFloatTypeInContext(context)
        f64 = LLVMDoubleTypeInContext(context)
        ptr = LLVMPointerTypeInContext(context, 0)
    }

    deinit {
        LLVMDisposeBuilder(builder)
        if ownsModule { LLVMDisposeModule(module) }
        if ownsContext { LLVMContextDispose(context) }
    }

    private let ownsContext: Bool

    /// False once the module has been handed to the JIT, which then owns it and its context.
    var ownsModule = true

    // MARK: Types and constants

    func vector(_ element: LLVMTypeRef, _ count: Int) -> LLVMTypeRef { LLVMVectorType(element, UInt32(count)) }
    func int(_ v: Int, _ type: LLVMTypeRef? = nil) -> LLVMValueRef { LLVMConstInt(type ?? i64, UInt64(bitPattern: Int64(v)), 1) }
    func i32(_ v: Int) -> LLVMValueRef { int(v, i32) }
    func float(_ v: Double, _ type: LLVMTypeRef? = nil) -> LLVMValueRef { LLVMConstReal(type ?? f32, v) }

    /// A constant vector of the given scalar constants.
    func constVector(_ elements: [LLVMValueRef]) -> LLVMValueRef {
        var elements: [LLVMValueRef?] = elements
        return LLVMConstVector(&elements, UInt32(elements.count))
    }

    func splat(_ scalar: LLVMValueRef, _ count: Int) -> LLVMValueRef {
        let type = vector(LLVMTypeOf(scalar), count)
        let inserted = LLVMBuildInsertElement(builder, LLVMGetPoison(type), scalar, i32(0), "")!
        let zeros = constVector(Array(repeating: i32(0), count: count))
        return LLVMBuildShuffleVector(builder, inserted, LLVMGetPoison(type), zeros, "")
    }

    // MARK: Functions and blocks

    /// Declares (or finds) a function; `internal` ones may be inlined and dropped by LLVM.
    func function(_ name: String, returns: LLVMTypeRef, _ params: [LLVMTypeRef], isInternal: Bool = false) -> LLVMValueRef {
        if let existing = LLVMGetNamedFunction(module, name) { return existing }
        var params: [LLVMTypeRef?] = params
        let type = LLVMFunctionType(returns, &params, UInt32(params.count), 0)
        let f = LLVMAddFunction(module, name, type)!
        if isInternal { LLVMSetLinkage(f, LLVMInternalLinkage) }
        return f
    }

    func functionType(_ f: LLVMValueRef) -> LLVMTypeRef { LLVMGlobalGetValueType(f) }

    func functionType(returns: LLVMTypeRef, _ params: [LLVMTypeRef]) -> LLVMTypeRef {
        var params: [LLVMTypeRef?] = params
        return LLVMFunctionType(returns, &params, UInt32(params.count), 0)
    }

    func param(_ f: LLVMValueRef, _ i: Int) -> LLVMValueRef { LLVMGetParam(f, UInt32(i)) }

    func block(_ name: String) -> LLVMBasicBlockRef {
        LLVMAppendBasicBlockInContext(context, LLVMGetBasicBlockParent(LLVMGetInsertBlock(builder)), name)
    }

    /// Emits `body` as the definition of `f`, starting in a fresh entry block.
    func define(_ f: LLVMValueRef, _ body: () -> Void) {
        let saved = LLVMGetInsertBlock(builder)
        let entry = LLVMAppendBasicBlockInContext(context, f, "entry")
        LLVMPositionBuilderAtEnd(builder, entry)
        body()
        if let saved { LLVMPositionBuilderAtEnd(builder, saved) }
    }

    func call(_ f: LLVMValueRef, _ args: [LLVMValueRef]) -> LLVMValueRef {
        var args: [LLVMValueRef?] = args
        return LLVMBuildCall2(builder, functionType(f), f, &args, UInt32(args.count), "")
    }

    /// Calls an LLVM intrinsic such as `llvm.fma` overloaded on `types`.
    func intrinsic(_ name: String, _ types: [LLVMTypeRef], _ args: [LLVMValueRef]) -> LLVMValueRef {
        let id = LLVMLookupIntrinsicID(name, name.utf8.count)
        var types: [LLVMTypeRef?] = types
        let f = LLVMGetIntrinsicDeclaration(module, id, &types, types.count)!
        var args: [LLVMValueRef?] = args
        let call = LLVMBuildCall2(builder, LLVMIntrinsicGetType(context, id, &types, types.count), f, &args, UInt32(args.count), "")!
        if LLVMGetTypeKind(LLVMTypeOf(call)) != LLVMVoidTypeKind, isFloating(LLVMTypeOf(call)) {
            LLVMSetFastMathFlags(call, Self.fastMath)
        }
        return call
    }

    func ret(_ v: LLVMValueRef? = nil) {
        if let v { LLVMBuildRet(builder, v) } else { LLVMBuildRetVoid(builder) }
    }

    // MARK: Memory

    /// `base + index * sizeof(element)`.
    func gep(_ element: LLVMTypeRef, _ base: LLVMValueRef, _ index: LLVMValueRef) -> LLVMValueRef {
        var indices: [LLVMValueRef?] = [index]
        return LLVMBuildInBoundsGEP2(builder, element, base, &indices, 1, "")
    }

    func load(_ type: LLVMTypeRef, _ pointer: LLVMValueRef, align: Int = 4) -> LLVMValueRef {
        let v = LLVMBuildLoad2(builder, type, pointer, "")!
        LLVMSetAlignment(v, UInt32(align))
        return v
    }

    func store(_ value: LLVMValueRef, _ pointer: LLVMValueRef, align: Int = 4) {
        let s = LLVMBuildStore(builder, value, pointer)!
        LLVMSetAlignment(s, UInt32(align))
    }

    /// Element `index` of an array of `type` at `base`.
    func load(_ type: LLVMTypeRef, _ base: LLVMValueRef, at index: LLVMValueRef, align: Int = 4) -> LLVMValueRef {
        load(type, gep(type, base, index), align: align)
    }

    func store(_ value: LLVMValueRef, _ base: LLVMValueRef, at index: LLVMValueRef, align: Int = 4) {
        store(value, gep(LLVMTypeOf(value), base, index), align: align)
    }

    func alloca(_ type: LLVMTypeRef, count: Int) -> LLVMValueRef {
        // Allocas go in the entry block so that they are allocated once per call, not per loop trip.
        let current = LLVMGetInsertBlock(builder)!
        let entry = LLVMGetEntryBasicBlock(LLVMGetBasicBlockParent(current))!
        if let first = LLVMGetFirstInstruction(entry) { LLVMPositionBuilderBefore(builder, first) } else { LLVMPositionBuilderAtEnd(builder, entry) }
        let a = LLVMBuildArrayAlloca(builder, type, int(count), "")!
        LLVMSetAlignment(a, 64)
        LLVMPositionBuilderAtEnd(builder, current)
        return a
    }

    // MARK: Arithmetic

    private func flagged(_ v: LLVMValueRef) -> LLVMValueRef {
        LLVMSetFastMathFlags(v, Self.fastMath)
        return v
    }

    func isFloating(_ type: LLVMTypeRef) -> Bool {
        let t = LLVMGetTypeKind(type) == LLVMVectorTypeKind ? LLVMGetElementType(type)! : type
        let k = LLVMGetTypeKind(t)
        return k == LLVMFloatTypeKind || k == LLVMHalfTypeKind || k == LLVMDoubleTypeKind || k == LLVMBFloatTypeKind
    }

    func fadd(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { flagged(LLVMBuildFAdd(builder, a, b, "")) }
    func fsub(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { flagged(LLVMBuildFSub(builder, a, b, "")) }
    func fmul(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { flagged(LLVMBuildFMul(builder, a, b, "")) }
    func fdiv(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { flagged(LLVMBuildFDiv(builder, a, b, "")) }
    func fneg(_ a: LLVMValueRef) -> LLVMValueRef { flagged(LLVMBuildFNeg(builder, a, "")) }
    func fma(_ a: LLVMValueRef, _ b: LLVMValueRef, _ c: LLVMValueRef) -> LLVMValueRef {
        intrinsic("llvm.fma", [LLVMTypeOf(a)], [a, b, c])
    }
    func fmax(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { intrinsic("llvm.maxnum", [LLVMTypeOf(a)], [a, b]) }
    func exp(_ a: LLVMValueRef) -> LLVMValueRef { intrinsic("llvm.exp", [LLVMTypeOf(a)], [a]) }

    /// e^x for f32 (a scalar or a vector) in straight-line code that vectorizes, instead of
    /// `llvm.exp` (which becomes one libm call per element): Cody–Waite range reduction
    /// x = n·ln 2 + r, Cephes' degree-6 polynomial for e^r (relative error about 1e-7), times
    /// 2^n as two powers of two built in the exponent bits (so that n = 128 and subnormal
    /// results come out right). Below −104 it gives 0, above 88.73 +∞; NaN stays NaN.
    func expF32(_ x: LLVMValueRef) -> LLVMValueRef {
        let type = LLVMTypeOf(x)!
        let count = LLVMGetTypeKind(type) == LLVMVectorTypeKind ? Int(LLVMGetVectorSize(type)) : 0
        func c(_ v: Double) -> LLVMValueRef { count > 0 ? splat(float(v), count) : float(v) }
        func ci(_ v: Int) -> LLVMValueRef { count > 0 ? splat(i32(v), count) : i32(v) }
        let clamped = select(fcmp(LLVMRealOGT, x, c(89)), c(89), select(fcmp(LLVMRealOLT, x, c(-104)), c(-104), x))
        // Plain fma calls, not flagged arithmetic: reassociation must not merge the two parts of ln 2.
        let n = intrinsic("llvm.rint", [type], [LLVMBuildFMul(builder, clamped, c(1.44269504088896341), "")])
        let r = fma(n, c(2.12194440e-4), fma(n, c(-0.693359375), clamped))
        var p = c(1.9875691500e-4)
        for coefficient in [1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1] {
            p = fma(p, r, c(coefficient))
        }
        let y = LLVMBuildFAdd(builder, fma(p, LLVMBuildFMul(builder, r, r, ""), r), c(1), "")!
        let intType = count > 0 ? vector(i32, count) : i32
        let whole = fptosi(n, intType), half = ashr(whole, ci(1))
        let power = { (e: LLVMValueRef) in LLVMBuildBitCast(self.builder, self.shl(self.add(e, ci(127)), ci(23)), type, "")! }
        let result = LLVMBuildFMul(builder, LLVMBuildFMul(builder, y, power(half), "")!, power(sub(whole, half)), "")!
        return select(fcmp(LLVMRealUNO, x, x), x, select(fcmp(LLVMRealOLT, x, c(-104)), c(0), result))
    }
    func sqrt(_ a: LLVMValueRef) -> LLVMValueRef { intrinsic("llvm.sqrt", [LLVMTypeOf(a)], [a]) }
    /// Horizontal sum of a float vector (reassociating: the order of the adds is LLVM's).
    func reduceAdd(_ v: LLVMValueRef) -> LLVMValueRef {
        let element = LLVMGetElementType(LLVMTypeOf(v))!
        return intrinsic("llvm.vector.reduce.fadd", [LLVMTypeOf(v)], [float(0, element), v])
    }

    func add(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { LLVMBuildAdd(builder, a, b, "") }
    func sub(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { LLVMBuildSub(builder, a, b, "") }
    func mul(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { LLVMBuildMul(builder, a, b, "") }
    func sdiv(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { LLVMBuildSDiv(builder, a, b, "") }
    func srem(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { LLVMBuildSRem(builder, a, b, "") }
    func and(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { LLVMBuildAnd(builder, a, b, "") }
    func or(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { LLVMBuildOr(builder, a, b, "") }
    func xor(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { LLVMBuildXor(builder, a, b, "") }
    func shl(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { LLVMBuildShl(builder, a, b, "") }
    func lshr(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { LLVMBuildLShr(builder, a, b, "") }
    func ashr(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { LLVMBuildAShr(builder, a, b, "") }
    func icmp(_ p: LLVMIntPredicate, _ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { LLVMBuildICmp(builder, p, a, b, "") }
    func fcmp(_ p: LLVMRealPredicate, _ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { LLVMBuildFCmp(builder, p, a, b, "") }
    func select(_ c: LLVMValueRef, _ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { LLVMBuildSelect(builder, c, a, b, "") }
    func smin(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { select(icmp(LLVMIntSLT, a, b), a, b) }
    func smax(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { select(icmp(LLVMIntSGT, a, b), a, b) }

    func sext(_ v: LLVMValueRef, _ t: LLVMTypeRef) -> LLVMValueRef { LLVMBuildSExt(builder, v, t, "") }
    func zext(_ v: LLVMValueRef, _ t: LLVMTypeRef) -> LLVMValueRef { LLVMBuildZExt(builder, v, t, "") }
    func trunc(_ v: LLVMValueRef, _ t: LLVMTypeRef) -> LLVMValueRef { LLVMBuildTrunc(builder, v, t, "") }
    func sitofp(_ v: LLVMValueRef, _ t: LLVMTypeRef) -> LLVMValueRef { LLVMBuildSIToFP(builder, v, t, "") }
    func fptosi(_ v: LLVMValueRef, _ t: LLVMTypeRef) -> LLVMValueRef { LLVMBuildFPToSI(builder, v, t, "") }
    func fpext(_ v: LLVMValueRef, _ t: LLVMTypeRef) -> LLVMValueRef { LLVMBuildFPExt(builder, v, t, "") }
    func fptrunc(_ v: LLVMValueRef, _ t: LLVMTypeRef) -> LLVMValueRef { LLVMBuildFPTrunc(builder, v, t, "") }

    func shuffle(_ a: LLVMValueRef, _ b: LLVMValueRef, _ mask: [Int]) -> LLVMValueRef {
        LLVMBuildShuffleVector(builder, a, b, constVector(mask.map { i32($0) }), "")
    }

    // MARK: Control flow

    /// `for i in start ..< end (by step) { body(i) }` over i64, with a phi induction variable.
    func loop(from start: LLVMValueRef, to end: LLVMValueRef, step: Int = 1, _ body: (LLVMValueRef) -> Void) {
        let pre = LLVMGetInsertBlock(builder)!
        let header = block("loop"), bodyBlock = block("body"), exit = block("exit")
        LLVMBuildBr(builder, header)
        LLVMPositionBuilderAtEnd(builder, header)
        let i = LLVMBuildPhi(builder, i64, "i")!
        LLVMBuildCondBr(builder, icmp(LLVMIntSLT, i, end), bodyBlock, exit)
        LLVMPositionBuilderAtEnd(builder, bodyBlock)
        body(i)
        let next = add(i, int(step))
        let latch = LLVMGetInsertBlock(builder)!
        LLVMBuildBr(builder, header)
        var values: [LLVMValueRef?] = [start, next]
        var blocks: [LLVMBasicBlockRef?] = [pre, latch]
        LLVMAddIncoming(i, &values, &blocks, 2)
        LLVMPositionBuilderAtEnd(builder, exit)
    }

    func loop(_ count: Int, _ body: (LLVMValueRef) -> Void) { loop(from: int(0), to: int(count), body) }

    /// A loop that carries `initial` values (accumulators) from trip to trip and returns their final values.
    func loop(from start: LLVMValueRef, to end: LLVMValueRef, step: Int = 1, carrying initial: [LLVMValueRef],
              _ body: (LLVMValueRef, [LLVMValueRef]) -> [LLVMValueRef]) -> [LLVMValueRef] {
        let pre = LLVMGetInsertBlock(builder)!
        let header = block("loop"), bodyBlock = block("body"), exit = block("exit")
        LLVMBuildBr(builder, header)
        LLVMPositionBuilderAtEnd(builder, header)
        let i = LLVMBuildPhi(builder, i64, "i")!
        let phis = initial.map { LLVMBuildPhi(builder, LLVMTypeOf($0), "acc")! }
        LLVMBuildCondBr(builder, icmp(LLVMIntSLT, i, end), bodyBlock, exit)
        LLVMPositionBuilderAtEnd(builder, bodyBlock)
        let updated = body(i, phis)
        let next = add(i, int(step))
        let latch = LLVMGetInsertBlock(builder)!
        LLVMBuildBr(builder, header)
        for (phi, (first, later)) in zip([i] + phis, zip([start] + initial, [next] + updated)) {
            var values: [LLVMValueRef?] = [first, later]
            var blocks: [LLVMBasicBlockRef?] = [pre, latch]
            LLVMAddIncoming(phi, &values, &blocks, 2)
        }
        LLVMPositionBuilderAtEnd(builder, exit)
        return phis
    }

    /// `if condition { then() }`.
    func when(_ condition: LLVMValueRef, _ then: () -> Void) {
        let thenBlock = block("then"), after = block("after")
        LLVMBuildCondBr(builder, condition, thenBlock, after)
        LLVMPositionBuilderAtEnd(builder, thenBlock)
        then()
        LLVMBuildBr(builder, after)
        LLVMPositionBuilderAtEnd(builder, after)
    }

    /// `if condition { then() } else { otherwise() }`.
    func ifElse(_ condition: LLVMValueRef, _ then: () -> Void, else otherwise: () -> Void) {
        let thenBlock = block("then"), elseBlock = block("else"), after = block("after")
        LLVMBuildCondBr(builder, condition, thenBlock, elseBlock)
        LLVMPositionBuilderAtEnd(builder, thenBlock)
        then()
        LLVMBuildBr(builder, after)
        LLVMPositionBuilderAtEnd(builder, elseBlock)
        otherwise()
        LLVMBuildBr(builder, after)
        LLVMPositionBuilderAtEnd(builder, after)
    }

    /// The module's text.
    var text: String {
        guard let raw = LLVMPrintModuleToString(module) else { return "" }
        defer { LLVMDisposeMessage(raw) }
        return String(cString: raw)
    }
}
