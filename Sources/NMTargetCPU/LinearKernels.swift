import CLLVM
import NMIR

/// The matrix products of linear layers, y[m, n] = Σ_k x[m, k] · w[n, k], split over the rows of
/// `w` (the work of a kernel call is a range of output columns n).
///
/// - f32 `nn.linear`: register tiles of up to 4 tokens × 4 rows, 16-wide vectors along k.
/// - `quant.linear`, INT4 with AVX-512: the 4-bit values are looked up in a 16-entry table that
///   already holds `scale · (q − zero)` for the current group (`vpermps`), so unpacking and scaling
///   cost one permute per 16 weights. For 2:4 the kept values of 8 groups (32 columns) fill one
///   vector, and the 2-bit indices select the matching activations from the 32 columns with one
///   two-source permute (`vpermi2ps`); pruned weights are never loaded. Below 16 tokens a
///   weight block is decoded once per tile of up to 8 tokens (`fewTokens`); from 16 tokens on,
///   once per chunk into an L1 scratch block that register tiles of 4 rows × 4 tokens multiply
///   (`manyTokens`). 2:4 weights reach the kernels in `WeightABI.Layout.packedLaneNibbles`.
/// - Any other packed weight (8 bits, other N:M patterns, sizes not multiple of 32) takes a
///   scalar kernel that follows the storage layout of `ir-specs/README.md` literally.
extension KernelLibrary {
    var v16f: LLVMTypeRef { g.vector(g.f32, 16) }
    var v16i: LLVMTypeRef { g.vector(g.i32, 16) }

    /// Loops `n` over `begin ..< end` in steps of `tile`, then the rest one at a time.
    func tiled(_ begin: LLVMValueRef, _ end: LLVMValueRef, by tile: Int, _ body: (LLVMValueRef, Int) -> Void) {
        let whole = g.add(begin, g.mul(g.sdiv(g.sub(end, begin), g.int(tile)), g.int(tile)))
        g.loop(from: begin, to: whole, step: tile) { body($0, tile) }
        if tile > 1 { g.loop(from: whole, to: end) { body($0, 1) } }
    }

    // MARK: f32

    /// slots [out, x, w, M]; work = N rows of w.
    func linearF32(n: Int, k: Int) -> LLVMValueRef {
        kernel("linear_f32_\(n)_\(k)") { s in
            let out = s.pointer(0), x = s.pointer(1), w = s.pointer(2), m = s.int(3)
            guard k % 16 == 0 else { return scalarLinearF32(s, n: n, k: k) }
            tiled(s.begin, s.end, by: 4) { n0, nr in
                tiled(g.int(0), m, by: 4) { m0, mr in
                    let zero = g.splat(g.float(0), 16)
                    let accs = g.loop(from: g.int(0), to: g.int(k / 16), carrying: Array(repeating: zero, count: mr * nr)) { kb, acc in
                        let xs = (0..<mr).map { i in g.load(v16f, g.gep(g.f32, x, g.add(g.mul(g.add(m0, g.int(i)), g.int(k)), g.mul(kb, g.int(16))))) }
                        let ws = (0..<nr).map { j in g.load(v16f, g.gep(g.f32, w, g.add(g.mul(g.add(n0, g.int(j)), g.int(k)), g.mul(kb, g.int(16))))) }
                        var next = acc
                        for i in 0..<mr { for j in 0..<nr { next[i * nr + j] = g.fma(xs[i], ws[j], acc[i * nr + j]) } }
                        return next
                    }
                    for i in 0..<mr {
                        for j in 0..<nr {
                            let at = g.add(g.mul(g.add(m0, g.int(i)), g.int(n)), g.add(n0, g.int(j)))
                            g.store(g.reduceAdd(accs[i * nr + j]), out, at: at)
                        }
                    }
                }
            }
        }
    }

    private func scalarLinearF32(_ s: KernelScope, n: Int, k: Int) {
        let out = s.pointer(0), x = s.pointer(1), w = s.pointer(2), m = s.int(3)
        g.loop(from: s.begin, to: s.end) { row in
            g.loop(from: g.int(0), to: m) { token in
                let dot = g.loop(from: g.int(0), to: g.int(k), carrying: [g.float(0)]) { c, acc in
                    [g.fma(g.load(g.f32, x, at: g.add(g.mul(token, g.int(k)), c)), g.load(g.f32, w, at: g.add(g.mul(row, g.int(k)), c)), acc[0])]
                }[0]
                g.store(dot, out, at: g.add(g.mul(token, g.int(n)), row))
            }
        }
    }

    // MARK: Packed weights

    /// Whether `quant.linear` on `type` takes a vector kernel on this target.
    func hasVectorKernel(_ type: PackedWeightType) -> Bool {
        guard avx512, type.bits == 4, type.columns % 32 == 0, type.group % 32 == 0 else { return false }
        return type.nm == nil || type.nm == NMPattern(n: 2, m: 4)
    }

    /// Whether a packed weight reaches the code in `WeightABI.Layout.packedLaneNibbles` (2:4 INT4
    /// with the vector kernel), which every kernel reading it then follows.
    func usesLaneNibbles(_ type: PackedWeightType) -> Bool {
        hasVectorKernel(type) && type.nm == NMPattern(n: 2, m: 4)
    }

    /// slots [out, x, w, scales, zeros (or null), M]; work = rows of w.
    func quantLinear(_ type: PackedWeightType) -> LLVMValueRef {
        let key = "qlinear_\(type.rows)_\(type.columns)_i\(type.bits)_g\(type.group)_\(type.zeroPoint ? "z" : "s")_\(type.nm.map { "\($0.n)_\($0.m)" } ?? "dense")"
        return kernel(key + (hasVectorKernel(type) ? "_avx512" : "_scalar")) { s in
            if hasVectorKernel(type) { vectorQuantLinear(s, type) } else { scalarQuantLinear(s, type) }
        }
    }

    /// 16 floats `scale · (q − zero)` for q = 0 … 7, −8 … −1 (the nibble's two's-complement value).
    private func groupTable(_ s: KernelScope, _ type: PackedWeightType, row: LLVMValueRef, group: LLVMValueRef) -> LLVMValueRef {
        let at = g.add(g.mul(row, g.int(type.groupsPerRow)), group)
        let scale = g.splat(g.load(g.f32, s.pointer(3), at: at), 16)
        var levels = g.constVector((0..<16).map { g.float(Double($0 < 8 ? $0 : $0 - 16)) })
        if type.zeroPoint {
            let zero = g.sitofp(g.load(g.i32, s.pointer(4), at: at), g.f32)
            levels = g.fsub(levels, g.splat(zero, 16))
        }
        return g.fmul(levels, scale)
    }

    private func lookup(_ table: LLVMValueRef, _ nibbles: LLVMValueRef) -> LLVMValueRef {
        g.intrinsic("llvm.x86.avx512.permvar.sf.512", [], [table, nibbles])
    }

    /// Block `b` (32 columns) of `row`, decoded into two 16-lane vectors.
    /// - dense: the 32 weights `scale · (q − zero)`, columns 0–15 and 16–31;
    /// - 2:4: the 16 kept weights and the `vpermi2ps` indices that pick their activations out of the
    ///   block's two 16-column halves. Lane j < 8 holds the first kept value of group j, lane j ≥ 8
    ///   the second of group j − 8; their 2-bit indices sit at bits 4j and 4(j − 8) + 2 of the
    ///   block's 32-bit index word. The pruned weights are never loaded.
    private func decodeBlock(_ s: KernelScope, _ type: PackedWeightType, table: LLVMValueRef, row: LLVMValueRef, block b: LLVMValueRef) -> (LLVMValueRef, LLVMValueRef) {
        let w = s.pointer(2)
        guard type.nm != nil else {
            let bytes = g.load(g.vector(g.i8, 16), g.gep(g.i8, w, g.add(g.mul(row, g.int(type.columns / 2)), g.mul(b, g.int(16)))), align: 1)
            let wide = g.zext(bytes, v16i)
            let even = lookup(table, wide), odd = lookup(table, g.lshr(wide, g.splat(g.i32(4), 16)))
            return (g.shuffle(even, odd, (0..<16).map { $0 % 2 == 0 ? $0 / 2 : 16 + $0 / 2 }),
                    g.shuffle(even, odd, (0..<16).map { $0 % 2 == 0 ? 8 + $0 / 2 : 24 + $0 / 2 }))
        }
        let valueBytesPerRow = type.keptPerRow / 2
        // The block's 8 value bytes (`packedLaneNibbles` order) in every 64-bit lane; 32-bit lane l
        // shifted right by 4 · ⌊l / 2⌋ has its nibble in its low 4 bits, which is all the table
        // lookup reads.
        let values = g.load(g.i64, g.gep(g.i8, w, g.add(g.mul(row, g.int(valueBytesPerRow)), g.mul(b, g.int(8)))), align: 1)
        let lanes = LLVMBuildBitCast(g.builder, g.splat(values, 8), v16i, "")!
        let weights = lookup(table, g.lshr(lanes, g.constVector((0..<16).map { g.i32(4 * ($0 / 2)) })))
        let indexAt = g.add(g.int(type.rows * valueBytesPerRow), g.add(g.mul(row, g.int(type.keptPerRow / 4)), g.mul(b, g.int(4))))
        let word = g.splat(g.load(g.i32, g.gep(g.i8, w, indexAt), align: 1), 16)
        let shifts = g.constVector((0..<16).map { g.i32($0 < 8 ? 4 * $0 : 4 * ($0 - 8) + 2) })
        let groupBase = g.constVector((0..<16).map { g.i32(4 * ($0 % 8)) })
        return (weights, g.or(g.and(g.lshr(word, shifts), g.splat(g.i32(3), 16)), groupBase))
    }

    /// `acc + Σ` over one block of a decoded weight block times one token's activation halves.
    private func blockProduct(_ type: PackedWeightType, _ decoded: (LLVMValueRef, LLVMValueRef), _ halves: (LLVMValueRef, LLVMValueRef), _ acc: LLVMValueRef) -> LLVMValueRef {
        guard type.nm != nil else { return g.fma(decoded.1, halves.1, g.fma(decoded.0, halves.0, acc)) }
        let gathered = g.intrinsic("llvm.x86.avx512.vpermi2var.ps.512", [], [halves.0, decoded.1, halves.1])
        return g.fma(decoded.0, gathered, acc)
    }

    /// The two 16-column halves of block `b` (32 columns) of `token`'s activations.
    private func activationBlock(_ x: LLVMValueRef, k: Int, token: LLVMValueRef, block b: LLVMValueRef) -> (LLVMValueRef, LLVMValueRef) {
        let at = g.add(g.mul(token, g.int(k)), g.mul(b, g.int(32)))
        return (g.load(v16f, g.gep(g.f32, x, at)), g.load(v16f, g.gep(g.f32, x, g.add(at, g.int(16)))))
    }

    /// From this many tokens on, `quant.linear` decodes its weights once into a scratch block and
    /// multiplies register tiles of rows × tokens (`manyTokens`); below, it decodes each block
    /// once per tile of up to 8 tokens (`fewTokens`).
    static let manyTokens = 16

    private func vectorQuantLinear(_ s: KernelScope, _ type: PackedWeightType) {
        g.ifElse(g.icmp(LLVMIntSGE, s.int(5), g.int(Self.manyTokens)), { manyTokens(s, type) }, else: { fewTokens(s, type) })
    }

    /// Rows in blocks of 32 whose packed weights stay in L2 while every tile of up to 8 tokens
    /// passes over them (the tokens' activations then stay in L1/L2 too, instead of streaming from
    /// memory once per row); each block is decoded once per tile.
    private func fewTokens(_ s: KernelScope, _ type: PackedWeightType) {
        let out = s.pointer(0), x = s.pointer(1), m = s.int(5)
        let k = type.columns, blocks = k / 32, blocksPerGroup = type.group / 32
        let rowBlock = 32
        g.loop(from: s.begin, to: s.end, step: rowBlock) { blockStart in
            let blockEnd = g.smin(g.add(blockStart, g.int(rowBlock)), s.end)
            tiled(g.int(0), m, by: 8) { m0, mt in
                g.loop(from: blockStart, to: blockEnd) { row in
                    // Each token sums into a ring of `ring` accumulators, one block each in turn,
                    // so that with 1 or 2 tokens consecutive FMAs do not wait on each other (an
                    // FMA takes 4 cycles; one chain would bound M = 1 at 4 cycles a block).
                    let ring = max(1, 4 / mt)
                    let zero = g.splat(g.float(0), 16)
                    let accs = g.loop(from: g.int(0), to: g.int(type.groupsPerRow), carrying: Array(repeating: zero, count: mt * ring)) { group, acc in
                        let table = groupTable(s, type, row: row, group: group)
                        let first = g.mul(group, g.int(blocksPerGroup))
                        let last = g.smin(g.add(first, g.int(blocksPerGroup)), g.int(blocks))
                        return g.loop(from: first, to: last, carrying: acc) { b, acc in
                            let decoded = decodeBlock(s, type, table: table, row: row, block: b)
                            return (0..<mt).flatMap { t in
                                let sum = blockProduct(type, decoded, activationBlock(x, k: k, token: g.add(m0, g.int(t)), block: b), acc[t * ring])
                                return Array(acc[t * ring + 1 ..< (t + 1) * ring]) + [sum]
                            }
                        }
                    }
                    for t in 0..<mt {
                        let sum = accs[t * ring ..< (t + 1) * ring].dropFirst().reduce(accs[t * ring]) { g.fadd($0, $1) }
                        g.store(g.reduceAdd(sum), out, at: g.add(g.mul(g.add(m0, g.int(t)), g.int(type.rows)), row))
                    }
                }
            }
        }
    }

    /// Many tokens. A thread takes its rows 16 at a time and the columns up to 512 at a time (a chunk):
    /// the chunk's weights are decoded once into a 32 KB scratch block (`decodeBlock`'s two
    /// vectors per row and 32 columns), which then stays in L1 while every tile of 4 tokens × 4
    /// rows multiplies it. Per 32 columns a tile loads 8 decoded vectors and 8 activation halves
    /// for 16 `vpermi2ps` + 16 FMAs (2:4) or 32 FMAs (dense). Partial sums of each chunk are added
    /// into the output.
    private func manyTokens(_ s: KernelScope, _ type: PackedWeightType) {
        let out = s.pointer(0), x = s.pointer(1), m = s.int(5)
        let k = type.columns, blocks = k / 32, blocksPerGroup = type.group / 32
        // Chunks of at most 16 blocks, of equal size (576 columns: 2 × 9 blocks, not 16 + 2).
        let chunks = (blocks + 15) / 16, chunk = (blocks + chunks - 1) / chunks
        let rowsPerPass = 16, entryBytes = 128
        let second = type.nm == nil ? v16f : v16i
        let scratch = g.alloca(g.i8, count: rowsPerPass * chunk * entryBytes)
        let entry = { (r: LLVMValueRef, b: LLVMValueRef) in
            self.g.gep(self.g.i8, scratch, self.g.mul(self.g.add(self.g.mul(r, self.g.int(chunk)), b), self.g.int(entryBytes)))
        }
        g.loop(from: s.begin, to: s.end, step: rowsPerPass) { passStart in
            let passEnd = g.smin(g.add(passStart, g.int(rowsPerPass)), s.end)
            g.loop(from: g.int(0), to: g.int(blocks), step: chunk) { first in
                let count = g.smin(g.int(chunk), g.sub(g.int(blocks), first))
                g.loop(from: passStart, to: passEnd) { row in
                    g.loop(from: g.int(0), to: count) { i in
                        let b = g.add(first, i)
                        let table = groupTable(s, type, row: row, group: g.sdiv(b, g.int(blocksPerGroup)))
                        let decoded = decodeBlock(s, type, table: table, row: row, block: b)
                        let at = entry(g.sub(row, passStart), i)
                        g.store(decoded.0, at, align: 64)
                        g.store(decoded.1, g.gep(g.i8, at, g.int(64)), align: 64)
                    }
                }
                tiled(g.int(0), m, by: 4) { t0, tokens in
                    tiled(passStart, passEnd, by: 4) { r0, rows in
                        let zero = g.splat(g.float(0), 16)
                        let accs = g.loop(from: g.int(0), to: count, carrying: Array(repeating: zero, count: rows * tokens)) { i, acc in
                            let g = self.g
                            let decoded = (0..<rows).map { r in
                                let at = entry(g.add(g.sub(r0, passStart), g.int(r)), i)
                                return (g.load(self.v16f, at, align: 64), g.load(second, g.gep(g.i8, at, g.int(64)), align: 64))
                            }
                            var next = acc
                            for t in 0..<tokens {
                                let halves = activationBlock(x, k: k, token: g.add(t0, g.int(t)), block: g.add(first, i))
                                for r in 0..<rows { next[r * tokens + t] = blockProduct(type, decoded[r], halves, acc[r * tokens + t]) }
                            }
                            return next
                        }
                        for r in 0..<rows {
                            for t in 0..<tokens {
                                let at = g.add(g.mul(g.add(t0, g.int(t)), g.int(type.rows)), g.add(r0, g.int(r)))
                                let earlier = g.select(g.icmp(LLVMIntEQ, first, g.int(0)), g.float(0), g.load(g.f32, out, at: at))
                                g.store(g.fadd(earlier, g.reduceAdd(accs[r * tokens + t])), out, at: at)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Value `j` of row `row` (two's complement, `bits` wide) and, with N:M, its column.
    private func packedElement(_ w: LLVMValueRef, _ type: PackedWeightType, row: LLVMValueRef, j: LLVMValueRef) -> (value: LLVMValueRef, column: LLVMValueRef) {
        let kept = type.keptPerRow, bits = type.bits
        let ordinal = g.add(g.mul(row, g.int(kept)), j)
        var position = ordinal
        if usesLaneNibbles(type) {
            // `WeightABI.laneNibble` within each 16-value word.
            let o = g.and(ordinal, g.int(15))
            let lane = g.add(g.lshr(o, g.int(1)), g.mul(g.and(o, g.int(1)), g.int(8)))
            position = g.add(g.sub(ordinal, o), g.add(g.lshr(lane, g.int(1)), g.mul(g.and(lane, g.int(1)), g.int(8))))
        }
        let bitOffset = g.mul(position, g.int(bits))
        let byte = g.zext(g.load(g.i8, w, at: g.lshr(bitOffset, g.int(3)), align: 1), g.i32)
        let raw = g.lshr(byte, g.trunc(g.and(bitOffset, g.int(7)), g.i32))
        let value = g.ashr(g.shl(raw, g.i32(32 - bits)), g.i32(32 - bits))
        guard let nm = type.nm else { return (value, j) }
        let indexBits = (nm.m - 1).bitWidthNeeded
        let sectionBits = (type.rows * kept * bits + 7) / 8 * 8
        let at = g.add(g.int(sectionBits), g.mul(ordinal, g.int(indexBits)))
        // An index may straddle two bytes (3-bit indices); packed weights are padded by the runtime.
        let pair = g.zext(g.load(g.i16, g.gep(g.i8, w, g.lshr(at, g.int(3))), align: 1), g.i32)
        let index = g.and(g.lshr(pair, g.trunc(g.and(at, g.int(7)), g.i32)), g.i32((1 << indexBits) - 1))
        let column = g.add(g.mul(g.sdiv(j, g.int(nm.n)), g.int(nm.m)), g.sext(index, g.i64))
        return (value, column)
    }

    private func dequantized(_ s: KernelScope, _ type: PackedWeightType, scalesSlot: Int, row: LLVMValueRef, j: LLVMValueRef) -> (LLVMValueRef, LLVMValueRef) {
        let (q, column) = packedElement(s.pointer(scalesSlot - 1), type, row: row, j: j)
        let at = g.add(g.mul(row, g.int(type.groupsPerRow)), g.sdiv(column, g.int(type.group)))
        var level = q
        if type.zeroPoint { level = g.sub(q, g.load(g.i32, s.pointer(scalesSlot + 1), at: at)) }
        return (g.fmul(g.sitofp(level, g.f32), g.load(g.f32, s.pointer(scalesSlot), at: at)), column)
    }

    private func scalarQuantLinear(_ s: KernelScope, _ type: PackedWeightType) {
        let out = s.pointer(0), x = s.pointer(1), m = s.int(5)
        g.loop(from: s.begin, to: s.end) { row in
            g.loop(from: g.int(0), to: m) { token in
                let dot = g.loop(from: g.int(0), to: g.int(type.keptPerRow), carrying: [g.float(0)]) { j, acc in
                    let (weight, column) = dequantized(s, type, scalesSlot: 3, row: row, j: j)
                    return [g.fma(weight, g.load(g.f32, x, at: g.add(g.mul(token, g.int(type.columns)), column)), acc[0])]
                }[0]
                g.store(dot, out, at: g.add(g.mul(token, g.int(type.rows)), row))
            }
        }
    }

    /// slots [out, w, scales, zeros (or null)]; work = rows: `quant.dequant` to a dense f32 matrix.
    func dequantize(_ type: PackedWeightType) -> LLVMValueRef {
        kernel("dequant_\(type.rows)_\(type.columns)_i\(type.bits)_g\(type.group)_\(type.zeroPoint ? "z" : "s")_\(type.nm.map { "\($0.n)_\($0.m)" } ?? "dense")") { s in
            let out = s.pointer(0)
            g.loop(from: s.begin, to: s.end) { row in
                let base = g.mul(row, g.int(type.columns))
                if type.nm != nil { g.loop(type.columns) { c in g.store(g.float(0), out, at: g.add(base, c)) } }
                g.loop(type.keptPerRow) { j in
                    let (weight, column) = dequantized(s, type, scalesSlot: 2, row: row, j: j)
                    g.store(weight, out, at: g.add(base, column))
                }
            }
        }
    }
}

extension Int {
    /// Bits needed to write this non-negative number (at least 1).
    var bitWidthNeeded: Int { Swift.max(1, Int.bitWidth - self.leadingZeroBitCount) }
}
