#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NMRuntime
import Testing
import NMIR
@testable import NMPasses

// nm-prune: the N:M pattern, each method's choice, SparseGPT's linear algebra and its
// reconstruction error, weight selection (include/exclude/overrides/shared) and the errors.

/// A module with one `nn.linear` per weight (each on its own input), weights elided: the tests
/// put their values in with `setWeight`.
func linearModule(_ weights: [(name: String, rows: Int, columns: Int)], extra: String = "") throws -> Module {
    var store = ""
    var args: [String] = []
    var body = ""
    var results: [String] = []
    for (i, w) in weights.enumerated() {
        store += "    @\(w.name) : tensor<\(w.rows)x\(w.columns)xf32> = elided\n"
        args.append("%x\(i): tensor<?x\(w.columns)xf32>")
        body += "    %w\(i) = nn.weight {name = @\(w.name)} : tensor<\(w.rows)x\(w.columns)xf32>\n"
        body += "    %y\(i) = nn.linear %x\(i), %w\(i) : tensor<?x\(w.rows)xf32>\n"
        results.append("tensor<?x\(w.rows)xf32>")
    }
    let text = """
    module {
      weights {
    \(store)  }
      func @f(\(args.joined(separator: ", "))) -> (\(results.joined(separator: ", "))) {
    \(body)\(extra)    return \((0..<weights.count).map { "%y\($0)" }.joined(separator: ", "))
      }
    }
    """
    return try module(text)
}

func setWeight(_ m: inout Module, _ name: String, _ values: [Float], _ shape: [Int]) {
    m.weights[name] = WeightEntry(name: name, floats: values, type: TensorType(shape, .f32))
}

/// Runs `nm-prune{options}` through a PassManager (verifying) and returns the statistics.
@discardableResult
func prune(_ m: inout Module, _ options: String = "") throws -> [String: Int] {
    let recorder = StatisticsRecorder()
    try runPipeline(options.isEmpty ? "nm-prune" : "nm-prune{\(options)}", on: &m, instruments: [recorder])
    return recorder.rows.last?.statistics.filter { $0.value != 0 } ?? [:]
}

func weightValues(_ m: Module, _ name: String) -> [Float] { m.weights[name]?.floatValues ?? [] }

/// The error message a pipeline fails with.
func pruneError(_ m: Module, _ options: String) -> String? {
    var m = m
    do {
        try prune(&m, options)
        return nil
    } catch let f as PipelineFailure {
        return f.diagnostics.map(\.message).joined(separator: "\n")
    } catch {
        return "\(error)"
    }
}

/// Row-major `a` (r × k) times `b` (k × c), in Double.
func matmul(_ a: [Double], _ b: [Double], _ r: Int, _ k: Int, _ c: Int) -> [Double] {
    var out = [Double](repeating: 0, count: r * c)
    for i in 0..<r { for p in 0..<k where a[i * k + p] != 0 { for j in 0..<c { out[i * c + j] += a[i * k + p] * b[p * c + j] } } }
    return out
}

func normalSample(_ rng: inout SplitMix64) -> Double {
    let u1 = Double.random(in: Double.ulpOfOne..<1, using: &rng), u2 = Double.random(in: 0..<1, using: &rng)
    return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
}

/// Every group of M consecutive weights along each row has at least M − N zeros.
func satisfies(_ w: [Float], columns k: Int, _ p: NMPattern) -> Bool {
    stride(from: 0, to: w.count, by: p.m).allSatisfy { g in (g..<g + p.m).filter { w[$0] != 0 }.count <= p.n }
        && w.count % k == 0 && k % p.m == 0
}

@Suite struct NameGlobTests {
    @Test func starsAndQuestionMarks() {
        #expect(NameGlob("blk.*").matches("blk.0.attn_q.weight"))
        #expect(NameGlob("*").matches(""))
        #expect(NameGlob("*.weight").matches("output.weight"))
        #expect(!NameGlob("*.weight").matches("output.weights"))
        #expect(NameGlob("blk.?.ffn_*").matches("blk.3.ffn_up.weight"))
        #expect(!NameGlob("blk.?.ffn_*").matches("blk.13.ffn_up.weight"))
        #expect(NameGlob("blk.1?.*").matches("blk.13.ffn_up.weight"))
        #expect(NameGlob("*attn*q*").matches("blk.0.attn_q.weight"))
        #expect(!NameGlob("*attn*q*x").matches("blk.0.attn_q.weight"))
        #expect(NameGlob("a*b*c").matches("abbbcbc"))
        #expect(!NameGlob("a*b*c").matches("abbbcb"))
        #expect(NameGlob("token_embd.weight").matches("token_embd.weight"))
        #expect(!NameGlob("token_embd.weight").matches("token_embd.weight2"))
        #expect(!NameGlob("").matches("x"))
        #expect(NameGlob("**?").matches("x"))
    }

    @Test func commaSeparatedLists() {
        #expect(NameGlob.list("token_embd.weight,output.weight").map(\.pattern) == ["token_embd.weight", "output.weight"])
        #expect(NameGlob.list(" a , ,b,").map(\.pattern) == ["a", "b"])
        #expect(NameGlob.list("").isEmpty)
        #expect(NameGlob.list("blk.0.*,*.ffn_down.weight").anyMatches("blk.7.ffn_down.weight"))
        #expect(!NameGlob.list("blk.0.*,*.ffn_down.weight").anyMatches("blk.7.ffn_up.weight"))
    }
}

@Suite struct NMPruneTests {
    // MARK: - magnitude

    @Test func magnitudeKeepsTheLargestAndRetypes() throws {
        var m = try linearModule([("w", 2, 8)])
        setWeight(&m, "w", [0.1, -0.9, 0.5, 0.2, 3.0, 1.0, -2.0, 0.0,
                            4.0, 4.0, 4.0, 4.0, -1.0, 0.3, 0.2, 0.25], [2, 8])
        let stats = try prune(&m)
        #expect(weightValues(m, "w") == [0.0, -0.9, 0.5, 0.0, 3.0, 0.0, -2.0, 0.0,
                                         4.0, 4.0, 0.0, 0.0, -1.0, 0.3, 0.0, 0.0])
        #expect(m.weights["w"]?.type.description == "tensor<2x8xf32, nm = 2:4>")
        #expect(bodyLines(m) == [
            "%w0 = nn.weight {name = @w} : tensor<2x8xf32, nm = 2:4>",
            "%y0 = nn.linear %x0, %w0 : tensor<?x2xf32>",
            "return %y0",
        ])
        // 0.0 was already zero: 7 weights were set to zero, not 8.
        #expect(stats == ["pruned-weights": 1, "zeroed": 7])
    }

    @Test func writtenValuesStayWrittenValues() throws {
        let (m, stats) = try apply(NMPrunePass.self, """
        module {
          weights {
            @w : tensor<1x4xf32> = dense<[1.0, -3.0, 2.0, 0.5]>
          }
          func @f(%x: tensor<?x4xf32>) -> tensor<?x1xf32> {
            %w = nn.weight {name = @w} : tensor<1x4xf32>
            %y = nn.linear %x, %w : tensor<?x1xf32>
            return %y
          }
        }
        """)
        #expect(Printer().print(m.weights).contains("@w : tensor<1x4xf32, nm = 2:4> = dense<[0.0, -3.0, 2.0, 0.0]>"))
        #expect(stats == ["pruned-weights": 1, "zeroed": 2])
    }

    @Test(arguments: [(1, 4), (3, 4), (2, 8), (4, 8), (1, 2), (5, 16), (2, 3)])
    func magnitudeOtherPatterns(n: Int, m mm: Int) throws {
        let k = mm * 3
        var module = try linearModule([("w", 2, k)])
        // Distinct magnitudes with alternating signs: |w| = index + 1.
        let values: [Float] = (0..<(2 * k)).map { (i: Int) -> Float in
            let magnitude = Float(i + 1)
            return i % 2 == 0 ? magnitude : -magnitude
        }
        setWeight(&module, "w", values, [2, k])
        try prune(&module, "n=\(n) m=\(mm)")
        let out = weightValues(module, "w")
        // In each group the last N (the largest |w|) stay.
        for (i, v) in out.enumerated() { #expect(v == (i % mm >= mm - n ? values[i] : 0), "index \(i)") }
        #expect(module.weights["w"]?.type == .tensor(TensorType([2, k], .f32, nm: NMPattern(n: n, m: mm))))
    }

    /// The property: for random shapes, patterns and values (with ties and zeros), every method
    /// leaves at most N non-zeros per group; magnitude keeps exactly the top N (ties to the left)
    /// unchanged; wanda and magnitude change no kept weight.
    @Test func patternHoldsOnRandomShapes() throws {
        for trial in 0..<40 {
            let seed = 0x5EED_0000 + UInt64(trial)
            var rng = SplitMix64(seed: seed)
            let mm = Int.random(in: 2...16, using: &rng)
            let n = Int.random(in: 1..<mm, using: &rng)
            let rows = Int.random(in: 1...6, using: &rng)
            let k = mm * Int.random(in: 1...5, using: &rng)
            let pattern = NMPattern(n: n, m: mm)!
            let palette: [Float] = [0, 0.5, -0.5, 1, -2, 2]
            let w = (0..<(rows * k)).map { _ in
                Bool.random(using: &rng) ? palette.randomElement(using: &rng)! : Float(normalSample(&rng))
            }
            var sqnorm = (0..<k).map { _ in Float.random(in: 0..<4, using: &rng) }
            sqnorm[0] = 0
            var x = (0..<(k * 3 * k)).map { _ in normalSample(&rng) }
            for t in 0..<(3 * k) { x[t] = 0 }  // input 0 never fires: a dead column of H
            let h = matmul(x, transpose(x, k, 3 * k), k, 3 * k, k).map(Float.init)
            for method in ["magnitude", "wanda", "sparsegpt"] {
                var module = try linearModule([("w", rows, k)])
                setWeight(&module, "w", w, [rows, k])
                setWeight(&module, "w.calib.sqnorm", sqnorm, [k])
                setWeight(&module, "w.calib.hessian", h, [k, k])
                try prune(&module, "n=\(n) m=\(mm) method=\(method)")
                let out = weightValues(module, "w")
                #expect(satisfies(out, columns: k, pattern), "seed \(seed) (\(method), \(pattern), \(rows)x\(k))")
                if method != "sparsegpt" {
                    #expect(zip(w, out).allSatisfy { $1 == 0 || $1 == $0 }, "seed \(seed) (\(method))")
                }
                if method == "magnitude" {
                    for g in stride(from: 0, to: w.count, by: mm) {
                        let order = (g..<g + mm).sorted { abs(w[$0]) > abs(w[$1]) || (abs(w[$0]) == abs(w[$1]) && $0 < $1) }
                        let kept = Set(order.prefix(n))
                        for i in g..<g + mm where out[i] != (kept.contains(i) ? w[i] : 0) {
                            Issue.record("seed \(seed): magnitude \(pattern) at \(i): \(out[i]), group \(Array(w[g..<g + mm]))")
                        }
                    }
                }
                if method == "sparsegpt" {
                    // The dead input's column is zero, whatever the weights were.
                    #expect((0..<rows).allSatisfy { out[$0 * k] == 0 }, "seed \(seed)")
                }
            }
        }
    }

    // MARK: - wanda

    @Test func wandaWeighsByInputNorm() throws {
        let w: [Float] = [1.0, 0.9, 0.8, 0.7, -0.1, 0.2, 0.3, -0.4]
        // Inputs 2 and 3 are large: wanda keeps them although their weights are the smaller ones.
        let sqnorm: [Float] = [0.01, 0.01, 100, 100, 1, 4, 1, 0.25]
        var magnitude = try linearModule([("w", 1, 8)])
        setWeight(&magnitude, "w", w, [1, 8])
        setWeight(&magnitude, "w.calib.sqnorm", sqnorm, [8])
        var wanda = magnitude
        try prune(&magnitude, "method=magnitude")
        let stats = try prune(&wanda, "method=wanda")
        #expect(weightValues(magnitude, "w") == [1.0, 0.9, 0, 0, 0, 0, 0.3, -0.4])
        // Scores of the second group: 0.1·1, 0.2·2, 0.3·1, 0.4·0.5 → keep 0.2 and 0.3.
        #expect(weightValues(wanda, "w") == [0, 0, 0.8, 0.7, 0, 0.2, 0.3, 0])
        #expect(stats == ["pruned-weights": 1, "zeroed": 4])
    }

    // MARK: - sparsegpt

    /// The factor of `SparseGPT.factor` is the upper Cholesky factor of the dampened inverse,
    /// computed here the reference code's way: Cholesky, inverse, Cholesky again.
    @Test func inverseHessianFactorMatchesTheReferenceRoute() throws {
        for seed: UInt64 in [1, 2, 3] {
            var rng = SplitMix64(seed: seed)
            let k = [5, 37, 100][Int(seed - 1)], tokens = 2 * k
            let x = (0..<(k * tokens)).map { _ in normalSample(&rng) }
            let h = matmul(x, transpose(x, k, tokens), k, tokens, k).map(Float.init)
            let damp = 0.01
            let factor = try SparseGPT.factor(hessian: h, k: k, damp: damp)
            // Reference: H + damp·mean(diag)·I, lower Cholesky, H⁻¹ = L⁻ᵀL⁻¹, upper Cholesky.
            var hd = h.map(Double.init)
            let mean = (0..<k).map { hd[$0 * k + $0] }.reduce(0, +) / Double(k)
            for j in 0..<k { hd[j * k + j] += damp * mean }
            let inverse = naiveInverse(hd, k)
            let u = naiveUpperCholesky(inverse, k)
            var maxDifference = 0.0, maxEntry = 0.0
            for i in 0..<(k * k) {
                maxDifference = max(maxDifference, abs(u[i] - factor.u[i]))
                maxEntry = max(maxEntry, abs(u[i]))
            }
            #expect(maxDifference <= 1e-9 * maxEntry, "seed \(seed), k \(k): max |ΔU| \(maxDifference), max |U| \(maxEntry)")
        }
    }

    @Test func blockedCholeskyMatchesItsDefinition() {
        // k larger than the block, not a multiple of it.
        let k = 3 * Cholesky.blockRows + 7
        var rng = SplitMix64(seed: 42)
        let x = (0..<(k * (k + 5))).map { _ in normalSample(&rng) }
        let a = matmul(x, transpose(x, k, k + 5), k, k + 5, k)
        var r = a
        let failed = r.withUnsafeMutableBufferPointer { Cholesky.factorUpper($0.baseAddress!, n: k) }
        #expect(failed == nil)
        for i in 0..<k { for j in 0..<i { r[i * k + j] = 0 } }
        let rtr = matmul(transpose(r, k, k), r, k, k, k)
        let err = zip(rtr, a).map { abs($0 - $1) }.max() ?? 0
        #expect(err <= 1e-9 * (a.map(abs).max() ?? 1))
        var inverse = [Double](repeating: 0, count: k * k)
        r.withUnsafeBufferPointer { rp in
            inverse.withUnsafeMutableBufferPointer { Cholesky.invertUpper(rp.baseAddress!, into: $0.baseAddress!, n: k) }
        }
        let identity = matmul(r, inverse, k, k, k)
        for i in 0..<k { for j in 0..<k where abs(identity[i * k + j] - (i == j ? 1 : 0)) > 1e-9 {
            Issue.record("R·R⁻¹ at (\(i), \(j)) = \(identity[i * k + j])")
        } }
    }

    @Test func notPositiveDefiniteIsReported() {
        var h = [Float](repeating: 0, count: 4)
        h[0] = 1; h[3] = -1  // a negative diagonal: no dampening of 0 rescues it
        #expect(throws: SparseGPT.Failure.notPositiveDefinite(pivot: 1)) { try SparseGPT.factor(hessian: h, k: 2, damp: 0) }
    }

    /// With H = I every input matters equally and nothing is correlated: SparseGPT's saliency
    /// orders like |w| and no update moves the kept weights, so it equals magnitude.
    @Test func sparseGPTWithIdentityHessianIsMagnitude() throws {
        var rng = SplitMix64(seed: 7)
        let (rows, k) = (4, 16)
        let w = (0..<(rows * k)).map { _ in Float(normalSample(&rng)) }
        var identity = [Float](repeating: 0, count: k * k)
        for j in 0..<k { identity[j * k + j] = 2 }
        var a = try linearModule([("w", rows, k)])
        setWeight(&a, "w", w, [rows, k])
        setWeight(&a, "w.calib.hessian", identity, [k, k])
        var b = a
        try prune(&a, "method=sparsegpt blocksize=5")
        try prune(&b, "method=magnitude")
        #expect(weightValues(a, "w") == weightValues(b, "w"))
    }

    /// The reason for SparseGPT: on a layer with correlated, unevenly scaled inputs its output
    /// error ‖(W − Ŵ)X‖ is lower than magnitude's and wanda's.
    @Test(arguments: [(11 as UInt64, 2, 4), (12, 2, 4), (13, 1, 4), (14, 4, 8), (15, 3, 4)])
    func sparseGPTReconstructsBetter(seed: UInt64, n: Int, m mm: Int) throws {
        var rng = SplitMix64(seed: seed)
        let (rows, k, tokens) = (24, 64, 512)
        // X = scales · (Z mixed with a few shared factors): correlated inputs of different size.
        let factors = (0..<(4 * tokens)).map { _ in normalSample(&rng) }
        let loadings = (0..<(k * 4)).map { _ in normalSample(&rng) }
        let scales = (0..<k).map { _ in exp(normalSample(&rng)) }
        var x = [Double](repeating: 0, count: k * tokens)
        for j in 0..<k { for t in 0..<tokens {
            var v = normalSample(&rng)
            for f in 0..<4 { v += loadings[j * 4 + f] * factors[f * tokens + t] }
            x[j * tokens + t] = scales[j] * v
        } }
        let h = matmul(x, transpose(x, k, tokens), k, tokens, k).map(Float.init)
        let sqnorm = (0..<k).map { j in Float((0..<tokens).map { x[j * tokens + $0] * x[j * tokens + $0] }.reduce(0, +)) }
        let w = (0..<(rows * k)).map { _ in Float(normalSample(&rng)) }
        var errors: [String: Double] = [:]
        for method in ["magnitude", "wanda", "sparsegpt"] {
            var module = try linearModule([("w", rows, k)])
            setWeight(&module, "w", w, [rows, k])
            setWeight(&module, "w.calib.sqnorm", sqnorm, [k])
            setWeight(&module, "w.calib.hessian", h, [k, k])
            try prune(&module, "n=\(n) m=\(mm) method=\(method) blocksize=16")
            let out = weightValues(module, "w")
            #expect(satisfies(out, columns: k, NMPattern(n: n, m: mm)!))
            let difference = zip(w, out).map { Double($0) - Double($1) }
            errors[method] = matmul(difference, x, rows, k, tokens).map { $0 * $0 }.reduce(0, +).squareRoot()
        }
        let (s, wa, ma) = (errors["sparsegpt"] ?? .nan, errors["wanda"] ?? .nan, errors["magnitude"] ?? .nan)
        #expect(s < wa && s < ma, "seed \(seed) \(n):\(mm): ‖(W−Ŵ)X‖ sparsegpt \(s), wanda \(wa), magnitude \(ma)")
        // Wanda, which sees the input norms, beats magnitude on such inputs too.
        #expect(wa < ma, "seed \(seed): wanda \(wa), magnitude \(ma)")
    }

    /// The result does not depend on the block size (the lazy update is a reordering), and q/k/v
    /// sharing one Hessian (factored once) give what each gives alone.
    @Test func blockSizeAndSharedHessiansDoNotChangeTheResult() throws {
        var rng = SplitMix64(seed: 99)
        let (k, tokens) = (24, 80)
        let x = (0..<(k * tokens)).map { _ in normalSample(&rng) }
        let h = matmul(x, transpose(x, k, tokens), k, tokens, k).map(Float.init)
        let wq = (0..<(6 * k)).map { _ in Float(normalSample(&rng)) }
        let wk = (0..<(3 * k)).map { _ in Float(normalSample(&rng)) }
        var shared = try linearModule([("q", 6, k), ("k", 3, k)])
        setWeight(&shared, "q", wq, [6, k]); setWeight(&shared, "k", wk, [3, k])
        setWeight(&shared, "q.calib.hessian", h, [k, k]); setWeight(&shared, "k.calib.hessian", h, [k, k])
        var alone = try linearModule([("q", 6, k)])
        setWeight(&alone, "q", wq, [6, k]); setWeight(&alone, "q.calib.hessian", h, [k, k])
        var wholeBlocks = alone
        try prune(&shared, "method=sparsegpt blocksize=8")
        try prune(&alone, "method=sparsegpt blocksize=8")
        try prune(&wholeBlocks, "method=sparsegpt blocksize=1000")
        let q = weightValues(alone, "q")
        #expect(weightValues(shared, "q") == q)
        let maxDifference = zip(q, weightValues(wholeBlocks, "q")).map { abs($0 - $1) }.max() ?? 1
        #expect(maxDifference < 1e-5)
        // A block size that is not a multiple of M is rounded up to one.
        var odd = try linearModule([("q", 6, k)])
        setWeight(&odd, "q", wq, [6, k]); setWeight(&odd, "q.calib.hessian", h, [k, k])
        try prune(&odd, "method=sparsegpt blocksize=3")
        #expect(satisfies(weightValues(odd, "q"), columns: k, NMPattern(n: 2, m: 4)!))
        #expect((zip(q, weightValues(odd, "q")).map { abs($0 - $1) }.max() ?? 1) < 1e-5)
    }

    // MARK: - which weights

    @Test func includeExcludeOverridesAndSharedWeights() throws {
        var m = try linearModule([("blk.0.attn_q.weight", 2, 8), ("blk.0.ffn_down.weight", 2, 16),
                                  ("blk.1.attn_q.weight", 2, 8), ("blk.2.ffn_up.weight", 2, 8),
                                  ("output.weight", 2, 8), ("token_embd.weight", 4, 8)],
                                 extra: "    %ids = arith.constant {value = [1, 2]} : tensor<2xi32>\n"
                                      + "    %e = nn.embedding %w5, %ids : tensor<2x8xf32>\n")
        for (name, rows, k) in [("blk.0.attn_q.weight", 2, 8), ("blk.0.ffn_down.weight", 2, 16), ("blk.1.attn_q.weight", 2, 8),
                                ("blk.2.ffn_up.weight", 2, 8), ("output.weight", 2, 8), ("token_embd.weight", 4, 8)] {
            setWeight(&m, name, (0..<(rows * k)).map { Float($0 % k + 1) }, [rows, k])
        }
        let original = m
        func nm(_ m: Module, _ name: String) -> NMPattern? { m.weights[name]?.type.tensor?.nm }

        // Defaults: all but the excluded output and the shared (and excluded) embedding.
        var a = original
        #expect(try prune(&a) == ["pruned-weights": 4, "zeroed": 2 * 4 + 2 * 8 + 2 * 4 + 2 * 4, "skipped": 2])
        #expect(nm(a, "output.weight") == nil && nm(a, "token_embd.weight") == nil)
        #expect(nm(a, "blk.2.ffn_up.weight") == NMPattern(n: 2, m: 4))

        // Nothing excluded: output.weight is pruned, the tied embedding still is not.
        var b = original
        #expect(try prune(&b, "exclude=\"\"") == ["pruned-weights": 5, "zeroed": 48, "skipped": 1])
        #expect(nm(b, "output.weight") == NMPattern(n: 2, m: 4) && nm(b, "token_embd.weight") == nil)
        #expect(weightValues(b, "token_embd.weight") == weightValues(original, "token_embd.weight"))

        // include narrows, exclude removes; the excluded linear weights count as skipped.
        var c = original
        #expect(try prune(&c, "include=blk.0.*,blk.1.* exclude=*ffn_down*") == ["pruned-weights": 2, "zeroed": 16, "skipped": 4])
        #expect(nm(c, "blk.0.attn_q.weight") != nil && nm(c, "blk.1.attn_q.weight") != nil)
        #expect(nm(c, "blk.0.ffn_down.weight") == nil && nm(c, "blk.2.ffn_up.weight") == nil)

        // Overrides: the first matching glob wins; the others take n:m.
        var d = original
        try prune(&d, "n=3 m=4 nm=blk.0.*:1:4,blk.0.ffn_down.weight:2:8,blk.2*:4:8")
        #expect(nm(d, "blk.0.attn_q.weight") == NMPattern(n: 1, m: 4))
        #expect(nm(d, "blk.0.ffn_down.weight") == NMPattern(n: 1, m: 4))
        #expect(nm(d, "blk.1.attn_q.weight") == NMPattern(n: 3, m: 4))
        #expect(nm(d, "blk.2.ffn_up.weight") == NMPattern(n: 4, m: 8))
        #expect(weightValues(d, "blk.0.attn_q.weight") == [0, 0, 0, 4, 0, 0, 0, 8, 0, 0, 0, 4, 0, 0, 0, 8])
        #expect(weightValues(d, "blk.2.ffn_up.weight") == [0, 0, 0, 0, 5, 6, 7, 8, 0, 0, 0, 0, 5, 6, 7, 8])
        #expect(bodyLines(d).contains("%y1 = nn.linear %x1, %w1 : tensor<?x2xf32>"))
        #expect(bodyLines(d).contains("%w1 = nn.weight {name = @blk.0.ffn_down.weight} : tensor<2x16xf32, nm = 1:4>"))
    }

    @Test func weightsReadOtherwiseOrAlreadyEncodedAreLeftAlone() throws {
        // @a feeds a linear as its input (not its weight), @b is returned, @c already has an
        // encoding, @d is f16: none is pruned; only a and b are linear weights read elsewhere.
        let (m, stats) = try apply(NMPrunePass.self, """
        module {
          weights {
            @a : tensor<2x4xf32> = dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]>
            @b : tensor<2x4xf32> = dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]>
            @c : tensor<2x4xf32, nm = 3:4> = dense<[0.0, 2.0, 3.0, 4.0, 0.0, 6.0, 7.0, 8.0]>
            @d : tensor<2x4xf16> = dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]>
          }
          func @f(%x: tensor<?x4xf32>) -> (tensor<2x2xf32>, tensor<2x4xf32>, tensor<?x2xf32>, tensor<?x2xf32>) {
            %a = nn.weight {name = @a} : tensor<2x4xf32>
            %b = nn.weight {name = @b} : tensor<2x4xf32>
            %c = nn.weight {name = @c} : tensor<2x4xf32, nm = 3:4>
            %d = nn.weight {name = @d} : tensor<2x4xf16>
            %y0 = nn.linear %a, %b : tensor<2x2xf32>
            %y1 = nn.linear %x, %c : tensor<?x2xf32>
            %y2 = nn.linear %x, %d : tensor<?x2xf32>
            return %y0, %b, %y1, %y2
          }
        }
        """)
        #expect(stats == ["skipped": 1])
        #expect(m.weights.entries.allSatisfy { $0.type.tensor?.nm == nil || $0.name == "c" })
        #expect(weightValues(m, "b") == [1, 2, 3, 4, 5, 6, 7, 8])
    }

    @Test func everyFunctionReadingTheWeightIsRetyped() throws {
        let (m, stats) = try apply(NMPrunePass.self, """
        module {
          weights {
            @w : tensor<1x4xf32> = dense<[1.0, 2.0, 3.0, 4.0]>
          }
          func @prefill(%x: tensor<?x4xf32>) -> tensor<?x1xf32> {
            %w = nn.weight {name = @w} : tensor<?x4xf32>
            %y = nn.linear %x, %w : tensor<?x1xf32>
            return %y
          }
          func @decode(%x: tensor<1x4xf32>) -> tensor<1x1xf32> {
            %v = nn.weight {name = @w} : tensor<1x4xf32>
            %y = nn.linear %x, %v : tensor<1x1xf32>
            %z = nn.linear %x, %v : tensor<1x1xf32>
            %s = nn.add %y, %z : tensor<1x1xf32>
            return %s
          }
        }
        """)
        #expect(stats == ["pruned-weights": 1, "zeroed": 2])
        #expect(bodyLines(m, function: 0)[0] == "%w = nn.weight {name = @w} : tensor<?x4xf32, nm = 2:4>")
        #expect(bodyLines(m, function: 1)[0] == "%v = nn.weight {name = @w} : tensor<1x4xf32, nm = 2:4>")
        #expect(m.functions[1].body[1].operands[1].type == m.functions[1].body[0].results[0].type)
    }

    // MARK: - errors

    @Test func missingCalibrationNamesTheTensorAndTheFix() throws {
        var m = try linearModule([("blk.0.attn_q.weight", 2, 8)])
        setWeight(&m, "blk.0.attn_q.weight", (0..<16).map(Float.init), [2, 8])
        #expect(pruneError(m, "method=wanda") == "pass 'nm-prune' failed: method=wanda needs @blk.0.attn_q.weight.calib.sqnorm "
                + "(tensor<8xf32>, Σ x² per input), which is not in the module: run calibrate{file=…} first in @f at 'nn.weight' (%w0)")
        #expect(pruneError(m, "method=sparsegpt")?.contains("method=sparsegpt needs @blk.0.attn_q.weight.calib.hessian (tensor<8x8xf32>") == true)
        #expect(pruneError(m, "method=sparsegpt")?.contains("run calibrate{file=… hessian=true} first") == true)
        // Of the wrong shape.
        setWeight(&m, "blk.0.attn_q.weight.calib.sqnorm", [1, 2, 3, 4], [4])
        #expect(pruneError(m, "method=wanda")?.contains("@blk.0.attn_q.weight.calib.sqnorm has type tensor<4xf32>, expected tensor<8xf32>") == true)
        // Magnitude needs none.
        #expect(pruneError(m, "method=magnitude") == nil)
    }

    @Test func inputDimNotAMultipleOfMIsAnErrorNamingTheWeight() throws {
        var m = try linearModule([("ok", 2, 8), ("blk.3.odd.weight", 2, 6)])
        setWeight(&m, "ok", (0..<16).map(Float.init), [2, 8])
        setWeight(&m, "blk.3.odd.weight", (0..<12).map(Float.init), [2, 6])
        #expect(pruneError(m, "") == "pass 'nm-prune' failed: weight @blk.3.odd.weight (tensor<2x6xf32>) cannot be pruned 2:4: "
                + "its input dim 6 is not a multiple of 4 in @f at 'nn.weight' (%w1)")
        // 2:3 fits 6 but not 8; excluding the other one works.
        #expect(pruneError(m, "n=2 m=3")?.contains("weight @ok (tensor<2x8xf32>) cannot be pruned 2:3") == true)
        #expect(pruneError(m, "n=2 m=3 exclude=ok") == nil)
        #expect(pruneError(m, "nm=blk.3.*:1:3") == nil)
    }

    @Test func elidedWeightsAreAnError() throws {
        let m = try linearModule([("w", 2, 8)])
        #expect(pruneError(m, "")?.contains("weight @w has no data in memory (elided)") == true)
    }

    @Test(arguments: [
        ("n=5 m=4", "--passes:1:12: error: invalid option 'n' of pass 'nm-prune': n must be less than m (got n = 5, m = 4): N of every M weights are kept"),
        ("n=4 m=4", "--passes:1:12: error: invalid option 'n' of pass 'nm-prune': n must be less than m (got n = 4, m = 4): N of every M weights are kept"),
        ("n=0", "--passes:1:12: error: invalid option 'n' of pass 'nm-prune': n must be at least 1 (got 0)"),
        ("m=17 n=2", "--passes:1:12: error: invalid option 'm' of pass 'nm-prune': m must be at most 16 (got 17)"),
        ("damp=-0.1", "--passes:1:15: error: invalid option 'damp' of pass 'nm-prune': damp must be a finite number ≥ 0 (got -0.1)"),
        ("damp=inf", "--passes:1:15: error: invalid option 'damp' of pass 'nm-prune': damp must be a finite number ≥ 0 (got inf)"),
        ("blocksize=0", "--passes:1:20: error: invalid option 'blocksize' of pass 'nm-prune': blocksize must be at least 1 (got 0)"),
        ("nm=blk.0.*", "--passes:1:13: error: invalid option 'nm' of pass 'nm-prune': 'blk.0.*' is not GLOB:N:M (like blk.0.*:1:4)"),
        ("nm=a:1:4,b:2", "--passes:1:13: error: invalid option 'nm' of pass 'nm-prune': 'b:2' is not GLOB:N:M (like blk.0.*:1:4)"),
        ("nm=a:4:4", "--passes:1:13: error: invalid option 'nm' of pass 'nm-prune': 'a:4:4': 4:4 is not an N:M pattern with 1 ≤ N < M ≤ 16"),
        ("nm=:1:4", "--passes:1:13: error: invalid option 'nm' of pass 'nm-prune': ':1:4' has no glob before N:M"),
        ("method=obs", "--passes:1:17: error: invalid value 'obs' for option 'method' of pass 'nm-prune': expected one of magnitude, wanda, sparsegpt"),
    ])
    func badOptionsAreRejectedByTheParser(options: String, message: String) {
        do {
            _ = try PipelineParser(sourceName: "--passes").parse("nm-prune{\(options)}")
            Issue.record("nm-prune{\(options)} parsed")
        } catch {
            #expect("\(error)" == message)
        }
    }

    @Test func goodOptionsParse() throws {
        let steps = try PipelineParser().parse("nm-prune{n=1 m=16 method=sparsegpt damp=0 blocksize=1 nm=\"blk.0.*:1:4, a:b:3:8\" include=blk.*}")
        #expect(steps.map(\.description) == ["nm-prune{n=1 m=16 method=sparsegpt include=blk.* nm=\"blk.0.*:1:4, a:b:3:8\" damp=0.0 blocksize=1}"])
        let config = try NMPrunePass.Configuration(steps[0].options)
        #expect(config.pattern(for: "blk.0.x") == NMPattern(n: 1, m: 4))
        #expect(config.pattern(for: "a:b") == NMPattern(n: 3, m: 8))
        #expect(config.pattern(for: "c") == NMPattern(n: 1, m: 16))
    }
}

func transpose(_ a: [Double], _ r: Int, _ c: Int) -> [Double] {
    var out = [Double](repeating: 0, count: r * c)
    for i in 0..<r { for j in 0..<c { out[j * r + i] = a[i * c + j] } }
    return out
}

/// Gauss-Jordan inverse with partial pivoting (a test oracle; the pass uses Cholesky).
func naiveInverse(_ a: [Double], _ n: Int) -> [Double] {
    var m = a, inv = [Double](repeating: 0, count: n * n)
    for i in 0..<n { inv[i * n + i] = 1 }
    for col in 0..<n {
        let pivot = (col..<n).max { abs(m[$0 * n + col]) < abs(m[$1 * n + col]) } ?? col
        if pivot != col { for j in 0..<n { m.swapAt(col * n + j, pivot * n + j); inv.swapAt(col * n + j, pivot * n + j) } }
        let d = m[col * n + col]
        for j in 0..<n { m[col * n + j] /= d; inv[col * n + j] /= d }
        for i in 0..<n where i != col {
            let f = m[i * n + col]
            if f == 0 { continue }
            for j in 0..<n { m[i * n + j] -= f * m[col * n + j]; inv[i * n + j] -= f * inv[col * n + j] }
        }
    }
    return inv
}

/// U upper with UᵀU = A, by the textbook formulas.
func naiveUpperCholesky(_ a: [Double], _ n: Int) -> [Double] {
    var u = [Double](repeating: 0, count: n * n)
    for i in 0..<n {
        var s = a[i * n + i]
        for k in 0..<i { s -= u[k * n + i] * u[k * n + i] }
        u[i * n + i] = s.squareRoot()
        for j in (i + 1)..<max(i + 1, n) {
            var t = a[i * n + j]
            for k in 0..<i { t -= u[k * n + i] * u[k * n + j] }
            u[i * n + j] = t / u[i * n + i]
        }
    }
    return u
}
