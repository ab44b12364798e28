import CLLVM
import NMIR

/// Where a kernel body reads its arguments: the slot array the caller filled, and its share of
/// the work, `begin ..< end`.
struct KernelScope {
    let g: IRGen
    let slots: LLVMValueRef
    let begin: LLVMValueRef
    let end: LLVMValueRef

    func pointer(_ i: Int) -> LLVMValueRef { g.load(g.ptr, slots, at: g.int(i), align: 8) }
    func int(_ i: Int) -> LLVMValueRef { g.load(g.i64, slots, at: g.int(i), align: 8) }
}

/// The kernels of one LLVM module, each defined once per kind and static shape:
/// `void <name>(ptr slots, i64 begin, i64 end)`.
final class KernelLibrary {
    let g: IRGen
    private var defined: [String: LLVMValueRef] = [:]
    /// Names of the kernels in definition order, for the IR listing and the tests.
    private(set) var names: [String] = []

    /// Whether the target has AVX-512 (F, BW): the vector kernels of `quant.linear` use it.
    let avx512: Bool

    init(g: IRGen, avx512: Bool) {
        self.g = g
        self.avx512 = avx512
    }

    /// The kernel named `key`, emitting `body` the first time it is asked for.
    func kernel(_ key: String, _ body: (KernelScope) -> Void) -> LLVMValueRef {
        let name = "nmk_" + String(key.map { $0.isLetter || $0.isNumber || $0 == "_" ? $0 : "_" })
        if let k = defined[name] { return k }
        let f = g.function(name, returns: g.void, [g.ptr, g.i64, g.i64], isInternal: true)
        // Kernels run on the pool's threads through a pointer; keep them out of line.
        LLVMAddAttributeAtIndex(f, UInt32(bitPattern: -1), enumAttribute("noinline"))
        LLVMAddAttributeAtIndex(f, UInt32(bitPattern: -1), enumAttribute("nounwind"))
        defined[name] = f
        names.append(name)
        g.define(f) {
            body(KernelScope(g: g, slots: g.param(f, 0), begin: g.param(f, 1), end: g.param(f, 2)))
            g.ret()
        }
        return f
    }

    private func enumAttribute(_ name: String) -> LLVMAttributeRef {
        LLVMCreateEnumAttribute(g.context, LLVMGetEnumAttributeKindForName(name, name.utf8.count), 0)
    }

    /// Copies 4-byte elements `begin ..< end`: slots [destination, source].
    func copy() -> LLVMValueRef {
        kernel("copy32") { k in
            let dst = g.gep(g.i32, k.pointer(0), k.begin), src = g.gep(g.i32, k.pointer(1), k.begin)
            let bytes = g.mul(g.sub(k.end, k.begin), g.int(4))
            _ = g.intrinsic("llvm.memcpy", [g.ptr, g.ptr, g.i64], [dst, src, bytes, LLVMConstInt(g.i1, 0, 0)])
        }
    }
}
