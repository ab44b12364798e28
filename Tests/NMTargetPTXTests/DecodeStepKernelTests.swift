import Foundation
import Testing
@testable import NMTargetPTX

/// The decode-step kernels' and the synthetic-weight generators' PTX is well formed: one entry
/// of the expected name, parameters declared and read by name, every register used within its
/// declaration, balanced braces, and the instructions the design relies on.
@Suite struct DecodeStepKernelTests {
    /// Checks the structure of one entry's text; returns it for further expectations.
    @discardableResult
    func checkWellFormed(_ entry: String, _ text: String, parameters: [String]) -> String {
        #expect(text.hasPrefix(".visible .entry \(entry)("), "\(entry): the text opens with its entry")
        #expect(text.filter { $0 == "{" }.count == text.filter { $0 == "}" }.count, "\(entry): braces balance")
        #expect(text.hasSuffix("    ret;\n}\n"), "\(entry): ends with ret")
        for p in parameters {
            #expect(text.contains(".param .") && text.contains(" \(entry)_\(p)"), "\(entry): declares parameter \(p)")
            #expect(text.contains("[\(entry)_\(p)]"), "\(entry): reads parameter \(p)")
        }
        // Every %kindN used is below the declared count of its kind.
        var declared: [String: Int] = [:]
        for line in text.split(separator: "\n") where line.contains(".reg .") {
            let parts = line.split(separator: "%")
            guard parts.count == 2, let open = parts[1].firstIndex(of: "<"), let close = parts[1].firstIndex(of: ">") else { continue }
            declared[String(parts[1][..<open])] = Int(parts[1][parts[1].index(after: open)..<close])
        }
        for kind in ["p", "h", "r", "rd", "f"] {
            var highest = -1
            var rest = Substring(text)
            while let at = rest.range(of: "%" + kind) {
                let digits = rest[at.upperBound...].prefix { $0.isNumber }
                if let n = Int(digits) { highest = max(highest, n) }
                rest = rest[at.upperBound...]
            }
            if highest >= 0 { #expect(highest < declared[kind, default: 0], "\(entry): %\(kind)\(highest) beyond its declaration") }
        }
        return text
    }

    @Test func decodeStepKernelsAreWellFormed() throws {
        let e = DecodeStepKernels.embedding(dim: 576)
        checkWellFormed(e.entry, e.ptx, parameters: ["table", "state", "out"])
        #expect(e.ptx.contains(", 2304;"))  // the token's row: 576 f32 = 2304 bytes
        let n = DecodeStepKernels.rmsNorm(dim: 576, padded: 640, eps: 1e-5, add: true)
        #expect(n.entry == "nm_rms_norm_d576_p640_add")
        checkWellFormed(n.entry, n.ptx, parameters: ["x", "y", "sum", "w", "out"])
        #expect(n.ptx.contains("shfl.sync.bfly.b32") && n.ptx.contains("sqrt.rn.f32") && n.ptx.contains("bar.sync 0;"))
        #expect(n.ptx.contains(", 640;"))  // the padding columns (576…639) get 0
        let plain = DecodeStepKernels.rmsNorm(dim: 4096, padded: 4096, eps: 1e-6, add: false)
        checkWellFormed(plain.entry, plain.ptx, parameters: ["x", "w", "out"])
        #expect(!plain.ptx.contains("st.global.f32"))  // no residual sum without the add
        for interleaved in [false, true] {
            let r = DecodeStepKernels.rope(heads: 9, headDim: 64, interleaved: interleaved)
            checkWellFormed(r.entry, r.ptx, parameters: ["x", "out", "table", "state", "row"])
            #expect(r.ptx.contains("ld.global.v2.f32"))  // (cos, sin) from the table
            // Pairs: (2i, 2i + 1) interleaved, (i, i + D/2) rotate-half.
            #expect(r.ptx.contains(interleaved ? ", 1;\n    ld.global.u32" : ", 32;\n    ld.global.u32"))
        }
        let kv = DecodeStepKernels.kvStore(elements: 192)
        checkWellFormed(kv.entry, kv.ptx, parameters: ["x", "cache", "state"])
        let a = try DecodeStepKernels.attention(heads: 9, kvHeads: 3, headDim: 64, capacity: 256)
        checkWellFormed(a.entry, a.ptx, parameters: ["q", "k", "v", "out", "state", "scale"])
        #expect(a.ptx.contains("div.u32 %r2, %r1, 3;"))  // GQA: query head h (ctaid) reads kv head h / 3
        #expect(a.ptx.contains("ex2.approx.ftz.f32") && a.ptx.contains("ld.global.v4.f32"))
        #expect(a.ptx.contains(".shared .align 16 .b8 \(a.entry)_sc[1024];"))  // 256 f32 scores
        // Flash decoding: 4 splits, partials through scratch, the last block of a head combines.
        let split = try DecodeStepKernels.attention(heads: 32, kvHeads: 32, headDim: 128, capacity: 256, splits: 4)
        #expect(split.entry == "nm_attention_hq32_hkv32_d128_c256_s4")
        checkWellFormed(split.entry, split.ptx, parameters: ["q", "k", "v", "out", "state", "scale", "scratch"])
        #expect(split.ptx.contains("mov.u32 %r5, %ctaid.y;") && split.ptx.contains("div.u32 %r6, %r6, 4;"))  // ⌈count / 4⌉
        #expect(split.ptx.contains("membar.gl;") && split.ptx.contains("atom.global.add.u32"))
        #expect(split.ptx.contains("setp.ne.u32 %p") && split.ptx.contains(", 3;"))   // the fourth to finish combines
        #expect(split.ptx.contains("add.u32 %r") && split.ptx.contains(", 16640;"))   // counters after 32·4·130 partial floats
        #expect(split.ptx.components(separatedBy: "ld.global.cg.f32").count == 5)      // one partial value per split
        let s = DecodeStepKernels.siluMul(elements: 1536)
        checkWellFormed(s.entry, s.ptx, parameters: ["gate", "up", "out"])
    }

    @Test func attentionRefusesShapesItCannotTake() {
        #expect(throws: PTXError.self) { try DecodeStepKernels.attention(heads: 8, kvHeads: 8, headDim: 512, capacity: 128) }
        #expect(throws: PTXError.self) { try DecodeStepKernels.attention(heads: 8, kvHeads: 8, headDim: 64, capacity: 16384) }
        #expect(throws: PTXError.self) { try DecodeStepKernels.attention(heads: 6, kvHeads: 4, headDim: 64, capacity: 128) }
    }

    @Test func generatorsAreWellFormed() {
        for kind in SyntheticWeightKernels.Kind.allCases {
            let text = SyntheticWeightKernels.ptx(kind)
            checkWellFormed(SyntheticWeightKernels.entry(kind), text, parameters: ["out", "words", "rows", "columns", "padded", "kv", "kp", "ks", "e"])
            #expect(text.contains("mul.lo.u32 %r") && text.contains("0x85EBCA6B") && text.contains("0xC2B2AE35"), "\(kind): the murmur3 finalizer")
        }
        #expect(SyntheticWeightKernels.ptx(.sparseValues).contains("rem.u32"))  // one of six pairs
        #expect(SyntheticWeightKernels.ptx(.fp16Layout).contains("cvt.rn.f16.f32"))
    }

    @Test func ropeTableMatchesTheInterpretersAngles() {
        let t = DecodeStepKernels.ropeTable(theta: 10000, headDim: 8, capacity: 3)
        #expect(t.count == 3 * 8)
        #expect(t[0] == 1 && t[1] == 0)                  // position 0: cos 1, sin 0
        #expect(t[8] == Float(cos(1.0)) && t[9] == Float(sin(1.0)))  // position 1, i = 0: angle 1
        #expect(t[8 + 2] == Float(cos(pow(10000.0, -0.25))))          // position 1, i = 1
    }
}
