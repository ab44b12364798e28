import Foundation
import Testing
import NMIR
import NMInterpreter
import NMPasses
import NMRuntime

/// Every op compiled by the CPU backend against the interpreter, on random shapes and values.
/// The seed is in every failure message; rerun one case with its seed to replay it.
@Suite struct CPUOpTests {
    static let seeds: [UInt64] = [1, 2, 3]

    @Test(arguments: seeds) func elementwiseWithBroadcasting(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let t = Int.random(in: 1...9, using: &rng), c = Int.random(in: 1...40, using: &rng)
        let text = """
        func @example(%a: tensor<?x\(c)xf32>, %b: tensor<\(c)xf32>, %col: tensor<?x1xf32>, %row: tensor<1x\(c)xf32>)
            -> (tensor<?x\(c)xf32>, tensor<?x\(c)xf32>, tensor<?x\(c)xf32>, tensor<?x\(c)xf32>, tensor<?x\(c)xf32>) {
          %s = nn.add %a, %b : tensor<?x\(c)xf32>
          %d = nn.sub %b, %a : tensor<?x\(c)xf32>
          %m = nn.mul %a, %a : tensor<?x\(c)xf32>
          %q = nn.div %col, %row : tensor<?x\(c)xf32>
          %y = nn.silu %m : tensor<?x\(c)xf32>
          return %s, %d, %m, %q, %y
        }
        """
        let args = [Tensor(shape: [t, c], floats: randomFloats(t * c, &rng)), Tensor(shape: [c], floats: randomFloats(c, &rng)),
                    Tensor(shape: [t, 1], floats: randomFloats(t, &rng)), Tensor(shape: [1, c], floats: randomFloats(c, &rng, range: 0.5...2))]
        try expectCPUMatchesInterpreter(text, arguments: args, context: "seed \(seed): t \(t) c \(c)")
    }

    /// The kernels' exponential (`IRGen.expF32`, a polynomial in vector code) through silu and
    /// softmax, against double precision, from far below the smallest normal e^x to overflow.
    @Test func exponentialOverTheWholeRange() throws {
        var xs: [Float] = stride(from: -120, through: 120, by: 0.37).map { Float($0) }
        xs += [-Float.infinity, -104, -88.5, -87.4, -87.3, -1e-30, 0, 1e-30, 88.6, 88.8, 89, 1e4, .infinity]
        let c = xs.count
        let text = """
        func @example(%x: tensor<1x\(c)xf32>) -> (tensor<1x\(c)xf32>, tensor<1x\(c)xf32>) {
          %y = nn.silu %x : tensor<1x\(c)xf32>
          %s = nn.softmax %x : tensor<1x\(c)xf32>
          return %y, %s
        }
        """
        let module = try Parser.parseAndVerify(SourceText(name: "exp.nmir", text: text))
        let results = try runOnCPU(module, function: "example", arguments: [Tensor(shape: [1, c], floats: xs)], bound: 4)
        // silu(x) = x / (1 + e^−x); the softmax of a row holding +∞ is NaN where x = +∞ (∞ − ∞), so
        // it is checked on the finite entries of a second row below.
        for (x, y) in zip(xs, results[0].floats) {
            // e^−x correctly rounded to f32 (∞ past 88.72, as in f32 arithmetic), then the f32 division.
            let expected = x / (1 + Float(Foundation.exp(-Double(x))))
            if x.isNaN || expected.isNaN { continue }
            let error = abs(y - expected), allowed = max(4e-7 * abs(expected), 2 * Float.leastNonzeroMagnitude)
            #expect(error <= allowed || (x == -.infinity && y == 0 || y == expected), "silu(\(x)) = \(y), expected \(expected)")
        }
        let finite = xs.filter(\.isFinite).filter { $0 < 100 }
        let row = try runOnCPU(Parser.parseAndVerify(SourceText(name: "softmax.nmir", text: """
            func @example(%x: tensor<1x\(finite.count)xf32>) -> tensor<1x\(finite.count)xf32> {
              %s = nn.softmax %x : tensor<1x\(finite.count)xf32>
              return %s
            }
            """)), function: "example", arguments: [Tensor(shape: [1, finite.count], floats: finite)], bound: 4)[0].floats
        // x − max is rounded to f32 first, as the kernel (and the interpreter) compute it.
        let top = finite.max()!
        let denominator = finite.reduce(0.0) { $0 + Foundation.exp(Double($1 - top)) }
        for (x, p) in zip(finite, row) {
            let expected = Foundation.exp(Double(x - top)) / denominator
            #expect(abs(Double(p) - expected) <= 1e-6 * expected + 1e-38, "softmax at \(x): \(p), expected \(expected)")
        }
        // NaN stays NaN.
        let nan = try runOnCPU(module, function: "example", arguments: [Tensor(shape: [1, c], floats: [Float.nan] + xs.dropFirst())], bound: 4)
        #expect(nan[0].floats[0].isNaN, "silu(NaN) = \(nan[0].floats[0])")
    }

    /// The 2:4 AVX-512 kernel's nibble order (`WeightABI.packedLaneNibbles`): a permutation of the
    /// 16 nibbles of a word, such that broadcasting the word and shifting 32-bit lane l right by
    /// 4 · ⌊l / 2⌋ leaves group l's first kept value (l < 8) or group l − 8's second in its low bits.
    @Test func laneNibbleOrder() {
        #expect(Set((0..<16).map(WeightABI.laneNibble)) == Set(0..<16))
        var bytes: [UInt8] = [0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE]   // nibble o holds o
        bytes.withUnsafeMutableBytes { WeightABI.layLaneNibbles($0.baseAddress!, valueBytes: 8) }
        let word = bytes.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * $1.offset) }
        for lane in 0..<16 {
            let half = UInt32(truncatingIfNeeded: word >> (32 * (lane % 2)))
            let nibble = Int((half >> (4 * (lane / 2))) & 0xF)
            #expect(nibble == (lane < 8 ? 2 * lane : 2 * (lane - 8) + 1), "lane \(lane) reads nibble \(nibble)")
        }
    }

    @Test(arguments: seeds) func integerArithmetic(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let n = Int.random(in: 1...50, using: &rng)
        let text = """
        func @example(%a: tensor<\(n)xi32>, %b: tensor<\(n)xi32>) -> (tensor<\(n)xi32>, tensor<\(n)xi32>, tensor<\(n)xf32>) {
          %m = nn.mul %a, %b : tensor<\(n)xi32>
          %q = nn.div %a, %b : tensor<\(n)xi32>
          %f = tensor.cast %q {to = f32} : tensor<\(n)xf32>
          return %m, %q, %f
        }
        """
        let a = (0..<n).map { _ in Int32.random(in: -1000...1000, using: &rng) }
        let b = (0..<n).map { _ in Int32.random(in: 1...9, using: &rng) * (Bool.random(using: &rng) ? 1 : -1) }
        try expectCPUMatchesInterpreter(text, arguments: [Tensor(shape: [n], ints: a), Tensor(shape: [n], ints: b)], context: "seed \(seed): n \(n)")
    }

    @Test(arguments: seeds) func normsAndSoftmax(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let t = Int.random(in: 1...7, using: &rng), c = Int.random(in: 1...70, using: &rng)
        let text = """
        module {
          weights {
            @norm : tensor<\(c)xf32> = \(denseText(randomFloats(c, &rng)))
          }
          func @example(%x: tensor<?x\(c)xf32>) -> (tensor<?x\(c)xf32>, tensor<?x\(c)xf32>, tensor<?x\(c)xf32>) {
            %w = nn.weight {name = @norm} : tensor<\(c)xf32>
            %n = nn.rms_norm %x, %w {eps = 1.0e-06} : tensor<?x\(c)xf32>
            %s = nn.softmax %x : tensor<?x\(c)xf32>
            %s0 = nn.softmax %x {axis = 0} : tensor<?x\(c)xf32>
            return %n, %s, %s0
          }
        }
        """
        try expectCPUMatchesInterpreter(text, arguments: [Tensor(shape: [t, c], floats: randomFloats(t * c, &rng, range: -4...4))],
                                        context: "seed \(seed): t \(t) c \(c)")
    }

    @Test(arguments: seeds) func rotaryEmbeddings(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let t = Int.random(in: 1...6, using: &rng), h = Int.random(in: 1...4, using: &rng), d = 2 * Int.random(in: 1...16, using: &rng)
        let start = Int32.random(in: 0...300, using: &rng)
        let text = """
        func @example(%x: tensor<?x\(h)x\(d)xf32>, %start: tensor<i32>) -> (tensor<?x\(h)x\(d)xf32>, tensor<?x\(h)x\(d)xf32>) {
          %a = nn.rope %x, %start {theta = 10000.0, style = "half"} : tensor<?x\(h)x\(d)xf32>
          %b = nn.rope %x, %start {theta = 100000.0, style = "interleaved"} : tensor<?x\(h)x\(d)xf32>
          return %a, %b
        }
        """
        try expectCPUMatchesInterpreter(text, arguments: [Tensor(shape: [t, h, d], floats: randomFloats(t * h * d, &rng)), .scalar(start)],
                                        context: "seed \(seed): t \(t) h \(h) d \(d) start \(start)")
    }

    @Test(arguments: seeds) func attention(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        // Head dims that are multiples of 16 take the vector kernel, the others the scalar one.
        let kv = Int.random(in: 1...3, using: &rng), group = Int.random(in: 1...3, using: &rng)
        let d = seed % 2 == 1 ? 16 * Int.random(in: 1...4, using: &rng) : Int.random(in: 1...40, using: &rng)
        let s = Int.random(in: 1...20, using: &rng), t = Int.random(in: 1...s, using: &rng)
        let hq = kv * group
        let text = """
        func @example(%q: tensor<?x\(hq)x\(d)xf32>, %k: tensor<?x\(kv)x\(d)xf32>, %v: tensor<?x\(kv)x\(d)xf32>)
            -> (tensor<?x\(hq)x\(d)xf32>, tensor<?x\(hq)x\(d)xf32>) {
          %c = nn.attention %q, %k, %v {causal = true} : tensor<?x\(hq)x\(d)xf32>
          %n = nn.attention %q, %k, %v {causal = false, scale = 0.3} : tensor<?x\(hq)x\(d)xf32>
          return %c, %n
        }
        """
        let args = [Tensor(shape: [t, hq, d], floats: randomFloats(t * hq * d, &rng)), Tensor(shape: [s, kv, d], floats: randomFloats(s * kv * d, &rng)),
                    Tensor(shape: [s, kv, d], floats: randomFloats(s * kv * d, &rng))]
        try expectCPUMatchesInterpreter(text, arguments: args, context: "seed \(seed): t \(t) s \(s) hq \(hq) kv \(kv) d \(d)")
    }

    @Test(arguments: seeds) func embeddingAndLinear(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let vocab = Int.random(in: 2...30, using: &rng), n = Int.random(in: 1...23, using: &rng)
        let k = Bool.random(using: &rng) ? 16 * Int.random(in: 1...5, using: &rng) : Int.random(in: 1...50, using: &rng)
        let m = Int.random(in: 1...11, using: &rng)
        let text = """
        module {
          weights {
            @table : tensor<\(vocab)x\(k)xf32> = \(denseText(randomFloats(vocab * k, &rng)))
            @w : tensor<\(n)x\(k)xf32> = \(denseText(randomFloats(n * k, &rng)))
          }
          func @example(%ids: tensor<?xi32>) -> (tensor<?x\(k)xf32>, tensor<?x\(n)xf32>) {
            %t = nn.weight {name = @table} : tensor<\(vocab)x\(k)xf32>
            %e = nn.embedding %t, %ids : tensor<?x\(k)xf32>
            %w = nn.weight {name = @w} : tensor<\(n)x\(k)xf32>
            %y = nn.linear %e, %w : tensor<?x\(n)xf32>
            return %e, %y
          }
        }
        """
        let ids = (0..<m).map { _ in Int32.random(in: 0..<Int32(vocab), using: &rng) }
        try expectCPUMatchesInterpreter(text, arguments: [Tensor(shape: [m], ints: ids)], context: "seed \(seed): vocab \(vocab) n \(n) k \(k) m \(m)")
    }

    @Test func embeddingRejectsAnIdOutsideTheTable() throws {
        let text = """
        module {
          weights {
            @table : tensor<2x2xf32> = dense<[1.0, 2.0, 3.0, 4.0]>
          }
          func @example(%ids: tensor<?xi32>) -> tensor<?x2xf32> {
            %t = nn.weight {name = @table} : tensor<2x2xf32>
            %e = nn.embedding %t, %ids : tensor<?x2xf32>
            return %e
          }
        }
        """
        let module = try Parser.parseAndVerify(SourceText(name: "t.nmir", text: text))
        #expect(throws: CPURuntimeError.self) { try runOnCPU(module, function: "example", arguments: [Tensor(shape: [2], ints: [1, 7])], bound: 4) }
        let ok = try runOnCPU(module, function: "example", arguments: [Tensor(shape: [2], ints: [1, 0])], bound: 4)
        #expect(ok.first?.floats == [3, 4, 1, 2])
    }

    @Test(arguments: seeds) func shapesAndMatmul(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let b = Int.random(in: 1...3, using: &rng), m = Int.random(in: 1...6, using: &rng)
        let k = Int.random(in: 1...9, using: &rng), n = Int.random(in: 1...7, using: &rng)
        let text = """
        func @example(%a: tensor<\(b)x\(m)x\(k)xf32>, %c: tensor<\(b)x\(k)x\(n)xf32>)
            -> (tensor<\(b)x\(m)x\(n)xf32>, tensor<\(k)x\(m)x\(b)xf32>, tensor<\(b)x\(2 * m)x\(k)xf32>, tensor<\(b)x1x\(k)xf32>, tensor<\(b * m * k)xf16>, tensor<3xf32>) {
          %p = nn.matmul %a, %c : tensor<\(b)x\(m)x\(n)xf32>
          %t = tensor.transpose %a {perm = [2, 1, 0]} : tensor<\(k)x\(m)x\(b)xf32>
          %j = tensor.concat %a, %a {axis = 1} : tensor<\(b)x\(2 * m)x\(k)xf32>
          %s = tensor.slice %a {axis = 1, start = \(m - 1), size = 1} : tensor<\(b)x1x\(k)xf32>
          %r = tensor.reshape %a {shape = [-1]} : tensor<\(b * m * k)xf32>
          %h = tensor.cast %r {to = f16} : tensor<\(b * m * k)xf16>
          %k3 = arith.constant {value = [1.5, -2.0, 0.25]} : tensor<3xf32>
          return %p, %t, %j, %s, %h, %k3
        }
        """
        let args = [Tensor(shape: [b, m, k], floats: randomFloats(b * m * k, &rng, range: -3...3)),
                    Tensor(shape: [b, k, n], floats: randomFloats(b * k * n, &rng))]
        try expectCPUMatchesInterpreter(text, arguments: args, context: "seed \(seed): b \(b) m \(m) k \(k) n \(n)")
    }

    /// `quant.linear` and `quant.dequant` on weights packed by the passes, for dense INT4 and every
    /// N:M the vector and scalar kernels handle, with and without zero points and a partial last group.
    /// Seed 9 has more than one 1024-column chunk of the many-token 2:4 kernel (the last partial).
    @Test(arguments: [(UInt64(1), "dense"), (2, "2:4"), (3, "1:4"), (4, "2:8"), (5, "4:8"), (6, "2:4"), (7, "dense"), (8, "3:4"), (9, "2:4")])
    func quantizedLinear(seed: UInt64, pattern: String) throws {
        var rng = SplitMix64(seed: seed)
        let parts = pattern.split(separator: ":").compactMap { Int($0) }
        let groupChoices = [32, 64, 128]
        let group = groupChoices[Int.random(in: 0..<3, using: &rng)]
        let blocks = Int.random(in: 1...5, using: &rng)
        let k = seed == 8 ? 24 : seed == 9 ? 32 * (32 + blocks) : 32 * blocks
        let n = Int.random(in: 1...19, using: &rng), m = [1, 40, 3, 77, 8, 13, 40, 77, 23][Int(seed - 1)]
        let symmetric = seed % 3 != 0
        let text = """
        module {
          weights {
            @w : tensor<\(n)x\(k)xf32> = \(denseText(randomFloats(n * k, &rng)))
          }
          func @example(%x: tensor<?x\(k)xf32>) -> tensor<?x\(n)xf32> {
            %w = nn.weight {name = @w} : tensor<\(n)x\(k)xf32>
            %y = nn.linear %x, %w : tensor<?x\(n)xf32>
            return %y
          }
        }
        """
        let prune = parts.count == 2 ? "nm-prune{n=\(parts[0]) m=\(parts[1])}," : ""
        let x = Tensor(shape: [m, k], floats: randomFloats(m * k, &rng))
        // Fused (quant.linear), then unfused (quant.dequant feeding nn.linear).
        for fuse in [true, false] {
            var module = try Parser.parseAndVerify(SourceText(name: "q.nmir", text: text))
            let pipeline = prune + "quantize-int4{group=\(min(group, k)) symmetric=\(symmetric)}" + (fuse ? ",fuse-dequant-matmul" : "")
            try PassManager(steps: try PipelineParser().parse(pipeline)).run(&module)
            #expect(module.functions[0].body.contains { $0.name == (fuse ? "quant.linear" : "quant.dequant") }, "seed \(seed): \(pipeline)")
            try expectCPUMatchesInterpreter(Printer().print(module), arguments: [x], bound: 128,
                                            context: "seed \(seed): \(pipeline) n \(n) k \(k) m \(m) group \(group) symmetric \(symmetric)")
        }
    }
}
