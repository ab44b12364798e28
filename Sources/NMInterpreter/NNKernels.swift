#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NMIR

/// Kernels of the `nn` ops (attention lives in AttentionKernel.swift).
enum NNKernels {
    static func embedding(_ table: Tensor, _ ids: Tensor) throws -> Tensor {
        let vocab = table.shape[0], dim = table.shape[1]
        var out = [Float](repeating: 0, count: ids.count * dim)
        for (i, id) in ids.ints.enumerated() {
            guard id >= 0, Int(id) < vocab else { throw InterpreterError("token id \(id) is outside the table's \(vocab) rows") }
            let row = Int(id) * dim
            for d in 0..<dim { out[i * dim + d] = table.floats[row + d] }
        }
        return Tensor(shape: ids.shape + [dim], floats: out)
    }

    /// x / sqrt(mean(x²) + eps) · w over the last dim; the mean accumulates in Double.
    static func rmsNorm(_ x: Tensor, _ w: Tensor, eps: Double) -> Tensor {
        let dim = x.shape.last ?? 1
        var out = [Float](repeating: 0, count: x.count)
        for row in 0..<(dim == 0 ? 0 : x.count / dim) {
            var sum = 0.0
            for d in 0..<dim { let v = Double(x.floats[row * dim + d]); sum += v * v }
            let inv = Float(1 / (sum / Double(dim) + eps).squareRoot())
            for d in 0..<dim { out[row * dim + d] = x.floats[row * dim + d] * inv * w.floats[d] }
        }
        return Tensor(shape: x.shape, floats: out, dtype: x.dtype)
    }

    /// x [..., k] · wᵀ with w [n, k].
    static func linear(_ x: Tensor, _ w: Tensor) -> Tensor {
        let k = w.shape[1], n = w.shape[0]
        let m = k == 0 ? 0 : x.count / k
        let y = BLAS.matmulTransposedB(x.floats, w.floats, m: m, n: n, k: k)
        return Tensor(shape: Array(x.shape.dropLast()) + [n], floats: y, dtype: x.dtype)
    }

    /// Batched [..., m, k] × [..., k, n].
    static func matmul(_ a: Tensor, _ b: Tensor) -> Tensor {
        let r = a.shape.count
        let m = a.shape[r - 2], k = a.shape[r - 1], n = b.shape[r - 1]
        let batch = a.shape.dropLast(2).reduce(1, *)
        var out = [Float](repeating: 0, count: batch * m * n)
        for bi in 0..<batch {
            let product = BLAS.matmul(Array(a.floats[(bi * m * k)..<((bi + 1) * m * k)]),
                                      Array(b.floats[(bi * k * n)..<((bi + 1) * k * n)]), m: m, n: n, k: k)
            out.replaceSubrange((bi * m * n)..<((bi + 1) * m * n), with: product)
        }
        return Tensor(shape: Array(a.shape.dropLast(2)) + [m, n], floats: out, dtype: a.dtype)
    }

    /// exp(x − max) / Σ exp(x − max) along `axis`.
    static func softmax(_ x: Tensor, axis: Int) -> Tensor {
        let size = x.shape[axis]
        let inner = x.shape[(axis + 1)...].reduce(1, *)
        let outer = x.shape[..<axis].reduce(1, *)
        var out = x.floats
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * size * inner + i
                var maxValue = -Float.infinity
                for s in 0..<size { maxValue = max(maxValue, x.floats[base + s * inner]) }
                var sum = 0.0
                for s in 0..<size {
                    let e = expf(x.floats[base + s * inner] - maxValue)
                    out[base + s * inner] = e
                    sum += Double(e)
                }
                for s in 0..<size { out[base + s * inner] = Float(Double(out[base + s * inner]) / sum) }
            }
        }
        return Tensor(shape: x.shape, floats: out, dtype: x.dtype)
    }

    /// Rotates pairs of x [tokens, heads, d] by position · theta^(−2i/d): pairs (i, i + d/2) in
    /// the "half" style, (2i, 2i + 1) in the "interleaved" style.
    static func rope(_ x: Tensor, start: Int, theta: Double, interleaved: Bool) -> Tensor {
        let tokens = x.shape[0], heads = x.shape[1], d = x.shape[2]
        var out = x.floats
        let half = d / 2
        for t in 0..<tokens {
            let position = Double(start + t)
            for i in 0..<half {
                let angle = position * pow(theta, -2 * Double(i) / Double(d))
                let c = Float(cos(angle)), s = Float(sin(angle))
                for h in 0..<heads {
                    let base = (t * heads + h) * d
                    let a = interleaved ? base + 2 * i : base + i
                    let b = interleaved ? base + 2 * i + 1 : base + i + half
                    let x0 = x.floats[a], x1 = x.floats[b]
                    out[a] = x0 * c - x1 * s
                    out[b] = x0 * s + x1 * c
                }
            }
        }
        return Tensor(shape: x.shape, floats: out, dtype: x.dtype)
    }
}

/// Element-wise binary ops with NumPy broadcasting.
enum Elementwise {
    static func binary(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float, _ g: (Int32, Int32) -> Int32,
                       checkIntDivisor: Bool = false) throws -> Tensor {
        let shape = broadcastShape(a.shape, b.shape)
        let count = shape.reduce(1, *)
        let sa = broadcastStrides(a.shape, to: shape), sb = broadcastStrides(b.shape, to: shape)
        if a.isFloat {
            var out = [Float](repeating: 0, count: count)
            if a.shape == b.shape {
                for i in 0..<count { out[i] = f(a.floats[i], b.floats[i]) }
            } else {
                forEachOffset(shape, sa, sb) { i, ia, ib in out[i] = f(a.floats[ia], b.floats[ib]) }
            }
            return Tensor(shape: shape, floats: out, dtype: a.dtype)
        }
        if checkIntDivisor, b.ints.contains(0) { throw InterpreterError("integer division by zero") }
        var out = [Int32](repeating: 0, count: count)
        forEachOffset(shape, sa, sb) { i, ia, ib in out[i] = g(a.ints[ia], b.ints[ib]) }
        return Tensor(shape: shape, ints: out, dtype: a.dtype)
    }

    static func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
        let rank = max(a.count, b.count)
        return (0..<rank).map { i in
            let x = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let y = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            return x == 1 ? y : x
        }
    }

    /// Strides of `shape` read as `target` (0 along broadcast dims).
    static func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
        var strides = [Int](repeating: 0, count: target.count)
        var step = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            let t = i + target.count - shape.count
            strides[t] = shape[i] == 1 ? 0 : step
            step *= shape[i]
        }
        return strides
    }

    static func forEachOffset(_ shape: [Int], _ sa: [Int], _ sb: [Int], _ body: (Int, Int, Int) -> Void) {
        let count = shape.reduce(1, *)
        guard count > 0 else { return }
        var index = [Int](repeating: 0, count: shape.count)
        var ia = 0, ib = 0
        for i in 0..<count {
            body(i, ia, ib)
            var d = shape.count - 1
            while d >= 0 {
                index[d] += 1
                ia += sa[d]
                ib += sb[d]
                if index[d] < shape[d] { break }
                ia -= sa[d] * shape[d]
                ib -= sb[d] * shape[d]
                index[d] = 0
                d -= 1
            }
        }
    }
}
