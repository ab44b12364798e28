#if canImport(Glibc)
import Glibc
#endif
import NMRuntime
import NMTargetPTX

/// `nmc-run --gpu-check`, the decode step's kernels one by one against host references computed
/// in Double from the same inputs (ir-specs/nn.md's semantics): RMSNorm with and without the
/// residual add, rotary in both styles at a late position, attention with GQA at several
/// positions with and without splits, SiLU·up and the embedding. Inputs are random, outputs
/// poisoned first; the error is max |y − ref| / max |ref|, and f16 outputs must be within 2e-3.
struct DecodeKernelCheck {
    let device: CUDADevice
    var rng: SplitMix64

    init(device: CUDADevice, seed: UInt64) {
        self.device = device
        rng = SplitMix64(seed: seed ^ 0xDEC0DE)
    }

    mutating func randoms(_ n: Int, _ range: ClosedRange<Float> = -1...1) -> [Float] {
        (0..<n).map { _ in Float.random(in: range, using: &rng) }
    }

    func f16(_ v: [Float]) -> [UInt16] { v.map { Float16($0).bitPattern } }
    func floats(_ h: [UInt16]) -> [Float] { h.map { Float(Float16(bitPattern: $0)) } }

    func error(_ got: [Float], _ want: [Double], _ what: String, limit: Double, log: (String) -> Void) throws {
        let scale = want.map(abs).max() ?? 1
        var worst = 0.0
        for (g, w) in zip(got, want) {
            let e = abs(Double(g) - w) / max(scale, 1e-30)
            worst = e.isNaN || !g.isFinite ? .infinity : max(worst, e)
        }
        log(String(format: "  %@: max rel error %.2e", what, worst))
        guard worst <= limit else { throw BenchFailure("gpu-check: \(what): relative error \(worst) over \(limit)") }
    }

    func run(_ k: (entry: String, ptx: String), grid: (Int, Int, Int), block: Int, _ args: [CUDAKernelArgument]) throws {
        let module = try device.loadModule(ptx: PTXModule.text(entries: [k.ptx]), label: k.entry)
        try device.launch(try module.function(k.entry), grid: grid, block: (block, 1, 1), arguments: args)
        try device.synchronize()
    }

    mutating func run(log: (String) -> Void) throws {
        var buffers: [CUDevicePointer] = []
        defer { buffers.forEach(device.free) }
        func buffer<T>(_ v: [T]) throws -> CUDevicePointer { let p = try device.buffer(v); buffers.append(p); return p }
        func poisoned(_ bytes: Int) throws -> CUDevicePointer {
            let p = try device.allocate(bytes); buffers.append(p)
            try device.fill(p, byte: 0xFF, bytes: bytes)
            return p
        }
        let position = 200, capacity = 256
        let state = try buffer([UInt32(3), UInt32(position)])

        // RMSNorm, with the residual add: sum = x + y, out = sum / rms · w (f16, 0 past dim).
        for (dim, padded, add) in [(4096, 4096, true), (576, 640, true), (576, 640, false)] {
            let x = randoms(dim, -2...2), y = f16(randoms(dim)), w = randoms(dim, 0.5...1.5)
            let xb = try buffer(x), yb = try buffer(y), wb = try buffer(w), sum = try poisoned(4 * dim), out = try poisoned(2 * padded)
            let k = DecodeStepKernels.rmsNorm(dim: dim, padded: padded, eps: 1e-5, add: add)
            try run(k, grid: (1, 1, 1), block: 256, add ? [.pointer(xb), .pointer(yb), .pointer(sum), .pointer(wb), .pointer(out)]
                                                         : [.pointer(xb), .pointer(wb), .pointer(out)])
            let v = (0..<dim).map { Double(x[$0]) + (add ? Double(Float(Float16(bitPattern: y[$0]))) : 0) }
            let inv = 1 / ((v.reduce(0) { $0 + $1 * $1 } / Double(dim) + 1e-5).squareRoot())
            let want = (0..<padded).map { $0 < dim ? v[$0] * inv * Double(w[$0]) : 0 }
            try error(floats(try device.download(out, count: padded, as: UInt16.self)), want, "rms_norm d\(dim) p\(padded)\(add ? " + add" : "")",
                      limit: 2e-3, log: log)
            if add { try error(try device.download(sum, count: dim, as: Float.self), v, "  its residual sum", limit: 1e-6, log: log) }
        }

        // Rotary at position 200, both styles: rows of the cache (row stride H·D) and plain.
        for interleaved in [true, false] {
            let heads = 8, d = 128
            let x = f16(randoms(heads * d))
            let table = DecodeStepKernels.ropeTable(theta: 10000, headDim: d, capacity: capacity)
            let xb = try buffer(x), tb = try buffer(table), out = try poisoned(4 * capacity * heads * d)
            let k = DecodeStepKernels.rope(heads: heads, headDim: d, interleaved: interleaved)
            try run(k, grid: ((heads * d / 2 + 255) / 256, 1, 1), block: 256,
                    [.pointer(xb), .pointer(out), .pointer(tb), .pointer(state), .u32(UInt32(heads * d))])
            let got = try device.download(out + UInt64(4 * position * heads * d), count: heads * d, as: Float.self)
            var want = [Double](repeating: 0, count: heads * d)
            let xs = floats(x).map(Double.init)
            for h in 0..<heads {
                for i in 0..<(d / 2) {
                    let angle = Double(position) * pow(10000, -2 * Double(i) / Double(d))
                    let a = h * d + (interleaved ? 2 * i : i), b = interleaved ? a + 1 : a + d / 2
                    want[a] = xs[a] * cos(angle) - xs[b] * sin(angle)
                    want[b] = xs[a] * sin(angle) + xs[b] * cos(angle)
                }
            }
            try error(got, want, "rope h8 d128 \(interleaved ? "interleaved" : "half") at position \(position)", limit: 1e-5, log: log)
        }

        // Attention over the cache with GQA (32 query heads on 8 kv heads, D = 128; 9 on 3, D = 64)
        // at several positions, unsplit and in splits.
        for (hq, hkv, d) in [(32, 8, 128), (9, 3, 64)] {
            let kc = randoms(capacity * hkv * d), vc = randoms(capacity * hkv * d), q = randoms(hq * d)
            let kb = try buffer(kc), vb = try buffer(vc), qb = try buffer(q)
            let scale = 1 / Double(d).squareRoot()
            for splits in [1, 4, 8] {
                let k = try DecodeStepKernels.attention(heads: hq, kvHeads: hkv, headDim: d, capacity: capacity, splits: splits)
                let scratch = try buffer([Float](repeating: 0, count: hq * splits * (d + 2) + hq))
                for p in [0, 5, 200, 255] {
                    try device.upload([UInt32(3), UInt32(p)], to: state)
                    let out = try poisoned(2 * hq * d)
                    var args: [CUDAKernelArgument] = [.pointer(qb), .pointer(kb), .pointer(vb), .pointer(out), .pointer(state),
                                                      .u32(Float(scale).bitPattern)]
                    if splits > 1 { args.append(.pointer(scratch)) }
                    try run(k, grid: (hq, splits, 1), block: DecodeStepKernels.attentionThreads, args)
                    var want = [Double](repeating: 0, count: hq * d)
                    for h in 0..<hq {
                        let g = h / (hq / hkv)
                        let s = (0...p).map { j in (0..<d).reduce(0.0) { $0 + Double(q[h * d + $1]) * Double(kc[(j * hkv + g) * d + $1]) } * scale }
                        let m = s.max()!
                        let e = s.map { exp($0 - m) }, total = e.reduce(0, +)
                        for c in 0..<d { want[h * d + c] = (0...p).reduce(0.0) { $0 + e[$1] * Double(vc[($1 * hkv + g) * d + c]) } / total }
                    }
                    try error(floats(try device.download(out, count: hq * d, as: UInt16.self)), want,
                              "attention hq\(hq) hkv\(hkv) d\(d), \(splits) split\(splits == 1 ? "" : "s"), position \(p)", limit: 2e-3, log: log)
                }
                // The counters are back at 0 for the next launch.
                if splits > 1 {
                    let counters = try device.download(scratch + UInt64(4 * hq * splits * (d + 2)), count: hq, as: UInt32.self)
                    guard counters.allSatisfy({ $0 == 0 }) else { throw BenchFailure("gpu-check: attention counters not reset: \(counters)") }
                }
            }
        }

        // SiLU·up and the embedding.
        let n = 1536
        let g = f16(randoms(n, -4...4)), u = f16(randoms(n))
        let gb = try buffer(g), ub = try buffer(u), sm = try poisoned(2 * n)
        try run(DecodeStepKernels.siluMul(elements: n), grid: ((n + 255) / 256, 1, 1), block: 256, [.pointer(gb), .pointer(ub), .pointer(sm)])
        let gs = floats(g).map(Double.init), us = floats(u).map(Double.init)
        try error(floats(try device.download(sm, count: n, as: UInt16.self)), (0..<n).map { gs[$0] / (1 + exp(-gs[$0])) * us[$0] },
                  "silu_mul n\(n)", limit: 2e-3, log: log)
        let dim = 576, table = randoms(8 * dim)
        let tb = try buffer(table), eo = try poisoned(4 * dim)
        try run(DecodeStepKernels.embedding(dim: dim), grid: ((dim + 255) / 256, 1, 1), block: 256, [.pointer(tb), .pointer(state), .pointer(eo)])
        try error(try device.download(eo, count: dim, as: Float.self), (0..<dim).map { Double(table[3 * dim + $0]) }, "embedding (token 3)",
                  limit: 0, log: log)
        log("gpu-check: the decode-step kernels match the host reference")
    }
}
