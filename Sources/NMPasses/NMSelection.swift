import NMIR

/// Choosing which weights of an N:M group survive, and the score-based pruning of `magnitude`
/// (score |w|) and `wanda` (score |w| · ‖xⱼ‖, Sun et al., "A Simple and Effective Pruning
/// Approach for Large Language Models", 2023).
enum NMSelection {
    /// The positions (bit j for `scores[j]`) of the `n` highest of `count` ≤ 32 scores. Ties go
    /// to the lower index and a NaN score counts as the lowest, so exactly `n` bits are set.
    @inline(__always)
    static func keep(_ n: Int, of scores: UnsafePointer<Double>, count: Int) -> UInt32 {
        var kept: UInt32 = 0
        for j in 0..<count {
            let sj = scores[j].isNaN ? -Double.infinity : scores[j]
            var rank = 0  // how many scores come before j in the order (higher score, then lower index)
            for i in 0..<count where i != j {
                let si = scores[i].isNaN ? -Double.infinity : scores[i]
                if si > sj || (si == sj && i < j) { rank += 1 }
            }
            if rank < n { kept |= 1 << UInt32(j) }
        }
        return kept
    }

    /// Zeroes, in each row of `weights` (row-major `rows × K`, K a multiple of M) and each group
    /// of M consecutive columns, the M − N weights with the lowest score |w| · columnScale[j]
    /// (columnScale nil: 1).
    static func pruneByScore(_ weights: inout [Float], rows: Int, columns k: Int, pattern: NMPattern, columnScale: [Double]?) {
        let m = pattern.m
        var scores = [Double](repeating: 0, count: m)
        scores.withUnsafeMutableBufferPointer { sp in
            weights.withUnsafeMutableBufferPointer { wp in
                guard let s = sp.baseAddress, let w = wp.baseAddress else { return }
                for r in 0..<rows {
                    let row = w + r * k
                    var c = 0
                    while c + m <= k {
                        if let scale = columnScale {
                            for j in 0..<m { s[j] = Double(abs(row[c + j])) * scale[c + j] }
                        } else {
                            for j in 0..<m { s[j] = Double(abs(row[c + j])) }
                        }
                        let kept = keep(pattern.n, of: UnsafePointer(s), count: m)
                        for j in 0..<m where kept & (1 << UInt32(j)) == 0 { row[c + j] = 0 }
                        c += m
                    }
                }
            }
        }
    }
}
