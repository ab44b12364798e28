import Testing
@testable import NMDriver
import NMInterpreter
import NMIR
import NMPasses
import NMRuntime

/// quantize-int4 and fuse-dequant-matmul against the reference interpreter: the packed bytes the
/// pass writes, read back by the interpreter's `quant.dequant`, give the weights within half a
/// scale (RTN), and fusing does not change what the module computes.
@Suite struct QuantizeInterpreterTests {

    /// `@f(%x) = nn.linear(%x, @w)` with random weights (N of every M non-zero when `nm` is given).
    static func linearModule(rows: Int, columns: Int, nm: NMPattern?, seed: UInt64) throws -> (Module, [Float]) {
        var rng = SplitMix64(seed: seed)
        var w = (0..<rows * columns).map { _ in Float.random(in: -2..<2, using: &rng) }
        if let nm {
            for r in 0..<rows {
                for k in 0..<columns / nm.m {
                    for i in Array(0..<nm.m).shuffled(using: &rng).prefix(nm.m - nm.n) { w[r * columns + k * nm.m + i] = 0 }
                }
            }
        }
        let store = WeightStore(entries: [WeightEntry(name: "w", floats: w, type: TensorType([rows, columns], .f32, nm: nm))])
        var b = Builder(name: "f", arguments: [("x", .tensor(TensorType([nil, columns], .f32)))], weights: store)
        let wv = try b.add("nn.weight", attributes: ["name": .symbol("w")], resultName: "w")
        b.ret([try b.add("nn.linear", [b.arguments[0], wv], resultName: "y")])
        return (Module(weights: store, functions: [b.function]), w)
    }

    static func run(_ pipeline: String, on m: inout Module) throws {
        let manager = PassManager(steps: try PipelineParser(registry: DriverPasses.registry).parse(pipeline))
        try manager.run(&m)
    }

    static func apply(_ m: Module, _ x: [Float], rows: Int) throws -> [Float] {
        let columns = x.count / rows
        let out = try Interpreter(module: m).run("f", [.tensor(Tensor(shape: [rows, columns], floats: x))])
        return try #require(out.first?.tensor?.floats)
    }

    /// The identity as input: row c of the output is column c of the dequantized weight.
    static func dequantizedByTheInterpreter(_ m: Module, rows: Int, columns: Int) throws -> [Float] {
        var identity = [Float](repeating: 0, count: columns * columns)
        for c in 0..<columns { identity[c * columns + c] = 1 }
        let yt = try apply(m, identity, rows: columns)  // [columns, rows]
        return (0..<rows * columns).map { i in yt[(i % columns) * rows + i / columns] }
    }

    /// (symmetric, N, M), M = 0 for a dense weight.
    @Test(arguments: [(true, 0, 0), (false, 0, 0), (true, 2, 4), (false, 2, 4), (true, 1, 4), (false, 2, 8), (true, 4, 8)])
    func rtnRoundTripThroughTheInterpreter(symmetric: Bool, n: Int, m nmM: Int) throws {
        let nm = NMPattern(n: n, m: nmM)
        let rows = 6, columns = 40, group = 16, seed = UInt64(symmetric ? 1 : 2) * 100 + UInt64(n * 10 + nmM)
        let (original, w) = try Self.linearModule(rows: rows, columns: columns, nm: nm, seed: seed)
        var m = original
        try Self.run("quantize-int4{group=\(group) symmetric=\(symmetric)}", on: &m)
        let packed = try #require(m.weights["w.q"])
        #expect(packed.storageBytes?.count == WeightStore.storageByteCount(of: packed.type))
        let scales = try #require(m.weights["w.scales"]?.floatValues)
        let back = try Self.dequantizedByTheInterpreter(m, rows: rows, columns: columns)
        for r in 0..<rows {
            for c in 0..<columns {
                let i = r * columns + c
                let s = scales[r * 3 + c / group]
                if w[i] == 0, nm != nil {
                    #expect(back[i] == 0, "pruned [\(r), \(c)] must dequantize to 0 (seed \(seed))")
                } else {
                    #expect(abs(back[i] - w[i]) <= s / 2 * (1 + 1e-5), "[\(r), \(c)]: \(back[i]) vs \(w[i]), scale \(s) (seed \(seed))")
                }
            }
        }
    }

    /// The same outputs, bit for bit, before and after fuse-dequant-matmul.
    @Test(arguments: ["", "symmetric=false", "method=gptq"])
    func fusedModuleComputesTheSame(options: String) throws {
        let rows = 12, columns = 32
        var (m, _) = try Self.linearModule(rows: rows, columns: columns, nm: NMPattern(n: 2, m: 4), seed: 9)
        var rng = SplitMix64(seed: 10)
        let x = (0..<5 * columns).map { _ in Float.random(in: -1..<1, using: &rng) }
        if options.contains("gptq") {
            var h = [Float](repeating: 0, count: columns * columns)
            for t in 0..<5 { for i in 0..<columns { for j in 0..<columns { h[i * columns + j] += x[t * columns + i] * x[t * columns + j] } } }
            m.weights["w.calib.hessian"] = WeightEntry(name: "w.calib.hessian", floats: h, type: TensorType([columns, columns], .f32))
        }
        try Self.run("quantize-int4{group=8 \(options)}", on: &m)
        let unfused = try Self.apply(m, x, rows: 5)
        var fused = m
        try Self.run("fuse-dequant-matmul", on: &fused)
        #expect(fused.functions[0].body.map(\.name) == ["nn.weight", "nn.weight"] + (options.contains("symmetric=false") ? ["nn.weight"] : []) + ["quant.linear"])
        #expect(try Self.apply(fused, x, rows: 5) == unfused)
    }
}
