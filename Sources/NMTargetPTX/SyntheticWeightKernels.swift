/// Helpers for the small kernels (decode-step ops, weight generators): an entry's text from a
/// builder, parameters, the global thread index and the synthetic-weight hash.
extension PTXBuilder {
    /// `.visible .entry NAME(params) { decls; shared; body }` with `threads` threads a block.
    func entryText(_ name: String, params: [(String, String)], threads: Int, shared: [String] = []) -> String {
        let p = params.enumerated().map { i, item in
            "    .param .\(item.1) \(name)_\(item.0)\(i + 1 < params.count ? "," : "")"
        }
        return ([".visible .entry \(name)("] + p + [")", ".maxntid \(threads), 1, 1", "{"]
                + declarations + shared.map { "    " + $0 } + body + ["    ret;", "}", ""]).joined(separator: "\n")
    }

    /// Loads a u64 pointer parameter and converts it to a global address.
    mutating func pointerParam(_ entry: String, _ name: String) -> String {
        let r = reg("rd")
        emit("ld.param.u64 \(r), [\(entry)_\(name)];")
        emit("cvta.to.global.u64 \(r), \(r);")
        return r
    }

    mutating func u32Param(_ entry: String, _ name: String) -> String {
        let r = reg("r")
        emit("ld.param.u32 \(r), [\(entry)_\(name)];")
        return r
    }

    mutating func f32Param(_ entry: String, _ name: String) -> String {
        let r = reg("f")
        emit("ld.param.f32 \(r), [\(entry)_\(name)];")
        return r
    }

    /// ctaid.x · threads + tid.x; returns to `exit` when it is ≥ `count`.
    mutating func globalIndex(threads: Int, count: String, exit: String) -> String {
        let i = reg("r"), c = reg("r"), p = reg("p")
        emit("mov.u32 \(i), %tid.x;")
        emit("mov.u32 \(c), %ctaid.x;")
        emit("mad.lo.u32 \(i), \(c), \(threads), \(i);")
        emit("setp.ge.u32 \(p), \(i), \(count);")
        emit("@\(p) bra \(exit);")
        return i
    }

    /// `base + index · scale` as a 64-bit address.
    mutating func element(_ base: String, _ index: String, _ scale: Int) -> String {
        let wide = reg("rd"), out = reg("rd")
        emit("mul.wide.u32 \(wide), \(index), \(scale);")
        emit("add.s64 \(out), \(base), \(wide);")
        return out
    }

    /// SyntheticWeights.hash(key, index) in registers.
    mutating func syntheticHash(_ key: String, _ index: String) -> String {
        let h = reg("r"), t = reg("r")
        emit("mad.lo.u32 \(h), \(index), 0x9E3779B1, \(key);")
        emit("shr.u32 \(t), \(h), 16;")
        emit("xor.b32 \(h), \(h), \(t);")
        emit("mul.lo.u32 \(h), \(h), 0x85EBCA6B;")
        emit("shr.u32 \(t), \(h), 13;")
        emit("xor.b32 \(h), \(h), \(t);")
        emit("mul.lo.u32 \(h), \(h), 0xC2B2AE35;")
        emit("shr.u32 \(t), \(h), 16;")
        emit("xor.b32 \(h), \(h), \(t);")
        return h
    }
}

/// GPU generators of `SyntheticWeights`: each thread writes one u32 word of a weight buffer in
/// the layout its kernel reads (KernelWeightLayout, SparseWeightLayout), evaluating the same
/// functions as the Swift side, so a 7B-shaped model's weights are made on the GPU in
/// milliseconds instead of being copied. 256 threads a block, grid ⌈words / 256⌉. Every
/// generator takes (out, words, rows, columns, padded columns, key(s), exponent) as u64 then u32s.
public enum SyntheticWeightKernels {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// f32 row-major (the embedding table): element index = word index.
        case f32Table
        /// KernelWeightLayout.fp16: two f16 per word.
        case fp16Layout
        /// KernelWeightLayout.int4Dense: eight nibbles per word.
        case int4Layout
        /// KernelWeightLayout.scales: two f16 scales per word.
        case scales
        /// KernelWeightLayout.int4Sparse24Values.
        case sparseValues
        /// KernelWeightLayout.int4Sparse24Metadata (rowsInHalves).
        case sparseMetadata
    }

    public static let threads = 256

    public static func entry(_ kind: Kind) -> String { "nm_synth_\(kind.rawValue)" }

    /// Words of a weight buffer of this kind for `rows × paddedColumns`.
    public static func words(_ kind: Kind, rows: Int, paddedColumns k: Int) -> Int {
        switch kind {
        case .f32Table: return rows * k
        case .fp16Layout: return rows * k / 2
        case .int4Layout: return rows * k / 8
        case .scales: return rows / 2 * (k / 128)
        case .sparseValues: return rows * k / 16
        case .sparseMetadata: return rows / 16 * (k / 128) * 64
        }
    }

    /// Parameters: out (u64), words, rows, columns, padded, key values, key pairs, key scales, exponent (u32).
    public static func ptx(_ kind: Kind) -> String {
        let name = entry(kind)
        var b = PTXBuilder()
        let out = b.pointerParam(name, "out")
        let words = b.u32Param(name, "words")
        _ = b.u32Param(name, "rows")
        let columns = b.u32Param(name, "columns")
        let padded = b.u32Param(name, "padded")
        let kv = b.u32Param(name, "kv"), kp = b.u32Param(name, "kp"), ks = b.u32Param(name, "ks")
        let exponent = b.u32Param(name, "e")
        let exit = b.label("exit")
        let w = b.globalIndex(threads: threads, count: words, exit: exit)
        let units = b.reg("r")
        b.emit("shr.u32 \(units), \(padded), 7;")
        let zero = b.constant(0), four = b.constant(4), eight = b.constant(8), c19 = b.constant(19), c117 = b.constant(117)
        let pairTable = b.constant(0xED9C84)

        // q(row, col) + 8 as a nibble (8 past `columns`).
        func nibble(_ row: String, _ col: String) -> String {
            let n = b.reg("r"), idx = b.reg("r"), p = b.reg("p")
            b.emit("mad.lo.u32 \(idx), \(row), \(columns), \(col);")
            let h = b.syntheticHash(kv, idx)
            b.emit("shr.u32 \(n), \(h), 28;")  // q = (h >> 28) − 8, stored as q + 8; −8 is made 0
            b.emit("setp.eq.u32 \(p), \(n), 0;")
            b.emit("selp.b32 \(n), \(eight), \(n), \(p);")
            b.emit("setp.ge.u32 \(p), \(col), \(columns);")
            b.emit("selp.b32 \(n), \(eight), \(n), \(p);")
            return n
        }
        // f32 dense value k · 2^−(10+e), 0 past `columns`.
        func dense(_ row: String, _ col: String, scale: String) -> String {
            let idx = b.reg("r"), k = b.reg("r"), f = b.reg("f"), p = b.reg("p")
            b.emit("mad.lo.u32 \(idx), \(row), \(columns), \(col);")
            let h = b.syntheticHash(kv, idx)
            b.emit("shr.u32 \(k), \(h), 21;")
            b.emit("sub.s32 \(k), \(k), 1024;")
            b.emit("setp.eq.s32 \(p), \(k), -1024;")
            b.emit("selp.b32 \(k), \(zero), \(k), \(p);")
            b.emit("cvt.rn.f32.s32 \(f), \(k);")
            b.emit("mul.rn.f32 \(f), \(f), \(scale);")
            b.emit("setp.ge.u32 \(p), \(col), \(columns);")
            b.emit("selp.b32 \(f), \(zero), \(f), \(p);")
            return f
        }
        // 2^−(10+e) as f32 bits: (127 − 10 − e) << 23.
        func denseScale() -> String {
            let bits = b.reg("r"), f = b.reg("f")
            b.emit("sub.u32 \(bits), \(c117), \(exponent);")
            b.emit("shl.b32 \(bits), \(bits), 23;")
            b.emit("mov.b32 \(f), \(bits);")
            return f
        }
        // The 2:4 pair code of (row, group4): (0, 1) = 0x4 past `columns`.
        func pairCode(_ row: String, _ group4: String) -> String {
            let quarter = b.reg("r"), idx = b.reg("r"), code = b.reg("r"), p = b.reg("p"), c4 = b.reg("r")
            b.emit("shr.u32 \(quarter), \(columns), 2;")
            b.emit("mad.lo.u32 \(idx), \(row), \(quarter), \(group4);")
            let h = b.syntheticHash(kp, idx)
            b.emit("rem.u32 \(code), \(h), 6;")
            b.emit("shl.b32 \(code), \(code), 2;")
            b.emit("shr.u32 \(code), \(pairTable), \(code);")
            b.emit("and.b32 \(code), \(code), 15;")
            b.emit("shl.b32 \(c4), \(group4), 2;")
            b.emit("setp.ge.u32 \(p), \(c4), \(columns);")
            b.emit("selp.b32 \(code), \(four), \(code), \(p);")
            return code
        }
        // Lane fields: g = lane / 4, t = lane % 4.
        func laneFields(_ lane: String) -> (String, String) {
            let g = b.reg("r"), t = b.reg("r")
            b.emit("shr.u32 \(g), \(lane), 2;")
            b.emit("and.b32 \(t), \(lane), 3;")
            return (g, t)
        }
        // Block index → (tile, unit).
        func tileUnit(_ block: String) -> (String, String) {
            let tile = b.reg("r"), unit = b.reg("r")
            b.emit("div.u32 \(tile), \(block), \(units);")
            b.emit("rem.u32 \(unit), \(block), \(units);")
            return (tile, unit)
        }
        func field(_ shift: Int, _ mask: Int) -> String {
            let r = b.reg("r")
            if shift > 0 { b.emit("shr.u32 \(r), \(w), \(shift);") } else { b.emit("mov.u32 \(r), \(w);") }
            if mask > 0 { b.emit("and.b32 \(r), \(r), \(mask);") }
            return r
        }
        let addr = b.element(out, w, 4)
        let word = b.reg("r")
        b.emit("mov.u32 \(word), 0;")

        switch kind {
        case .f32Table:
            let row = b.reg("r"), col = b.reg("r")
            b.emit("div.u32 \(row), \(w), \(columns);")
            b.emit("rem.u32 \(col), \(w), \(columns);")
            let f = dense(row, col, scale: denseScale())
            b.emit("mov.b32 \(word), \(f);")
        case .fp16Layout:
            // ((((T·U + u)·2 + h)·4 + s)·32 + lane)·4 + i
            let i = field(0, 3), lane = field(2, 31), s = field(7, 3), h = field(9, 1), block = field(10, 0)
            let (g, t) = laneFields(lane)
            let (tile, unit) = tileUnit(block)
            let row = b.reg("r"), col = b.reg("r"), tmp = b.reg("r"), col1 = b.reg("r")
            b.emit("and.b32 \(tmp), \(i), 1;")
            b.emit("mad.lo.u32 \(row), \(tmp), 8, \(g);")
            b.emit("mad.lo.u32 \(row), \(tile), 16, \(row);")
            b.emit("shr.u32 \(tmp), \(i), 1;")
            b.emit("shl.b32 \(col), \(tmp), 1;")
            b.emit("mad.lo.u32 \(col), \(s), 4, \(col);")
            b.emit("mad.lo.u32 \(col), \(t), 16, \(col);")
            b.emit("mad.lo.u32 \(col), \(h), 64, \(col);")
            b.emit("mad.lo.u32 \(col), \(unit), 128, \(col);")
            b.emit("add.u32 \(col1), \(col), 1;")
            let scale = denseScale()
            let lo = dense(row, col, scale: scale), hi = dense(row, col1, scale: scale)
            let hl = b.reg("h"), hh = b.reg("h")
            b.emit("cvt.rn.f16.f32 \(hl), \(lo);")
            b.emit("cvt.rn.f16.f32 \(hh), \(hi);")
            b.emit("mov.b32 \(word), {\(hl), \(hh)};")
        case .int4Layout:
            // (((T·U + u)·2 + h)·32 + lane)·4 + s; register i: rows g + 8(i%2), columns … + 2(i/2)
            let s = field(0, 3), lane = field(2, 31), h = field(7, 1), block = field(8, 0)
            let (g, t) = laneFields(lane)
            let (tile, unit) = tileUnit(block)
            let base = b.reg("r"), row0 = b.reg("r"), row1 = b.reg("r")
            b.emit("mul.lo.u32 \(base), \(s), 4;")
            b.emit("mad.lo.u32 \(base), \(t), 16, \(base);")
            b.emit("mad.lo.u32 \(base), \(h), 64, \(base);")
            b.emit("mad.lo.u32 \(base), \(unit), 128, \(base);")
            b.emit("mad.lo.u32 \(row0), \(tile), 16, \(g);")
            b.emit("add.u32 \(row1), \(row0), 8;")
            for i in 0..<4 {
                let col = b.reg("r"), col1 = b.reg("r")
                b.emit("add.u32 \(col), \(base), \(2 * (i / 2));")
                b.emit("add.u32 \(col1), \(col), 1;")
                let row = i % 2 == 0 ? row0 : row1
                for (c, shift) in [(col, 4 * i), (col1, 16 + 4 * i)] {
                    let n = nibble(row, c)
                    b.emit("shl.b32 \(n), \(n), \(shift);")
                    b.emit("or.b32 \(word), \(word), \(n);")
                }
            }
        case .scales:
            // (T·U + u)·8 + g: rows g (low) and g + 8 (high) of the unit's group.
            let g = field(0, 7), block = field(3, 0)
            let (tile, unit) = tileUnit(block)
            for (k, shift) in [(0, 0), (8, 16)] {
                let row = b.reg("r"), idx = b.reg("r"), bits = b.reg("r"), e = b.reg("r")
                b.emit("mad.lo.u32 \(row), \(tile), 16, \(g);")
                b.emit("add.u32 \(row), \(row), \(k);")
                b.emit("mad.lo.u32 \(idx), \(row), \(units), \(unit);")
                let hsh = b.syntheticHash(ks, idx)
                b.emit("shr.u32 \(bits), \(hsh), 28;")
                b.emit("shl.b32 \(bits), \(bits), 6;")
                b.emit("sub.u32 \(e), \(c19), \(exponent);")
                b.emit("shl.b32 \(e), \(e), 10;")
                b.emit("or.b32 \(bits), \(bits), \(e);")
                if shift > 0 { b.emit("shl.b32 \(bits), \(bits), \(shift);") }
                b.emit("or.b32 \(word), \(word), \(bits);")
            }
        case .sparseValues:
            // ((T·U + u)·32 + lane)·4 + s; register i: row g + 8(i%2), group4 u·32 + 8s + t + 4(i/2)
            let s = field(0, 3), lane = field(2, 31), block = field(7, 0)
            let (g, t) = laneFields(lane)
            let (tile, unit) = tileUnit(block)
            let base = b.reg("r"), row0 = b.reg("r"), row1 = b.reg("r")
            b.emit("mad.lo.u32 \(base), \(unit), 32, \(t);")
            b.emit("mad.lo.u32 \(base), \(s), 8, \(base);")
            b.emit("mad.lo.u32 \(row0), \(tile), 16, \(g);")
            b.emit("add.u32 \(row1), \(row0), 8;")
            for i in 0..<4 {
                let group4 = b.reg("r")
                b.emit("add.u32 \(group4), \(base), \(4 * (i / 2));")
                let row = i % 2 == 0 ? row0 : row1
                let code = pairCode(row, group4)
                let first = b.reg("r"), second = b.reg("r"), col0 = b.reg("r")
                b.emit("and.b32 \(first), \(code), 3;")
                b.emit("shr.u32 \(second), \(code), 2;")
                b.emit("shl.b32 \(col0), \(group4), 2;")
                b.emit("add.u32 \(first), \(first), \(col0);")
                b.emit("add.u32 \(second), \(second), \(col0);")
                for (c, shift) in [(first, 4 * i), (second, 16 + 4 * i)] {
                    let n = nibble(row, c)
                    b.emit("shl.b32 \(n), \(n), \(shift);")
                    b.emit("or.b32 \(word), \(word), \(n);")
                }
            }
        case .sparseMetadata:
            // ((T·U + u)·32 + lane)·2 + k: step (t < 2 ? 0 : 2) + k, half t % 2, rows g and g + 8.
            let k = field(0, 1), lane = field(1, 31), block = field(6, 0)
            let (g, t) = laneFields(lane)
            let (tile, unit) = tileUnit(block)
            let step = b.reg("r"), hi = b.reg("r"), base = b.reg("r"), row0 = b.reg("r"), tmp = b.reg("r")
            b.emit("shr.u32 \(tmp), \(t), 1;")
            b.emit("mad.lo.u32 \(step), \(tmp), 2, \(k);")
            b.emit("and.b32 \(hi), \(t), 1;")
            b.emit("mul.lo.u32 \(base), \(unit), 32;")
            b.emit("mad.lo.u32 \(base), \(step), 8, \(base);")
            b.emit("mad.lo.u32 \(base), \(hi), 4, \(base);")
            b.emit("mad.lo.u32 \(row0), \(tile), 16, \(g);")
            for (rowOffset, shift) in [(0, 0), (8, 16)] {
                let row = b.reg("r")
                b.emit("add.u32 \(row), \(row0), \(rowOffset);")
                for c in 0..<4 {
                    let group4 = b.reg("r")
                    b.emit("add.u32 \(group4), \(base), \(c);")
                    let code = pairCode(row, group4)
                    b.emit("shl.b32 \(code), \(code), \(shift + 4 * c);")
                    b.emit("or.b32 \(word), \(word), \(code);")
                }
            }
        }
        b.emit("st.global.b32 [\(addr)], \(word);")
        b.place(exit)
        return b.entryText(name, params: [("out", "u64"), ("words", "u32"), ("rows", "u32"), ("columns", "u32"), ("padded", "u32"),
                                          ("kv", "u32"), ("kp", "u32"), ("ks", "u32"), ("e", "u32")],
                           threads: threads)
    }

    /// Every generator, for one module.
    public static var allEntries: [String] { Kind.allCases.map(ptx) }
}
