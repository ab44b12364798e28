import Foundation
import NMIR

/// A model ready to run or compile: its NMIR (functions `@prefill` and `@decode`, f32 weights in
/// the store), its tokenizer, its hyperparameters.
public struct ImportedModel {
    public var module: Module
    /// Where external weights are read from (the folder of an imported model), if any.
    public var weightsDirectory: String?
    public var tokenizer: BPETokenizer
    public var tokenizerSpec: TokenizerSpec?
    public var config: LlamaConfig
    /// What the model was read from: `gguf`, `huggingface` or `nmir`.
    public var format: String
}

/// Reads a model from a `.gguf` file, a Hugging Face folder (`config.json` + safetensors +
/// `tokenizer.json`) or a folder written by `nmc import` (`model.nmir` + `weights.safetensors`
/// + `tokenizer.nmc.json`), and builds its NMIR.
public enum ModelImporter {
    public static let defaultContextLength = 2048

    public static func load(path: String, contextLength: Int? = nil) throws -> ImportedModel {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ModelConfigError(file: path, reason: "no such file or directory")
        }
        if !isDirectory.boolValue {
            guard path.hasSuffix(".gguf") else {
                throw ModelConfigError(file: path, reason: "not a model: expected a .gguf file, a Hugging Face folder or an `nmc import` folder")
            }
            return try loadGGUF(path: path, contextLength: contextLength)
        }
        if FileManager.default.fileExists(atPath: path + "/model.nmir") {
            var model = try loadImported(directory: path)
            if let n = contextLength {
                try checkContextLength(n, config: model.config, file: path)
                model.module = withCacheCapacity(model.module, n)
            }
            return model
        }
        if FileManager.default.fileExists(atPath: path + "/" + SafetensorsModel.configFileName) {
            return try loadHuggingFace(directory: path, contextLength: contextLength)
        }
        throw ModelConfigError(file: path, reason: "folder holds neither model.nmir (nmc import) nor config.json (Hugging Face)")
    }

    static func contextLength(_ asked: Int?, config: LlamaConfig) -> Int {
        asked ?? min(config.maxPositionEmbeddings, defaultContextLength)
    }

    /// A context must hold at least one position and at most the positions the model was trained for.
    static func checkContextLength(_ n: Int, config: LlamaConfig, file: String) throws {
        guard n >= 1, n <= config.maxPositionEmbeddings else {
            throw ModelConfigError(file: file, reason: "--ctx \(n) is outside 1 … \(config.maxPositionEmbeddings), the positions this model handles")
        }
    }

    /// The module with every KV cache holding `capacity` positions (arguments, and the results
    /// and operands of the ops that pass caches on).
    public static func withCacheCapacity(_ module: Module, _ capacity: Int) -> Module {
        var m = module
        for fi in m.functions.indices {
            var f = m.functions[fi]
            var names: [String] = []
            for i in f.arguments.indices {
                guard case .kvCache(var c) = f.arguments[i].type else { continue }
                c.capacity = capacity
                f.arguments[i].type = .kvCache(c)
                names.append(f.arguments[i].name)
            }
            for op in f.body { for r in op.results where r.type.kvCache != nil { names.append(r.name) } }
            for name in names {
                let old = f.arguments.first { $0.name == name }?.type
                    ?? f.body.lazy.flatMap(\.results).first { $0.name == name }?.type
                guard case .kvCache(var c)? = old else { continue }
                c.capacity = capacity
                f.retype(name, to: .kvCache(c))
            }
            m.functions[fi] = f
        }
        return m
    }

    static func loadGGUF(path: String, contextLength: Int?) throws -> ImportedModel {
        let gguf = try GGUFFile.open(path: path)
        let config = try LlamaConfig(gguf: gguf)
        if let n = contextLength { try checkContextLength(n, config: config, file: path) }
        let spec = try TokenizerSpec(gguf: gguf)
        let tied = gguf.tensor(named: "output.weight") == nil
        let builder = LlamaGraphBuilder(config: config, ropeStyle: "interleaved",
                                        contextLength: Self.contextLength(contextLength, config: config), tiedEmbeddings: tied)
        let weights = try weightStore(builder) { name, type in
            guard let info = gguf.tensor(named: name) else { throw GGUFError(file: path, reason: "tensor '\(name)' is missing") }
            guard info.shape == type.shape.compactMap(\.value) else {
                throw GGUFError(file: path, reason: "tensor '\(name)' has shape \(info.shape), the model needs \(type.shape.compactMap(\.value))")
            }
            return try gguf.dequantize(info)
        }
        let module = Module(name: "llama", attributes: moduleAttributes(config, source: "gguf"), weights: weights,
                            functions: try builder.functions(weights: weights))
        return ImportedModel(module: module, weightsDirectory: nil, tokenizer: try spec.makeTokenizer(), tokenizerSpec: spec,
                             config: config, format: "gguf")
    }

    /// Hugging Face names of the weights, by the GGUF-style names NMIR uses.
    public static func huggingFaceName(_ name: String) -> String {
        let fixed = ["token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
                     "output.weight": "lm_head.weight"]
        if let n = fixed[name] { return n }
        let parts = name.split(separator: ".")
        guard parts.count == 4, parts[0] == "blk" else { return name }
        let layer = "model.layers.\(parts[1])."
        let map = ["attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
                   "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
                   "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"]
        return layer + (map[String(parts[2])] ?? String(parts[2])) + ".weight"
    }

    static func loadHuggingFace(directory: String, contextLength: Int?) throws -> ImportedModel {
        let model = try SafetensorsModel.open(path: directory)
        let config = try model.config()
        if let n = contextLength { try checkContextLength(n, config: config, file: directory) }
        let tokenizer = try BPETokenizer.fromTokenizerJSON(path: directory + "/tokenizer.json")
        let tied = config.tieWordEmbeddings || model.tensor(named: "lm_head.weight") == nil
        let builder = LlamaGraphBuilder(config: config, ropeStyle: "half",
                                        contextLength: Self.contextLength(contextLength, config: config), tiedEmbeddings: tied)
        let weights = try weightStore(builder) { name, type in
            let hfName = huggingFaceName(name)
            guard let t = model.tensor(named: hfName) else {
                throw ModelConfigError(file: directory, reason: "tensor '\(hfName)' is missing")
            }
            guard t.shape == type.shape.compactMap(\.value) else {
                throw ModelConfigError(file: t.file.hasPrefix("/") ? t.file : directory + "/" + t.file, reason: "tensor '\(hfName)' has shape \(t.shape), the model needs \(type.shape.compactMap(\.value))")
            }
            return try model.floats(of: t)
        }
        let module = Module(name: "llama", attributes: moduleAttributes(config, source: "huggingface"), weights: weights,
                            functions: try builder.functions(weights: weights))
        return ImportedModel(module: module, weightsDirectory: nil, tokenizer: tokenizer, tokenizerSpec: nil,
                             config: config, format: "huggingface")
    }

    static func loadImported(directory: String) throws -> ImportedModel {
        let path = directory + "/model.nmir"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ModelConfigError(file: path, reason: "cannot read")
        }
        let module = try Parser.parseAndVerify(SourceText(name: path, bytes: [UInt8](data)))
        let config = try configFromAttributes(module, file: path)
        let specPath = directory + "/" + TokenizerSpec.fileName
        let tokenizer: BPETokenizer
        var spec: TokenizerSpec? = nil
        if FileManager.default.fileExists(atPath: specPath) {
            spec = try TokenizerSpec.read(path: specPath)
            tokenizer = try spec!.makeTokenizer()
        } else {
            tokenizer = try BPETokenizer.fromTokenizerJSON(path: directory + "/tokenizer.json")
        }
        return ImportedModel(module: module, weightsDirectory: directory, tokenizer: tokenizer, tokenizerSpec: spec,
                             config: config, format: "nmir")
    }

    /// f32 weights in the order the graph reads them, each converted by `read`.
    static func weightStore(_ builder: LlamaGraphBuilder, read: (String, TensorType) throws -> [Float]) throws -> WeightStore {
        var store = WeightStore()
        // One weight at a time: a configuration that claims more layers than the file holds
        // fails at the first missing weight instead of listing every claimed layer first.
        try builder.forEachWeightType { name, type in
            let floats = try read(name, type)
            let bytes = floats.withUnsafeBytes { [UInt8]($0) }
            store[name] = WeightEntry(name: name, type: .tensor(type), data: .bytes(bytes))
        }
        return store
    }

    /// The hyperparameters, kept in the module so an imported folder is self-describing.
    static func moduleAttributes(_ c: LlamaConfig, source: String) -> [String: Attribute] {
        var a: [String: Attribute] = [
            "arch": .string("llama"), "source": .string(source), "hidden_size": .int(c.hiddenSize),
            "intermediate_size": .int(c.intermediateSize), "layers": .int(c.numHiddenLayers),
            "heads": .int(c.numAttentionHeads), "kv_heads": .int(c.numKeyValueHeads), "head_dim": .int(c.headDim),
            "rms_norm_eps": .float(c.rmsNormEps), "rope_theta": .float(c.ropeTheta), "vocab_size": .int(c.vocabSize),
            "max_position_embeddings": .int(c.maxPositionEmbeddings), "tie_word_embeddings": .bool(c.tieWordEmbeddings),
        ]
        if let bos = c.bosTokenID { a["bos_token_id"] = .int(bos) }
        if !c.eosTokenIDs.isEmpty { a["eos_token_ids"] = .array(c.eosTokenIDs.map(Attribute.int)) }
        return a
    }

    static func configFromAttributes(_ m: Module, file: String) throws -> LlamaConfig {
        func int(_ k: String) throws -> Int {
            guard let v = m.attributes[k]?.intValue else { throw ModelConfigError(file: file, reason: "module attribute '\(k)' is missing") }
            return v
        }
        func float(_ k: String) throws -> Double {
            guard let v = m.attributes[k]?.floatValue else { throw ModelConfigError(file: file, reason: "module attribute '\(k)' is missing") }
            return v
        }
        return LlamaConfig(hiddenSize: try int("hidden_size"), intermediateSize: try int("intermediate_size"),
                           numHiddenLayers: try int("layers"), numAttentionHeads: try int("heads"),
                           numKeyValueHeads: try int("kv_heads"), headDim: try int("head_dim"),
                           rmsNormEps: try float("rms_norm_eps"), ropeTheta: try float("rope_theta"),
                           vocabSize: try int("vocab_size"), maxPositionEmbeddings: try int("max_position_embeddings"),
                           tieWordEmbeddings: m.attributes["tie_word_embeddings"]?.boolValue ?? false,
                           bosTokenID: m.attributes["bos_token_id"]?.intValue,
                           eosTokenIDs: m.attributes["eos_token_ids"]?.intArrayValue ?? [])
    }
}
