import COpenBLAS

/// f32 matrix products through OpenBLAS, for the interpreter's matmul.
public enum BLAS {
    /// C = A · Bᵀ with A [m, k], B [n, k], C [m, n], all row-major.
    public static func matmulTransposedB(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int) -> [Float] {
        gemm(a, b, m: m, n: n, k: k, transposeB: true)
    }

    /// C = A · B with A [m, k], B [k, n], C [m, n], all row-major.
    public static func matmul(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int) -> [Float] {
        gemm(a, b, m: m, n: n, k: k, transposeB: false)
    }

    private static func gemm(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int, transposeB: Bool) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        guard m > 0, n > 0, k > 0 else { return c }
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), Int32(k), 1,
                                pa.baseAddress, Int32(k), pb.baseAddress, Int32(transposeB ? k : n), 0, pc.baseAddress, Int32(n))
                }
            }
        }
        return c
    }
}

extension BLAS {
    /// H += XᵀX for X [rows, cols] row-major, into the upper triangle of H [cols, cols]
    /// (call `symmetrize` once at the end).
    public static func addGramUpper(_ x: [Float], rows: Int, cols: Int, into h: inout [Float]) {
        guard rows > 0, cols > 0 else { return }
        x.withUnsafeBufferPointer { px in
            h.withUnsafeMutableBufferPointer { ph in
                cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(cols), Int32(rows), 1,
                            px.baseAddress, Int32(cols), 1, ph.baseAddress, Int32(cols))
            }
        }
    }

    /// Copies the upper triangle of a square row-major matrix onto the lower one.
    public static func symmetrize(_ h: inout [Float], size n: Int) {
        for i in 0..<n { for j in 0..<i { h[i * n + j] = h[j * n + i] } }
    }
}
