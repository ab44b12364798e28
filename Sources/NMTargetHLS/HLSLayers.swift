import NMIR

/// One `quant.linear` of a model as the array runs it: its packed weight and scales.
public struct HLSLayer: Sendable {
    public var weight: String
    public var scales: String
    public var type: PackedWeightType

    public var shape: (rows: Int, columns: Int) { (type.rows, type.columns) }

    /// The `quant.linear` ops of every function, one per packed weight, in program order. Each must
    /// have 4-bit symmetric weights and `act_bits = 8` (the array's INT8 activations).
    public static func collect(from module: Module) throws(HLSError) -> [HLSLayer] {
        var layers: [HLSLayer] = [], seen = Set<String>()
        for f in module.functions {
            var weightName: [String: String] = [:]
            for op in f.body {
                if op.name == "nn.weight", let r = op.result, let name = op.attributes["name"]?.symbolValue { weightName[r.name] = name }
                guard op.name == "quant.linear", op.operands.count >= 3 else { continue }
                let place = "\(op.location): quant.linear"
                guard let type = op.operands[1].type.packed, let w = weightName[op.operands[1].name],
                      let s = weightName[op.operands[2].name] else {
                    throw HLSError("\(place): the HLS backend needs the packed weight and scales read by nn.weight")
                }
                guard type.bits == 4, !type.zeroPoint else {
                    throw HLSError("\(place): the HLS array takes symmetric INT4 weights, got \(type) (drop --asymmetric)")
                }
                guard op.attributes["act_bits"]?.intValue == 8 else {
                    throw HLSError("\(place): the HLS array takes INT8 activations; run quantize-activations{bits=8} (nmc compile --target hls adds it)")
                }
                if seen.insert(w).inserted { layers.append(HLSLayer(weight: w, scales: s, type: type)) }
            }
        }
        guard let first = layers.first else { throw HLSError("the module has no quant.linear ops: compile with --quant int4") }
        for l in layers where l.type.nm != first.type.nm || l.type.group != first.type.group {
            throw HLSError("@\(l.weight) is \(l.type), but @\(first.weight) is \(first.type): one array serves one N:M pattern and group size")
        }
        return layers
    }

    /// The first layer of each distinct shape, in order, with how many layers share it.
    public static func distinctShapes(_ layers: [HLSLayer]) -> [(layer: HLSLayer, count: Int)] {
        var out: [(layer: HLSLayer, count: Int)] = []
        for l in layers {
            if let i = out.firstIndex(where: { $0.layer.shape == l.shape }) { out[i].count += 1 } else { out.append((l, 1)) }
        }
        return out
    }
}
