import CLLVM
import Foundation
import NMIR
import NMRuntime

/// Kernels of the model-level `nn` ops other than the matrix products: embedding lookup,
/// RMSNorm, softmax, rotary embeddings, attention, and the KV-cache write.
extension KernelLibrary {
    /// slots [out, table, ids, status]; work = ids. An id outside the table sets the status.
    func embedding(vocab: Int, dim: Int) -> LLVMValueRef {
        kernel("embedding_\(vocab)_\(dim)") { k in
            let out = k.pointer(0), table = k.pointer(1), ids = k.pointer(2), status = k.pointer(3)
            g.loop(from: k.begin, to: k.end) { i in
                let id = g.sext(g.load(g.i32, ids, at: i), g.i64)
                let bad = g.or(g.icmp(LLVMIntSLT, id, g.int(0)), g.icmp(LLVMIntSGE, id, g.int(vocab)))
                let badBlock = g.block("bad"), goodBlock = g.block("good"), next = g.block("next")
                LLVMBuildCondBr(g.builder, bad, badBlock, goodBlock)
                LLVMPositionBuilderAtEnd(g.builder, badBlock)
                g.store(g.int(Int(CPUABI.Status.tokenOutOfRange.rawValue)), status, at: g.int(0), align: 8)
                g.store(id, status, at: g.int(1), align: 8)
                LLVMBuildBr(g.builder, next)
                LLVMPositionBuilderAtEnd(g.builder, goodBlock)
                let src = g.gep(g.f32, table, g.mul(id, g.int(dim))), dst = g.gep(g.f32, out, g.mul(i, g.int(dim)))
                _ = g.intrinsic("llvm.memcpy", [g.ptr, g.ptr, g.i64], [dst, src, g.int(dim * 4), LLVMConstInt(g.i1, 0, 0)])
                LLVMBuildBr(g.builder, next)
                LLVMPositionBuilderAtEnd(g.builder, next)
            }
        }
    }

    /// slots [out, x, weight]; work = rows of `dim`.
    func rmsNorm(dim: Int, eps: Double) -> LLVMValueRef {
        kernel("rms_norm_\(dim)_\(eps.bitPattern)") { k in
            let out = k.pointer(0), x = k.pointer(1), w = k.pointer(2)
            g.loop(from: k.begin, to: k.end) { row in
                let base = g.mul(row, g.int(dim))
                let sum = g.loop(from: g.int(0), to: g.int(dim), carrying: [g.float(0)]) { d, acc in
                    let v = g.load(g.f32, x, at: g.add(base, d))
                    return [g.fma(v, v, acc[0])]
                }[0]
                let mean = g.fdiv(sum, g.float(Double(dim)))
                let inv = LLVMBuildFDiv(g.builder, g.float(1), g.sqrt(g.fadd(mean, g.float(eps))), "")!
                g.loop(from: g.int(0), to: g.int(dim)) { d in
                    let v = g.load(g.f32, x, at: g.add(base, d))
                    g.store(g.fmul(g.fmul(v, inv), g.load(g.f32, w, at: d)), out, at: g.add(base, d))
                }
            }
        }
    }

    /// slots [out, x, size, inner]; work = outer · inner slices along the axis.
    func softmax() -> LLVMValueRef {
        kernel("softmax") { k in
            let out = k.pointer(0), x = k.pointer(1), size = k.int(2), inner = k.int(3)
            g.loop(from: k.begin, to: k.end) { slice in
                let base = g.add(g.mul(g.mul(g.sdiv(slice, inner), size), inner), g.srem(slice, inner))
                let index = { [g] (s: LLVMValueRef) in g.add(base, g.mul(s, inner)) }
                let maxValue = g.loop(from: g.int(0), to: size, carrying: [g.float(-Double.infinity)]) { s, acc in
                    [g.fmax(acc[0], g.load(g.f32, x, at: index(s)))]
                }[0]
                let sum = g.loop(from: g.int(0), to: size, carrying: [g.float(0)]) { s, acc in
                    let e = g.expF32(g.fsub(g.load(g.f32, x, at: index(s)), maxValue))
                    g.store(e, out, at: index(s))
                    return [g.fadd(acc[0], e)]
                }[0]
                let inv = LLVMBuildFDiv(g.builder, g.float(1), sum, "")!
                g.loop(from: g.int(0), to: size) { s in
                    g.store(g.fmul(g.load(g.f32, out, at: index(s)), inv), out, at: index(s))
                }
            }
        }
    }

    /// The rotation table of `nn.rope` for positions start ..< start + T: slots [table, start];
    /// work = T; table[t, i] = (cos φ, sin φ) with φ = (start + t) · theta^(−2i/D), in double
    /// precision like the interpreter, stored as f32 pairs.
    func ropeTable(headDim d: Int, theta: Double) -> LLVMValueRef {
        kernel("rope_table_\(d)_\(theta.bitPattern)") { k in
            let half = d / 2
            let frequencies = (0..<half).map { g.float(pow(theta, -2 * Double($0) / Double(d)), g.f64) }
            let freqType = LLVMArrayType(g.f64, UInt32(half))!
            let global = LLVMAddGlobal(g.module, freqType, "nmc_rope_freq_\(d)_\(theta.bitPattern)")!
            var constants: [LLVMValueRef?] = frequencies
            LLVMSetInitializer(global, LLVMConstArray(g.f64, &constants, UInt32(half)))
            LLVMSetGlobalConstant(global, 1)
            LLVMSetLinkage(global, LLVMInternalLinkage)
            let table = k.pointer(0)
            let start = g.sext(g.load(g.i32, k.pointer(1)), g.i64)
            g.loop(from: k.begin, to: k.end) { t in
                let position = g.sitofp(g.add(start, t), g.f64)
                g.loop(half) { i in
                    let angle = LLVMBuildFMul(g.builder, position, g.load(g.f64, global, at: i, align: 8), "")!
                    let c = g.fptrunc(g.intrinsic("llvm.cos", [g.f64], [angle]), g.f32)
                    let s = g.fptrunc(g.intrinsic("llvm.sin", [g.f64], [angle]), g.f32)
                    let at = g.mul(g.add(g.mul(t, g.int(half)), i), g.int(2))
                    g.store(c, table, at: at)
                    g.store(s, table, at: g.add(at, g.int(1)))
                }
            }
        }
    }

    /// slots [out, x, table]; work = T tokens of `heads` × `d`.
    func rope(heads: Int, headDim d: Int, interleaved: Bool) -> LLVMValueRef {
        kernel("rope_\(heads)_\(d)_\(interleaved ? "i" : "h")") { k in
            let out = k.pointer(0), x = k.pointer(1), table = k.pointer(2)
            let half = d / 2
            g.loop(from: k.begin, to: k.end) { t in
                g.loop(heads) { h in
                    let base = g.mul(g.add(g.mul(t, g.int(heads)), h), g.int(d))
                    g.loop(half) { i in
                        let at = g.mul(g.add(g.mul(t, g.int(half)), i), g.int(2))
                        let c = g.load(g.f32, table, at: at), s = g.load(g.f32, table, at: g.add(at, g.int(1)))
                        let ia = interleaved ? g.add(base, g.mul(i, g.int(2))) : g.add(base, i)
                        let ib = interleaved ? g.add(ia, g.int(1)) : g.add(ia, g.int(half))
                        let a = g.load(g.f32, x, at: ia), b = g.load(g.f32, x, at: ib)
                        g.store(g.fsub(g.fmul(a, c), g.fmul(b, s)), out, at: ia)
                        g.store(g.fadd(g.fmul(a, s), g.fmul(b, c)), out, at: ib)
                    }
                }
            }
        }
    }

    /// slots [out, q, k, v, S, T]; work = ⌈T / 2⌉ · Hq (`attentionItems`: pairs of query rows ×
    /// heads). Scores for one query row live in a stack buffer of `maxKeys` floats.
    func attention(queryHeads hq: Int, kvHeads hkv: Int, headDim d: Int, causal: Bool, scale: Double, maxKeys: Int) -> LLVMValueRef {
        kernel("attention_\(hq)_\(hkv)_\(d)_\(causal)_\(scale.bitPattern)_\(maxKeys)") { k in
            let t = k.int(5)
            let scores = g.alloca(g.f32, count: max(maxKeys, 1))
            // Query i sees i + S − T + 1 keys under the causal mask: a work item is the pair of
            // queries i and T − 1 − i of one head, so that contiguous shares of the items cost
            // the same (taken one query at a time, the last share of a prompt costs 3× the first).
            g.loop(from: k.begin, to: k.end) { item in
                let pair = g.sdiv(item, g.int(hq)), h = g.srem(item, g.int(hq))
                let mirror = g.sub(g.sub(t, g.int(1)), pair)
                attendOne(k, query: pair, head: h, scores: scores, queryHeads: hq, kvHeads: hkv, headDim: d, causal: causal, scale: scale)
                g.when(g.icmp(LLVMIntSGT, mirror, pair)) {
                    attendOne(k, query: mirror, head: h, scores: scores, queryHeads: hq, kvHeads: hkv, headDim: d, causal: causal, scale: scale)
                }
            }
        }
    }

    /// Work items of `attention` for T queries: ⌈T / 2⌉ pairs per head.
    static func attentionItems(queries t: LLVMValueRef, heads: Int, _ g: IRGen) -> LLVMValueRef {
        g.mul(g.sdiv(g.add(t, g.int(1)), g.int(2)), g.int(heads))
    }

    /// Softmax attention of query `i`, head `h`, over its visible keys (their scores in `scores`,
    /// a stack buffer of the kernel's key bound). With a head dim that is a
    /// multiple of 16, the query and the output accumulate in registers (d / 16 vectors) and
    /// each key costs d / 16 vector FMAs for its score and as many for its value; `expF32`
    /// keeps the exponentials in vector code.
    private func attendOne(_ k: KernelScope, query i: LLVMValueRef, head h: LLVMValueRef, scores: LLVMValueRef, queryHeads hq: Int,
                           kvHeads hkv: Int, headDim d: Int, causal: Bool, scale: Double) {
        let out = k.pointer(0), q = k.pointer(1), keys = k.pointer(2), vals = k.pointer(3)
        let s = k.int(4), t = k.int(5)
        let kvh = g.sdiv(h, g.int(hq / hkv))
        let visible = causal ? g.smin(s, g.smax(g.int(0), g.add(g.sub(s, t), g.add(i, g.int(1))))) : s
        let qBase = g.mul(g.add(g.mul(i, g.int(hq)), h), g.int(d))
        let rowBase = { (j: LLVMValueRef) in self.g.mul(self.g.add(self.g.mul(j, self.g.int(hkv)), kvh), self.g.int(d)) }
        let vectors = d % 16 == 0 ? d / 16 : 0
        let v16f = g.vector(g.f32, 16)
        let queryVectors = (0..<vectors).map { g.load(v16f, g.gep(g.f32, q, g.add(qBase, g.int(16 * $0)))) }
        let maxScore = g.loop(from: g.int(0), to: visible, carrying: [g.float(-Double.infinity)]) { j, acc in
            let kBase = rowBase(j)
            let dot: LLVMValueRef
            if vectors > 0 {
                let products = (0..<vectors).map { g.fmul(queryVectors[$0], g.load(v16f, g.gep(g.f32, keys, g.add(kBase, g.int(16 * $0))))) }
                dot = g.reduceAdd(products.dropFirst().reduce(products[0]) { g.fadd($0, $1) })
            } else {
                dot = g.loop(from: g.int(0), to: g.int(d), carrying: [g.float(0)]) { e, a in
                    [g.fma(g.load(g.f32, q, at: g.add(qBase, e)), g.load(g.f32, keys, at: g.add(kBase, e)), a[0])]
                }[0]
            }
            let score = g.fmul(dot, g.float(scale))
            g.store(score, scores, at: j)
            return [g.fmax(acc[0], score)]
        }[0]
        let sum = g.loop(from: g.int(0), to: visible, carrying: [g.float(0)]) { j, acc in
            let e = g.expF32(g.fsub(g.load(g.f32, scores, at: j), maxScore))
            g.store(e, scores, at: j)
            return [g.fadd(acc[0], e)]
        }[0]
        // A query that sees no key (S < T) outputs 0, as in the interpreter.
        let inv = g.select(g.fcmp(LLVMRealOGT, sum, g.float(0)), LLVMBuildFDiv(g.builder, g.float(1), sum, "")!, g.float(0))
        if vectors > 0 {
            let zero = g.splat(g.float(0), 16)
            let sums = g.loop(from: g.int(0), to: visible, carrying: Array(repeating: zero, count: vectors)) { j, acc in
                let p = g.splat(g.load(g.f32, scores, at: j), 16)
                let vBase = rowBase(j)
                return (0..<vectors).map { g.fma(p, g.load(v16f, g.gep(g.f32, vals, g.add(vBase, g.int(16 * $0)))), acc[$0]) }
            }
            for (n, v) in sums.enumerated() {
                g.store(g.fmul(v, g.splat(inv, 16)), g.gep(g.f32, out, g.add(qBase, g.int(16 * n))))
            }
            return
        }
        g.loop(d) { e in g.store(g.float(0), out, at: g.add(qBase, e)) }
        g.loop(from: g.int(0), to: visible) { j in
            let p = g.load(g.f32, scores, at: j)
            let vBase = rowBase(j)
            g.loop(d) { e in
                let o = g.gep(g.f32, out, g.add(qBase, e))
                g.store(g.fma(p, g.load(g.f32, vals, at: g.add(vBase, e)), g.load(g.f32, o)), o)
            }
        }
        g.loop(d) { e in
            let o = g.gep(g.f32, out, g.add(qBase, e))
            g.store(g.fmul(g.load(g.f32, o), inv), o)
        }
    }

    /// slots [out, a, b, batch, m, k, n]; work = batch · m rows of the product.
    func matmul() -> LLVMValueRef {
        kernel("matmul") { kk in
            let out = kk.pointer(0), a = kk.pointer(1), b = kk.pointer(2)
            let m = kk.int(4), k = kk.int(5), n = kk.int(6)
            g.loop(from: kk.begin, to: kk.end) { row in
                let batch = g.sdiv(row, m)
                let outRow = g.mul(row, n)
                g.loop(from: g.int(0), to: n) { j in g.store(g.float(0), out, at: g.add(outRow, j)) }
                g.loop(from: g.int(0), to: k) { p in
                    let av = g.load(g.f32, a, at: g.add(g.mul(row, k), p))
                    let bRow = g.mul(g.add(g.mul(batch, k), p), n)
                    g.loop(from: g.int(0), to: n) { j in
                        let o = g.gep(g.f32, out, g.add(outRow, j))
                        g.store(g.fma(av, g.load(g.f32, b, at: g.add(bRow, j)), g.load(g.f32, o)), o)
                    }
                }
            }
        }
    }

    /// slots [out, x, outer, inner, stride, offset, outStride, outOffset]: copies `outer` runs of
    /// `inner` elements, run r from x[r·stride + offset] to out[r·outStride + outOffset];
    /// work = outer (tensor.slice, tensor.concat).
    func stridedCopy() -> LLVMValueRef {
        kernel("strided_copy") { k in
            let out = k.pointer(0), x = k.pointer(1), inner = k.int(3), stride = k.int(4), offset = k.int(5)
            let outStride = k.int(6)
            let outOffset = k.int(7)
            g.loop(from: k.begin, to: k.end) { r in
                let src = g.gep(g.i32, x, g.add(g.mul(r, stride), offset))
                let dst = g.gep(g.i32, out, g.add(g.mul(r, outStride), outOffset))
                _ = g.intrinsic("llvm.memcpy", [g.ptr, g.ptr, g.i64], [dst, src, g.mul(inner, g.int(4)), LLVMConstInt(g.i1, 0, 0)])
            }
        }
    }

    /// slots [out, x, dims…(rank), source strides…(rank)]; work = elements of the result.
    func transpose(rank: Int) -> LLVMValueRef {
        kernel("transpose_\(rank)") { k in
            let out = k.pointer(0), x = k.pointer(1)
            g.loop(from: k.begin, to: k.end) { i in
                var rest = i
                var source = g.int(0)
                for d in stride(from: rank - 1, through: 0, by: -1) {
                    let size = k.int(2 + d)
                    source = g.add(source, g.mul(g.srem(rest, size), k.int(2 + rank + d)))
                    rest = g.sdiv(rest, size)
                }
                g.store(g.load(g.i32, x, at: source), out, at: i)
            }
        }
    }
}
