/// Dense Cholesky factorization and triangular inversion in Double, for the K×K Hessians of
/// SparseGPT (K = 576 or 1536 in SmolLM2). Matrices are row-major `n × n` buffers.
///
/// Both routines are blocked so that the bulk of the work is `axpy` over contiguous rows whose
/// operands stay in cache (a panel of `blockRows` rows is reused by every trailing row), which
/// the compiler vectorizes; the plain row-by-row versions re-read the whole matrix once per row
/// and are several times slower at K = 1536.
enum Cholesky {
    static let blockRows = 48

    /// Factors the symmetric positive definite matrix whose upper triangle is in `a` as
    /// `A = Rᵀ R`, R upper triangular with a positive diagonal, written over the upper triangle
    /// (the strict lower triangle is neither read nor written). Returns nil on success, or the
    /// index of the first pivot that is not positive (A is not positive definite).
    static func factorUpper(_ a: UnsafeMutablePointer<Double>, n: Int) -> Int? {
        var kb = 0
        while kb < n {
            let ke = min(kb + blockRows, n)
            // The panel: rows kb..<ke, factored and scaled across every column to the right.
            for k in kb..<ke {
                let rowK = a + k * n
                let pivot = rowK[k]
                guard pivot > 0, pivot.isFinite else { return k }
                let r = pivot.squareRoot()
                rowK[k] = r
                let inverse = 1 / r
                for j in (k + 1)..<max(k + 1, n) { rowK[j] *= inverse }
                for i in (k + 1)..<max(k + 1, ke) {
                    let c = rowK[i]
                    if c != 0 { axpy(a + i * n + i, -c, rowK + i, count: n - i) }
                }
            }
            // The trailing matrix: A[i, i...] -= Σ_k R[k, i] R[k, i...] over the panel rows k.
            for i in ke..<max(ke, n) {
                let rowI = a + i * n + i
                for k in kb..<ke {
                    let c = a[k * n + i]
                    if c != 0 { axpy(rowI, -c, a + k * n + i, count: n - i) }
                }
            }
            kb = ke
        }
        return nil
    }

    /// Writes `X = R⁻¹` (upper triangular) for the upper triangular `r` with a non-zero diagonal
    /// into `x`, which must be zero-filled; only the upper triangle of `r` is read.
    /// Row i of X is `(eᵢ − Σ_{k>i} R[i,k] X[k,·]) / R[i,i]`: rows are solved from the bottom,
    /// a block of rows at a time, the rows below the block being reused by every row of it.
    static func invertUpper(_ r: UnsafePointer<Double>, into x: UnsafeMutablePointer<Double>, n: Int) {
        var ie = n
        while ie > 0 {
            let ib = max(ie - blockRows, 0)
            // What the finished rows below the block contribute: X[i, k...] += R[i,k] X[k, k...].
            for k in ie..<max(ie, n) {
                let rowK = x + k * n + k
                for i in ib..<ie {
                    let c = r[i * n + k]
                    if c != 0 { axpy(x + i * n + k, c, UnsafePointer(rowK), count: n - k) }
                }
            }
            for i in (ib..<ie).reversed() {
                let rowI = x + i * n
                for k in (i + 1)..<max(i + 1, ie) {
                    let c = r[i * n + k]
                    if c != 0 { axpy(rowI + k, c, UnsafePointer(x + k * n + k), count: n - k) }
                }
                let d = 1 / r[i * n + i]
                for j in (i + 1)..<max(i + 1, n) { rowI[j] *= -d }
                rowI[i] = d
            }
            ie = ib
        }
    }

    /// `y[0..<count] += alpha · x[0..<count]`.
    @inline(__always)
    static func axpy(_ y: UnsafeMutablePointer<Double>, _ alpha: Double, _ x: UnsafePointer<Double>, count: Int) {
        for j in 0..<count { y[j] += alpha * x[j] }
    }

    @inline(__always)
    static func axpy(_ y: UnsafeMutablePointer<Double>, _ alpha: Double, _ x: UnsafeMutablePointer<Double>, count: Int) {
        axpy(y, alpha, UnsafePointer(x), count: count)
    }
}
