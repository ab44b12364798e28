import Foundation
import NMFrontend
import NMIR
import NMTargetPTX

/// A model from a configuration alone (`nmc compile --config FILE --synthetic-weights SEED`): the
/// LLaMA graph of the config, compressed *structurally* (what nm-prune, quantize-int4 and
/// fuse-dequant-matmul make of its linear layers: `quant.linear` over `quant.packed` weights with
/// f16 scales), with every weight's values defined by `SyntheticWeights` from the seed. The module
/// keeps its weights elided, so a 7B-shaped model costs nothing to build; `materialized` writes
/// the same values into the store for the CPU backend and the interpreter (small models).
public enum SyntheticModel {
    /// Builds the compressed graph of `configPath` (a config.json-style file).
    public static func module(configPath: String, options: CompressionOptions, contextLength: Int?) throws -> (Module, LlamaConfig) {
        let config = try LlamaConfig(configJSON: configPath)
        let ctx = contextLength ?? min(config.maxPositionEmbeddings, ModelImporter.defaultContextLength)
        guard ctx >= 1, ctx <= config.maxPositionEmbeddings else {
            throw ToolError("--ctx \(ctx) is outside 1 … \(config.maxPositionEmbeddings), the positions this model handles")
        }
        let (int4, sparse) = try structure(options)
        let builder = LlamaGraphBuilder(config: config, ropeStyle: "half", contextLength: ctx, tiedEmbeddings: config.tieWordEmbeddings)
        var store = WeightStore()
        for (name, type) in builder.weightTypes { store[name] = WeightEntry(name: name, type: .tensor(type), data: .elided) }
        var functions = try builder.functions(weights: store)
        if int4 {
            let excluded: Set<String> = ["token_embd.weight", "output.weight"]
            for (name, type) in builder.weightTypes where type.shape.count == 2 && !excluded.contains(name) {
                let rows = type.shape[0].value!, columns = type.shape[1].value!
                let packed = PackedWeightType(rows: rows, columns: columns, group: KernelWeightLayout.unitColumns,
                                              nm: sparse ? NMPattern(n: 2, m: 4) : nil)
                store[name] = nil
                store[name + ".q"] = WeightEntry(name: name + ".q", type: .packed(packed), data: .elided)
                store[name + ".scales"] = WeightEntry(name: name + ".scales", type: .tensor(scalesType(rows: rows, columns: columns)), data: .elided)
            }
            for i in functions.indices { functions[i] = quantized(functions[i], excluded: excluded, sparse: sparse) }
        }
        let attributes: [String: Attribute] = [
            "arch": .string("llama"), "source": .string("synthetic"), "hidden_size": .int(config.hiddenSize),
            "intermediate_size": .int(config.intermediateSize), "layers": .int(config.numHiddenLayers),
            "heads": .int(config.numAttentionHeads), "kv_heads": .int(config.numKeyValueHeads), "head_dim": .int(config.headDim),
            "rms_norm_eps": .float(config.rmsNormEps), "rope_theta": .float(config.ropeTheta), "vocab_size": .int(config.vocabSize),
            "max_position_embeddings": .int(config.maxPositionEmbeddings), "tie_word_embeddings": .bool(config.tieWordEmbeddings),
        ]
        let module = Module(name: "llama", attributes: attributes, weights: store, functions: functions)
        try Verifier().verify(module)
        return (module, config)
    }

    /// (int4, 2:4) from the compression flags; only what the structure can honestly stand for.
    static func structure(_ o: CompressionOptions) throws -> (Bool, Bool) {
        guard o.passes == nil, o.calibration == nil, o.actBits == nil, o.symmetric, o.quantMethod == "rtn" else {
            throw ToolError("--synthetic-weights takes --quant int4 and --sparsity 2:4 only (no --passes, calibration, --act-bits or asymmetric INT4): the weights come from the seed, not from a pass")
        }
        guard o.quant == nil || o.quant == "int4" else { throw ToolError("--synthetic-weights: --quant \(o.quant!) is not supported (int4)") }
        guard o.sparsity == nil || (o.sparsity == "2:4" && o.quant == "int4") else {
            throw ToolError("--synthetic-weights: --sparsity \(o.sparsity!) is not supported (2:4 together with --quant int4)")
        }
        guard o.groupSize == KernelWeightLayout.unitColumns || o.quant == nil else {
            throw ToolError("--synthetic-weights: --group-size must be \(KernelWeightLayout.unitColumns)")
        }
        return (o.quant == "int4", o.sparsity == "2:4")
    }

    static func scalesType(rows: Int, columns: Int) -> TensorType {
        TensorType([rows, (columns + KernelWeightLayout.unitColumns - 1) / KernelWeightLayout.unitColumns], .f16)
    }

    /// nn.weight + nn.linear over a quantized weight → two nn.weight reads and quant.linear (the
    /// form fuse-dequant-matmul leaves).
    static func quantized(_ f: Function, excluded: Set<String>, sparse: Bool) -> Function {
        var out = f
        out.body = []
        var renamed: [String: (Value, Value)] = [:]
        for op in f.body {
            if op.name == "nn.weight", let name = op.attributes["name"]?.symbolValue, !excluded.contains(name),
               let t = op.results[0].type.tensor, t.shape.count == 2 {
                let rows = t.shape[0].value!, columns = t.shape[1].value!
                let packed = PackedWeightType(rows: rows, columns: columns, group: KernelWeightLayout.unitColumns,
                                              nm: sparse ? NMPattern(n: 2, m: 4) : nil)
                let q = Value(name: op.results[0].name + ".q", type: .packed(packed))
                let s = Value(name: op.results[0].name + ".scales", type: .tensor(scalesType(rows: rows, columns: columns)))
                out.body.append(Operation(name: "nn.weight", results: [q], attributes: ["name": .symbol(name + ".q")], location: op.location))
                out.body.append(Operation(name: "nn.weight", results: [s], attributes: ["name": .symbol(name + ".scales")], location: op.location))
                renamed[op.results[0].name] = (q, s)
                continue
            }
            if op.name == "nn.linear", let (q, s) = renamed[op.operands[1].name] {
                var attributes: [String: Attribute] = ["bits": .int(4), "group": .int(KernelWeightLayout.unitColumns)]
                if sparse { attributes["nm"] = .pattern(NMPattern(n: 2, m: 4)!) }
                out.body.append(Operation(name: "quant.linear", operands: [op.operands[0], q, s], results: op.results,
                                          attributes: attributes, location: op.location))
                continue
            }
            out.body.append(op)
        }
        return out
    }

    /// `module` with every elided weight given its seeded values (norm weights 1).
    public static func materialized(_ module: Module, seed: UInt64) throws -> Module {
        var m = module
        var embeddings = Set<String>()
        for f in module.functions { embeddings.formUnion(SyntheticWeights.embeddingTables(in: f)) }
        for e in module.weights.entries where e.data == .elided {
            var entry = e
            switch e.type {
            case .packed(let p):
                let base = String(e.name.dropLast(2))
                let w = try SyntheticWeights.packed(SyntheticWeights.keys(seed: seed, name: base), rows: p.rows, columns: p.columns,
                                                    sparse24: p.nm != nil)
                entry.data = .bytes(w.storage)
                let scales = w.scaleBits.withUnsafeBytes { [UInt8]($0) }
                m.weights[base + ".scales"] = WeightEntry(name: base + ".scales", type: .tensor(scalesType(rows: p.rows, columns: p.columns)),
                                                          data: .bytes(scales))
            case .tensor(let t) where e.name.hasSuffix(".scales"):
                _ = t
                continue  // written with its packed weight
            case .tensor(let t) where t.shape.count == 1:
                entry.data = .bytes([Float](repeating: 1, count: t.elementCount ?? 0).withUnsafeBytes { [UInt8]($0) })
            case .tensor(let t) where t.shape.count == 2:
                let rows = t.shape[0].value!, columns = t.shape[1].value!
                let e0 = embeddings.contains(e.name) ? 0 : SyntheticWeights.denseExponent(columns: columns)
                entry.data = .bytes(SyntheticWeights.dense(SyntheticWeights.keys(seed: seed, name: e.name), rows: rows, columns: columns,
                                                           exponent: e0).withUnsafeBytes { [UInt8]($0) })
            default:
                throw ToolError("synthetic weight @\(e.name) of type \(e.type) has no generator")
            }
            m.weights[e.name] = entry
        }
        return m
    }
}
