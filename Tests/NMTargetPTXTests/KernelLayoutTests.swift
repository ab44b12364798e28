import NMRuntime
import Testing
@testable import NMTargetPTX

/// Runs the re-laid weights through a host model of the warp-level tensor-core instructions, as
/// the PTX ISA defines their fragments (lane = 4g + t), feeding each lane exactly what the PTX
/// kernels feed it; the result must be the host reference of ir-specs/quant.md. This checks the
/// layouts without a GPU (on the GPU, nmc-run --gpu-check runs the kernels themselves).
@Suite struct KernelLayoutTests {
    static func randomX(tokens: Int, columns: Int, rng: inout SplitMix64) -> [UInt16] {
        (0..<(tokens * columns)).map { _ in Float16(Float.random(in: -1...1, using: &rng)).bitPattern }
    }

    static func f16(_ bits: UInt32) -> Double { Double(Float(Float16(bitPattern: UInt16(truncatingIfNeeded: bits)))) }

    /// The A element pair of register `i` as the kernels dequantize it: nibbles i and 4 + i, minus 8, times the scale.
    static func dequantPair(_ word: UInt32, _ i: Int, scale: Double) -> (Double, Double) {
        (Double(Int((word >> (4 * UInt32(i))) & 0xF) - 8) * scale, Double(Int((word >> (16 + 4 * UInt32(i))) & 0xF) - 8) * scale)
    }

    /// Scales of rows g (low half) and g + 8 (high half) from the scale layout.
    static func scalePair(_ scales: [UInt32], tile: Int, unit: Int, units: Int, g: Int) -> (Double, Double) {
        let s = scales[(tile * units + unit) * 8 + g]
        return (f16(s & 0xFFFF), f16(s >> 16))
    }

    /// y = x · Wᵀ from the dense layout (INT4 or FP16), through m16n8k16 steps.
    static func emulateDense(values: [UInt32], scales: [UInt32]?, rows: Int, columns: Int, x: [UInt16], token: Int) -> [Double] {
        let units = columns / 128
        var y = [Double](repeating: 0, count: rows)
        for tile in 0..<(rows / 16) {
            for unit in 0..<units { for h in 0..<2 { for s in 0..<4 {
                var a = [[Double]](repeating: [Double](repeating: 0, count: 16), count: 16)  // [row][logical k]
                var bcol = [Double](repeating: 0, count: 16)                                 // B[k][token]
                for lane in 0..<32 {
                    let g = lane / 4, t = lane % 4
                    for i in 0..<4 {
                        let pair: (Double, Double)
                        if let scales {
                            let word = values[(((tile * units + unit) * 2 + h) * 32 + lane) * 4 + s]
                            let sp = scalePair(scales, tile: tile, unit: unit, units: units, g: g)
                            pair = dequantPair(word, i, scale: i % 2 == 0 ? sp.0 : sp.1)
                        } else {
                            let word = values[((((tile * units + unit) * 2 + h) * 4 + s) * 32 + lane) * 4 + i]
                            pair = (f16(word & 0xFFFF), f16(word >> 16))
                        }
                        let row = g + 8 * (i % 2), k = 2 * t + 8 * (i / 2)
                        a[row][k] = pair.0; a[row][k + 1] = pair.1
                    }
                    // The kernels' B registers for token column g = 0: the lane's 16 activations.
                    if g == 0 {
                        for e in 0..<4 {
                            let column = unit * 128 + 64 * h + 16 * t + 4 * s + e
                            bcol[2 * t + 8 * (e / 2) + e % 2] = Double(Float(Float16(bitPattern: x[token * columns + column])))
                        }
                    }
                }
                for row in 0..<16 { for k in 0..<16 { y[tile * 16 + row] += a[row][k] * bcol[k] } }
            } } }
        }
        return y
    }

    /// y = x · Wᵀ from the 2:4 layout, through m16n8k32 sparse steps with the layout's metadata.
    static func emulateSparse(values: [UInt32], metadata: [UInt32], scales: [UInt32], rows: Int, columns: Int,
                              x: [UInt16], token: Int) -> [Double] {
        let units = columns / 128
        var y = [Double](repeating: 0, count: rows)
        for tile in 0..<(rows / 16) {
            for unit in 0..<units { for s in 0..<4 {
                var compressed = [[Double]](repeating: [Double](repeating: 0, count: 16), count: 16)
                var index = [[Int]](repeating: [Int](repeating: -1, count: 16), count: 16)
                let selector = s / 2
                for lane in 0..<32 {
                    let g = lane / 4, t = lane % 4
                    let word = values[((tile * units + unit) * 32 + lane) * 4 + s]
                    let sp = scalePair(scales, tile: tile, unit: unit, units: units, g: g)
                    for i in 0..<4 {
                        let (v0, v1) = dequantPair(word, i, scale: i % 2 == 0 ? sp.0 : sp.1)
                        let row = g + 8 * (i % 2), j = 2 * t + 8 * (i / 2)
                        compressed[row][j] = v0; compressed[row][j + 1] = v1
                    }
                    // Only the lanes the selector names supply metadata: t = 2·selector + h.
                    guard t / 2 == selector else { continue }
                    let half = t % 2
                    let e = metadata[((tile * units + unit) * 32 + lane) * 2 + s % 2]
                    for (r, bits) in [(g, e & 0xFFFF), (g + 8, e >> 16)] {
                        for c in 0..<4 {
                            let nibble = Int((bits >> (4 * UInt32(c))) & 0xF)
                            let j = 2 * (4 * half + c)
                            index[r][j] = nibble & 3; index[r][j + 1] = nibble >> 2
                        }
                    }
                }
                for row in 0..<16 { for j in 0..<16 {
                    let k = 4 * (j / 2) + index[row][j]  // the logical column within the step's 32
                    let column = unit * 128 + 32 * s + k
                    y[tile * 16 + row] += compressed[row][j] * Double(Float(Float16(bitPattern: x[token * columns + column])))
                } }
            } }
        }
        return y
    }

    static func expectClose(_ got: [Double], _ want: [Double]) {
        let scale = want.map(abs).max() ?? 1
        let worst = zip(got, want).map { abs($0 - $1) }.max() ?? 0
        // The kernels round each dequantized weight to f16 (q · scale); nothing else differs.
        #expect(worst <= 2e-3 * scale, "max error \(worst) against max |ref| \(scale)")
    }

    @Test func denseInt4LayoutComputesTheReference() throws {
        let seed: UInt64 = 0x5EED_0001
        print("KernelLayoutTests.denseInt4: seed \(seed)")
        var rng = SplitMix64(seed: seed)
        let w = try PackedINT4Weight.random(rows: 32, columns: 256, group: 128, sparse24: false, using: &rng)
        let x = Self.randomX(tokens: 2, columns: 256, rng: &rng)
        let values = try KernelWeightLayout.int4Dense(w), scales = try KernelWeightLayout.scales(w)
        let reference = w.referenceLinear(x: x, tokens: [0, 1])
        for token in 0..<2 {
            Self.expectClose(Self.emulateDense(values: values, scales: scales, rows: 32, columns: 256, x: x, token: token), reference[token])
        }
    }

    @Test func fp16LayoutComputesTheReference() throws {
        let seed: UInt64 = 0x5EED_0002
        print("KernelLayoutTests.fp16: seed \(seed)")
        var rng = SplitMix64(seed: seed)
        let rows = 16, columns = 256
        let w16 = (0..<(rows * columns)).map { _ in Float16(Float.random(in: -0.1...0.1, using: &rng)).bitPattern }
        let x = Self.randomX(tokens: 1, columns: columns, rng: &rng)
        var reference = [Double](repeating: 0, count: rows)
        for r in 0..<rows { for c in 0..<columns {
            reference[r] += Double(Float(Float16(bitPattern: w16[r * columns + c]))) * Double(Float(Float16(bitPattern: x[c])))
        } }
        let values = try KernelWeightLayout.fp16(w16, rows: rows, columns: columns)
        Self.expectClose(Self.emulateDense(values: values, scales: nil, rows: rows, columns: columns, x: x, token: 0), reference)
    }

    @Test func sparse24LayoutComputesTheReference() throws {
        let seed: UInt64 = 0x5EED_0003
        print("KernelLayoutTests.sparse24: seed \(seed)")
        var rng = SplitMix64(seed: seed)
        let w = try PackedINT4Weight.random(rows: 32, columns: 384, group: 128, sparse24: true, using: &rng)
        let x = Self.randomX(tokens: 1, columns: 384, rng: &rng)
        let got = Self.emulateSparse(values: try KernelWeightLayout.int4Sparse24Values(w),
                                     metadata: try KernelWeightLayout.int4Sparse24Metadata(w),
                                     scales: try KernelWeightLayout.scales(w), rows: 32, columns: 384, x: x, token: 0)
        Self.expectClose(got, w.referenceLinear(x: x, tokens: [0])[0])
    }

    @Test func layoutsRejectShapesTheKernelsCannotTake() throws {
        var rng = SplitMix64(seed: 7)
        let odd = try PackedINT4Weight.random(rows: 24, columns: 128, group: 128, sparse24: false, using: &rng)
        #expect(throws: PTXError.self) { try KernelWeightLayout.int4Dense(odd) }
        let group32 = try PackedINT4Weight.random(rows: 16, columns: 128, group: 32, sparse24: false, using: &rng)
        #expect(throws: PTXError.self) { try KernelWeightLayout.scales(group32) }
        let dense = try PackedINT4Weight.random(rows: 16, columns: 128, group: 128, sparse24: false, using: &rng)
        #expect(throws: PTXError.self) { try KernelWeightLayout.int4Sparse24Values(dense) }
    }
}
