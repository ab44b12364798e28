#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import COpenBLAS
import NMIR

/// softmax(q·kᵀ·scale)·v per query head, with grouped key/value heads and a causal mask.
enum AttentionKernel {
    /// q [T, Hq, D], k and v [S, Hkv, D]. Query head h reads kv head h / (Hq / Hkv). With `causal`,
    /// query i sees keys 0 … S − T + i. Scores and products go through BLAS, one head at a time,
    /// reading the heads in place through the leading dimension.
    static func attention(q: Tensor, k: Tensor, v: Tensor, scale: Float, causal: Bool) throws -> Tensor {
        let t = q.shape[0], hq = q.shape[1], d = q.shape[2]
        let s = k.shape[0], hkv = k.shape[1]
        guard hkv > 0, hq % hkv == 0 else { throw InterpreterError("q heads \(hq) are not a multiple of kv heads \(hkv)") }
        let group = hq / hkv
        var out = [Float](repeating: 0, count: t * hq * d)
        var scores = [Float](repeating: 0, count: t * s)
        for h in 0..<hq {
            let kvh = h / group
            q.floats.withUnsafeBufferPointer { pq in
                k.floats.withUnsafeBufferPointer { pk in
                    scores.withUnsafeMutableBufferPointer { ps in
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(t), Int32(s), Int32(d), scale,
                                    pq.baseAddress! + h * d, Int32(hq * d), pk.baseAddress! + kvh * d, Int32(hkv * d),
                                    0, ps.baseAddress, Int32(s))
                    }
                }
            }
            for i in 0..<t {
                let visible = causal ? min(s, max(0, s - t + i + 1)) : s
                let row = i * s
                var maxValue = -Float.infinity
                for j in 0..<visible { maxValue = max(maxValue, scores[row + j]) }
                var sum = 0.0
                for j in 0..<visible {
                    let e = expf(scores[row + j] - maxValue)
                    scores[row + j] = e
                    sum += Double(e)
                }
                let inv = sum > 0 ? Float(1 / sum) : 0
                for j in 0..<visible { scores[row + j] *= inv }
                for j in visible..<s { scores[row + j] = 0 }
            }
            scores.withUnsafeBufferPointer { ps in
                v.floats.withUnsafeBufferPointer { pv in
                    out.withUnsafeMutableBufferPointer { po in
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(t), Int32(d), Int32(s), 1,
                                    ps.baseAddress, Int32(s), pv.baseAddress! + kvh * d, Int32(hkv * d),
                                    0, po.baseAddress! + h * d, Int32(hq * d))
                    }
                }
            }
        }
        return Tensor(shape: [t, hq, d], floats: out, dtype: q.dtype)
    }
}
