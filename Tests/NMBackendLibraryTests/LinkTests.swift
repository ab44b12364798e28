import Testing
import NMTargetCPU
import NMInterpreter
import NMRuntime

/// The system libraries the backends need are linked and answer: LLVM 19 through its C API,
/// OpenBLAS through CBLAS.
@Suite struct LinkTests {
    @Test func llvmIsVersion19() {
        let v = LLVMInfo.version
        #expect(v.major == 19)
        #expect(v.minor >= 0 && v.patch >= 0)
        #expect(!LLVMInfo.hostCPUName.isEmpty)
        #expect(LLVMInfo.hostCPUName != "unknown")
    }

    /// C = A · Bᵀ the slow way, accumulating in Double.
    static func naiveMatmulTransposedB(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0
                for p in 0..<k { sum += Double(a[i * k + p]) * Double(b[j * k + p]) }
                c[i * n + j] = Float(sum)
            }
        }
        return c
    }


    @Test(arguments: [UInt64(1), 2, 3, 4, 5, 6, 7, 8])
    func blasMatmulTransposedBMatchesTheTripleLoop(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let m = Int.random(in: 1...37, using: &rng)
        let n = Int.random(in: 1...53, using: &rng)
        let k = Int.random(in: 1...129, using: &rng)
        let a = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &rng) }
        let b = (0..<(n * k)).map { _ in Float.random(in: -1...1, using: &rng) }
        let c = BLAS.matmulTransposedB(a, b, m: m, n: n, k: k)
        let expected = Self.naiveMatmulTransposedB(a, b, m: m, n: n, k: k)
        #expect(c.count == m * n, "seed \(seed): m \(m) n \(n) k \(k)")
        // f32 accumulation of k products of magnitude ≤ 1: an error bound of k · 2⁻²³ per term, with room.
        let tolerance = Float(k) * 1e-6 + 1e-6
        let worst = zip(c, expected).map { abs($0 - $1) }.max() ?? 0
        #expect(worst <= tolerance, "seed \(seed): m \(m) n \(n) k \(k): worst error \(worst)")
        #expect(expected.contains { $0 != 0 }, "seed \(seed)")
    }

    @Test func blasMatmulTransposedBExactSmallCase() {
        // [1 2 3; 4 5 6] · [1 0 1; 0 1 0; 2 2 2]ᵀ
        let c = BLAS.matmulTransposedB([1, 2, 3, 4, 5, 6], [1, 0, 1, 0, 1, 0, 2, 2, 2], m: 2, n: 3, k: 3)
        #expect(c == [4, 2, 12, 10, 5, 30])
    }

    @Test func blasMatmulTransposedBEmpty() {
        #expect(BLAS.matmulTransposedB([], [], m: 0, n: 3, k: 2) == [])
        #expect(BLAS.matmulTransposedB([], [], m: 2, n: 3, k: 0) == [0, 0, 0, 0, 0, 0])
    }
}
