#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import NMIR

/// Group-wise integer quantization of a weight matrix `[R, C]` (`[out, in]`): every row is cut
/// into groups of `group` consecutive logical columns (the last one may be shorter), and each
/// group gets one scale (and, asymmetric, one zero point), so that `w ≈ (q − zero) · scale` with
/// `q` a signed `bits`-bit integer (−8 … 7 for 4 bits).
///
/// - Symmetric: `scale = max|w| / 7`, `zero = 0`, `q = clamp(round(w / scale), −8, 7)`.
/// - Asymmetric: the range `[min(w), max(w)]` is widened to hold 0 (as GPTQ's reference does, so
///   that 0 is exact and the zero point always fits 4 bits); `scale = (max − min) / 15`,
///   `zero = round(−min / scale) − 8 ∈ [−8, 7]`, `q = clamp(round(w / scale) + zero, −8, 7)`.
///
/// Scales are stored as f16, so they are rounded to f16 first and `q` is computed with the rounded
/// scale: dequantizing the stored numbers gives back exactly what the quantizer aimed at, with an
/// error of at most `scale / 2` per element (plus at most `7 · scale · 2⁻¹¹` where f16 rounding
/// pushed the largest value just past the clamp). A group whose values are all zero (or that
/// keeps no value under N:M) gets scale 1 and q = 0 (zero point 0), so it dequantizes to zeros
/// and never divides by 0. A non-zero scale too small for f16 becomes the smallest f16
/// subnormal (2⁻²⁴), one too large the largest finite f16. Rounding is to nearest, ties to even.
///
/// With `clipSearch` (GPTQ's reference `mse` option) the range is not taken as it is: the group
/// tries the ranges `[p · min, p · max]` for p = 1, 0.99, … 0.21 and keeps the one whose
/// parameters give the least Σ |w − ŵ|^2.4 over the group's values (the first on ties), so a few
/// large values are clipped when that lets the rest round more finely. Same storage, same
/// dequantization; RTN and GPTQ both take their group parameters from here.
public struct GroupQuantizer: Sendable, Equatable {
    public var bits: Int
    public var group: Int
    public var symmetric: Bool
    /// Choose each group's range by the least rounding error instead of its min and max.
    public var clipSearch: Bool

    public init(bits: Int = 4, group: Int, symmetric: Bool, clipSearch: Bool = false) {
        self.bits = bits
        self.group = group
        self.symmetric = symmetric
        self.clipSearch = clipSearch
    }

    /// The clip search's candidates: p = 1 − i / `clipGrid` for i < `clipSteps`; the error's exponent.
    static let clipGrid = 100, clipSteps = 80, clipNorm = 2.4

    /// |e|^`clipNorm`, the clip search's measure of one value's rounding error.
    @inline(__always)
    static func clipError(_ e: Double) -> Double { e == 0 ? 0 : pow(abs(e), clipNorm) }

    /// Smallest and largest stored integer: −8 and 7 for 4 bits.
    public var qmin: Int { -(1 << (bits - 1)) }
    public var qmax: Int { (1 << (bits - 1)) - 1 }

    /// The scale and zero point of one group.
    public struct Parameters: Sendable, Equatable {
        /// Exactly representable in f16.
        public var scale: Float
        public var zero: Int
        public init(scale: Float, zero: Int) {
            self.scale = scale
            self.zero = zero
        }
    }

    /// Groups per row of a matrix with `columns` columns.
    public func groups(columns: Int) -> Int { (columns + group - 1) / group }

    /// A scale rounded to f16 the way it will be stored (never 0 or infinite).
    public static func f16Scale(_ s: Double) -> Float {
        let h = Float16(Float(s))
        if h == 0 { return Float(Float16.leastNonzeroMagnitude) }
        if !h.isFinite { return Float(Float16.greatestFiniteMagnitude) }
        return Float(h)
    }

    /// Parameters of a group whose kept values range over `[lo, hi]` (`nil`: no kept value).
    public func parameters(min lo: Double, max hi: Double) -> Parameters {
        if symmetric {
            let amax = Swift.max(abs(lo), abs(hi))
            guard amax > 0 else { return Parameters(scale: 1, zero: 0) }
            return Parameters(scale: Self.f16Scale(amax / Double(qmax)), zero: 0)
        }
        let low = Swift.min(lo, 0), high = Swift.max(hi, 0)
        guard high > low else { return Parameters(scale: 1, zero: 0) }
        let levels = Double(qmax - qmin)
        let scale = Self.f16Scale((high - low) / levels)
        let zeroUnsigned = Swift.min(Swift.max((-low / Double(scale)).rounded(.toNearestOrEven), 0), levels)
        return Parameters(scale: scale, zero: Int(zeroUnsigned) + qmin)
    }

    /// Parameters of the group holding `values` (those where `kept` is true, when given).
    public func parameters(of values: UnsafeBufferPointer<Double>, kept: UnsafeBufferPointer<Bool>? = nil) -> Parameters {
        var lo = Double.infinity, hi = -Double.infinity
        for i in 0..<values.count where kept?[i] ?? true {
            lo = Swift.min(lo, values[i])
            hi = Swift.max(hi, values[i])
        }
        guard lo <= hi else { return Parameters(scale: 1, zero: 0) }
        guard clipSearch else { return parameters(min: lo, max: hi) }
        var best = parameters(min: lo, max: hi), bestError = Double.infinity
        for i in 0..<Self.clipSteps {
            let p = 1 - Double(i) / Double(Self.clipGrid)
            let candidate = parameters(min: p * lo, max: p * hi)
            var error = 0.0
            for j in 0..<values.count where kept?[j] ?? true {
                error += Self.clipError(values[j] - dequantize(quantize(values[j], candidate), candidate))
            }
            if error < bestError {
                best = candidate
                bestError = error
            }
        }
        return best
    }

    /// The stored integer for `w`.
    @inline(__always)
    public func quantize(_ w: Double, _ p: Parameters) -> Int {
        let q = (w / Double(p.scale)).rounded(.toNearestOrEven) + Double(p.zero)
        return Int(Swift.min(Swift.max(q, Double(qmin)), Double(qmax)))
    }

    /// The value a stored integer stands for.
    @inline(__always)
    public func dequantize(_ q: Int, _ p: Parameters) -> Double { Double(q - p.zero) * Double(p.scale) }

    /// Round-to-nearest quantization of a whole row-major matrix. With `kept` (N:M), positions
    /// not kept get q = 0 and do not take part in their group's range.
    public func quantizeRTN(_ weights: [Double], rows: Int, columns: Int, kept: [Bool]? = nil) -> GroupQuantized {
        let groupsPerRow = groups(columns: columns)
        var result = GroupQuantized(rows: rows, columns: columns, groupsPerRow: groupsPerRow, zeroPoints: !symmetric)
        let zeros = result.zeros
        var zeroBuffer = zeros ?? []
        weights.withUnsafeBufferPointer { w in
            result.q.withUnsafeMutableBufferPointer { qp in
                result.scales.withUnsafeMutableBufferPointer { sp in
                    zeroBuffer.withUnsafeMutableBufferPointer { zp in
                    withOptionalBuffer(kept) { kp in
                        let shared = RTNBuffers(w: w, q: qp, scales: sp, zeros: zeros == nil ? nil : zp, kept: kp)
                        let work: @Sendable (Int) -> Void = { r in
                            for g in 0..<groupsPerRow {
                                let start = r * columns + g * group, count = Swift.min(group, columns - g * group)
                                let values = UnsafeBufferPointer(rebasing: shared.w[start..<start + count])
                                let p = parameters(of: values, kept: shared.kept.map { UnsafeBufferPointer(rebasing: $0[start..<start + count]) })
                                shared.scales[r * groupsPerRow + g] = p.scale
                                shared.zeros?[r * groupsPerRow + g] = Int8(p.zero)
                                for i in start..<start + count where shared.kept?[i] ?? true {
                                    shared.q[i] = Int8(quantize(shared.w[i], p))
                                }
                            }
                        }
                        // The clip search costs ~80 roundings per weight: spread the rows over the cores.
                        if clipSearch, rows > 1 {
                            DispatchQueue.concurrentPerform(iterations: rows, execute: work)
                        } else {
                            for r in 0..<rows { work(r) }
                        }
                    }
                    }
                }
            }
        }
        if zeros != nil { result.zeros = zeroBuffer }
        return result
    }

    /// What the rows of `quantizeRTN` share: each writes only its own row of `q`, `scales`, `zeros`.
    private struct RTNBuffers: @unchecked Sendable {
        let w: UnsafeBufferPointer<Double>
        let q: UnsafeMutableBufferPointer<Int8>
        let scales: UnsafeMutableBufferPointer<Float>
        let zeros: UnsafeMutableBufferPointer<Int8>?
        let kept: UnsafeBufferPointer<Bool>?
    }
}

/// A matrix quantized in groups: the integers of every logical position (0 where N:M pruned),
/// and the per-group scales (f16 values) and zero points.
public struct GroupQuantized: Sendable, Equatable {
    public var rows: Int
    public var columns: Int
    public var groupsPerRow: Int
    /// `rows × columns`, row-major.
    public var q: [Int8]
    /// `rows × groupsPerRow`, each exactly representable in f16.
    public var scales: [Float]
    /// `rows × groupsPerRow` when asymmetric.
    public var zeros: [Int8]?

    public init(rows: Int, columns: Int, groupsPerRow: Int, zeroPoints: Bool) {
        self.rows = rows
        self.columns = columns
        self.groupsPerRow = groupsPerRow
        q = [Int8](repeating: 0, count: rows * columns)
        scales = [Float](repeating: 1, count: rows * groupsPerRow)
        zeros = zeroPoints ? [Int8](repeating: 0, count: rows * groupsPerRow) : nil
    }

    public mutating func setParameters(_ p: GroupQuantizer.Parameters, row: Int, group: Int) {
        scales[row * groupsPerRow + group] = p.scale
        zeros?[row * groupsPerRow + group] = Int8(p.zero)
    }

    /// The f32 matrix the stored numbers stand for (as `quant.dequant` computes it: 0 where
    /// `kept` is false).
    public func dequantized(group: Int, kept: [Bool]? = nil) -> [Float] {
        var out = [Float](repeating: 0, count: rows * columns)
        for r in 0..<rows {
            for c in 0..<columns where kept?[r * columns + c] ?? true {
                let g = r * groupsPerRow + c / group
                out[r * columns + c] = Float(Int(q[r * columns + c]) - Int(zeros?[g] ?? 0)) * scales[g]
            }
        }
        return out
    }
}
