import Foundation
import NMIR
import NMInterpreter

/// One layer shape's test vectors: random activations, the packed weights and scales in the
/// array's layout, the fold tables, and the outputs NMC's interpreter computes for
/// `quant.linear {act_bits = 8}` on the same weights.
enum TestVectors {
    static func write(layer: HLSLayer, module: Module, model: SystolicArrayModel, tokens: Int, seed: UInt64,
                      to directory: String) throws {
        guard let bytes = module.weights[layer.weight]?.storageBytes,
              let scales = module.weights[layer.scales]?.floatValues else {
            throw HLSError("@\(layer.weight) or @\(layer.scales) is not in memory; the HLS backend needs the weights loaded")
        }
        let type = layer.type
        let weights = try IntegerWeights(packed: type, bytes: bytes, denseLanes: model.pattern.n)
        let layout = try ArrayWeightLayout(weights: weights, scales: scales, group: type.group, model: model)
        let plan = try model.plan(LayerShape(rows: type.rows, columns: type.columns, group: type.group, tokens: tokens))
        let tiles = (type.rows + model.array.rows - 1) / model.array.rows * plan.folds
        var foldGroups: [Int32] = [], foldWeightGroups: [Int32] = []
        for f in 0..<plan.folds {
            for j in 0..<model.array.cols { foldGroups.append(Int32(plan.group(fold: f, column: j) ?? -1)) }
            for s in 0..<plan.segmentsPerFold { foldWeightGroups.append(Int32(plan.chunk(fold: f, segment: s)?.weightGroup ?? -1)) }
        }
        let x = activations(tokens: tokens, columns: type.columns, seed: seed)
        let expected = try interpreterOutput(layer: layer, module: module, x: x, tokens: tokens)
        let fm = FileManager.default
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try AtomicFile.write("\(tokens) \(type.rows) \(type.columns) \(plan.folds) \(tiles)\n", to: directory + "/meta.txt")
        try AtomicFile.write(littleEndian(x), to: directory + "/x.bin")
        try AtomicFile.write(littleEndian(layout.words), to: directory + "/weights.bin")
        try AtomicFile.write(littleEndian(layout.scales), to: directory + "/scales.bin")
        try AtomicFile.write(littleEndian(foldGroups), to: directory + "/fold_groups.bin")
        try AtomicFile.write(littleEndian(foldWeightGroups), to: directory + "/fold_weight_groups.bin")
        try AtomicFile.write(littleEndian(expected), to: directory + "/expected.bin")
    }

    /// Token 0 is all zeros (the scale-0 case); the others mix magnitudes from 10⁻³ to 10², with
    /// an outlier each, as LLM activations have.
    static func activations(tokens: Int, columns: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(state: seed)
        var x = [Float](repeating: 0, count: tokens * columns)
        for t in 1..<max(tokens, 1) {
            let magnitude = Float(pow(10.0, Double(t % 6) - 3))
            for c in 0..<columns { x[t * columns + c] = Float.random(in: -1...1, using: &rng) * magnitude }
            x[t * columns + Int.random(in: 0..<columns, using: &rng)] = 20 * magnitude
        }
        return x
    }

    /// Runs `quant.linear {act_bits = 8}` on the layer's weights through the interpreter.
    static func interpreterOutput(layer: HLSLayer, module: Module, x: [Float], tokens: Int) throws -> [Float] {
        guard let w = module.weights[layer.weight], let s = module.weights[layer.scales], case .tensor(let sType) = s.type else {
            throw HLSError("@\(layer.weight) has no scales")
        }
        let type = layer.type
        var b = Builder(name: "layer", arguments: [("x", .tensor(TensorType([tokens, type.columns], .f32)))])
        let q = try b.add("nn.weight", attributes: ["name": .symbol(layer.weight)], resultType: .packed(type))
        let scales = try b.add("nn.weight", attributes: ["name": .symbol(layer.scales)], resultType: .tensor(sType))
        var attributes: [String: Attribute] = ["bits": .int(4), "group": .int(type.group), "act_bits": .int(8)]
        if let nm = type.nm { attributes["nm"] = .pattern(nm) }
        let y = try b.add("quant.linear", [b.arguments[0], q, scales], attributes: attributes,
                          resultType: .tensor(TensorType([tokens, type.rows], .f32)))
        b.ret([y])
        let small = Module(weights: WeightStore(entries: [w, s]), functions: [b.function])
        let out = try Interpreter(module: small).run("layer", [.tensor(Tensor(shape: [tokens, type.columns], floats: x))])
        guard let result = out.first?.tensor, result.floats.count == tokens * type.rows else {
            throw HLSError("the interpreter returned no [\(tokens), \(type.rows)] tensor for @\(layer.weight)")
        }
        return result.floats
    }

    static func littleEndian<T: FixedWidthInteger>(_ values: [T]) -> Data {
        var d = Data(capacity: values.count * MemoryLayout<T>.size)
        for v in values { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        return d
    }

    static func littleEndian(_ values: [Float]) -> Data { littleEndian(values.map(\.bitPattern)) }
}

/// A small deterministic generator (SplitMix64), so vectors and sweeps repeat from their seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476C_E5B9_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
