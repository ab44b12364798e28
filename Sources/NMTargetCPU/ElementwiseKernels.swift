import CLLVM
import NMIR
import NMRuntime

/// How the operands of an element-wise op map onto its result's elements.
enum BroadcastMode: Hashable {
    /// Both operands have the result's shape.
    case same
    /// Operand b (or a) repeats: its shape is a suffix of the result's, element `i % count`.
    case bRepeats, aRepeats
    /// NumPy broadcasting in general, with the result's dims and both operands' strides in slots.
    case general(rank: Int)
}

enum BinaryOp: String { case add, sub, mul, div }

/// Element-wise kernels: binary arithmetic with broadcasting, silu and casts. Loops are scalar;
/// with the fast-math flags LLVM vectorizes the contiguous cases.
extension KernelLibrary {
    /// slots: [out, a, b, status, (count of the repeating operand | dims…, a strides…, b strides…)].
    func binary(_ op: BinaryOp, float: Bool, mode: BroadcastMode) -> LLVMValueRef {
        kernel("\(op.rawValue)_\(float ? "f32" : "i32")_\(mode)") { k in
            let t = float ? g.f32 : g.i32
            let out = k.pointer(0), a = k.pointer(1), b = k.pointer(2), status = k.pointer(3)
            g.loop(from: k.begin, to: k.end) { i in
                var ia = i, ib = i
                switch mode {
                case .same: break
                case .bRepeats: ib = g.srem(i, k.int(4))
                case .aRepeats: ia = g.srem(i, k.int(4))
                case .general(let rank):
                    var rest = i
                    ia = g.int(0); ib = g.int(0)
                    for d in stride(from: rank - 1, through: 0, by: -1) {
                        let size = k.int(4 + d)
                        let index = g.srem(rest, size)
                        rest = g.sdiv(rest, size)
                        ia = g.add(ia, g.mul(index, k.int(4 + rank + d)))
                        ib = g.add(ib, g.mul(index, k.int(4 + 2 * rank + d)))
                    }
                }
                let x = g.load(t, a, at: ia), y = g.load(t, b, at: ib)
                g.store(apply(op, x, y, float: float, status: status), out, at: i)
            }
        }
    }

    private func apply(_ op: BinaryOp, _ x: LLVMValueRef, _ y: LLVMValueRef, float: Bool, status: LLVMValueRef) -> LLVMValueRef {
        if float {
            switch op {
            case .add: return g.fadd(x, y)
            case .sub: return g.fsub(x, y)
            case .mul: return g.fmul(x, y)
            case .div: return LLVMBuildFDiv(g.builder, x, y, "")
            }
        }
        switch op {
        case .add: return g.add(x, y)
        case .sub: return g.sub(x, y)
        case .mul: return g.mul(x, y)
        case .div:
            // Truncating division; x / −1 wraps like the interpreter's; a zero divisor is reported.
            let zero = g.icmp(LLVMIntEQ, y, g.i32(0)), minusOne = g.icmp(LLVMIntEQ, y, g.i32(-1))
            g.when(zero) { g.store(g.int(Int(CPUABI.Status.divisionByZero.rawValue)), status, at: g.int(0), align: 8) }
            let safe = g.select(g.or(zero, minusOne), g.i32(1), y)
            return g.select(minusOne, g.sub(g.i32(0), x), g.select(zero, g.i32(0), g.sdiv(x, safe)))
        }
    }

    /// y = x / (1 + e^−x): slots [out, x].
    func silu() -> LLVMValueRef {
        kernel("silu") { k in
            let out = k.pointer(0), x = k.pointer(1)
            g.loop(from: k.begin, to: k.end) { i in
                let v = g.load(g.f32, x, at: i)
                let e = g.expF32(g.fneg(v))
                g.store(g.fdiv(v, g.fadd(g.float(1), e)), out, at: i)
            }
        }
    }

    /// slots [out, x, status]: the conversions of `tensor.cast`.
    func cast(from source: DType, to target: DType) -> LLVMValueRef {
        kernel("cast_\(source)_\(target)") { k in
            let out = k.pointer(0), x = k.pointer(1), status = k.pointer(2)
            g.loop(from: k.begin, to: k.end) { i in
                switch (source.isFloat, target.isFloat) {
                case (true, true):
                    let v = g.load(g.f32, x, at: i)
                    let narrow: LLVMTypeRef? = target == .f16 ? g.f16 : target == .bf16 ? LLVMBFloatTypeInContext(g.context) : nil
                    g.store(narrow.map { g.fpext(g.fptrunc(v, $0), g.f32) } ?? v, out, at: i)
                case (false, true):
                    g.store(g.sitofp(g.load(g.i32, x, at: i), g.f32), out, at: i)
                case (true, false):
                    let v = g.intrinsic("llvm.trunc", [g.f32], [g.load(g.f32, x, at: i)])
                    let bound = target == .index ? Double(Int32.max) : Double(1 << (target.bitWidth - 1))
                    // Ordered compares: NaN fails both and is reported.
                    let fits = g.and(g.fcmp(LLVMRealOGE, v, g.float(-bound)), g.fcmp(LLVMRealOLT, v, g.float(bound)))
                    g.when(g.xor(fits, LLVMConstInt(g.i1, 1, 0))) {
                        g.store(g.int(Int(CPUABI.Status.castOutOfRange.rawValue)), status, at: g.int(0), align: 8)
                    }
                    g.store(g.select(fits, g.fptosi(v, g.i32), g.i32(0)), out, at: i)
                case (false, false):
                    let v = g.load(g.i32, x, at: i)
                    if target.bitWidth < 32 && target != .index {
                        let bound = 1 << (target.bitWidth - 1)
                        let fits = g.and(g.icmp(LLVMIntSGE, v, g.i32(-bound)), g.icmp(LLVMIntSLT, v, g.i32(bound)))
                        g.when(g.xor(fits, LLVMConstInt(g.i1, 1, 0))) {
                            g.store(g.int(Int(CPUABI.Status.castOutOfRange.rawValue)), status, at: g.int(0), align: 8)
                        }
                    }
                    g.store(v, out, at: i)
                }
            }
        }
    }
}

