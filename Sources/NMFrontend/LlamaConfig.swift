#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The hyperparameters of a LLaMA-family decoder, from a Hugging Face `config.json`
/// (`LlamaForCausalLM`) or from the `llama.*` metadata of a GGUF file.
public struct LlamaConfig: Sendable, Equatable {
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    /// Per-head size: `head_dim` / `attention.key_length` when given, else hidden / heads.
    public var headDim: Int
    public var rmsNormEps: Double
    public var ropeTheta: Double
    public var vocabSize: Int
    public var maxPositionEmbeddings: Int
    /// The output projection reuses the token embedding (no separate `lm_head` / `output.weight`).
    public var tieWordEmbeddings: Bool
    public var bosTokenID: Int?
    /// End-of-sequence ids (`eos_token_id` may be one id or a list in `config.json`).
    public var eosTokenIDs: [Int]
    public var eosTokenID: Int? { eosTokenIDs.first }

    public init(hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int, numAttentionHeads: Int,
                numKeyValueHeads: Int, headDim: Int? = nil, rmsNormEps: Double, ropeTheta: Double = 10000,
                vocabSize: Int, maxPositionEmbeddings: Int, tieWordEmbeddings: Bool = false,
                bosTokenID: Int? = nil, eosTokenIDs: [Int] = []) {
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.numKeyValueHeads = numKeyValueHeads
        self.headDim = headDim ?? (numAttentionHeads > 0 ? hiddenSize / numAttentionHeads : 0)
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.vocabSize = vocabSize
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.tieWordEmbeddings = tieWordEmbeddings
        self.bosTokenID = bosTokenID
        self.eosTokenIDs = eosTokenIDs
    }

    /// A value GGUF stores as f32, as the decimal it was written from (1e-05, not
    /// 9.999999747378752e-06): the shortest decimal that rounds to the same f32.
    static func decimal(_ v: Double) -> Double { Double("\(Float(v))") ?? v }

    /// The reason the numbers cannot describe a model, if any (a non-positive size, KV heads that
    /// do not divide the heads, a head size that is neither given nor hidden / heads …).
    public func inconsistency(headDimGiven: Bool = true) -> String? {
        let positive: [(String, Int)] = [
            ("hidden_size", hiddenSize), ("intermediate_size", intermediateSize), ("num_hidden_layers", numHiddenLayers),
            ("num_attention_heads", numAttentionHeads), ("num_key_value_heads", numKeyValueHeads), ("head_dim", headDim),
            ("vocab_size", vocabSize), ("max_position_embeddings", maxPositionEmbeddings),
        ]
        for (name, v) in positive where v <= 0 { return "\(name) is \(v), expected a positive number" }
        // The products the graph builder forms (projection widths, weight element counts) fit Int.
        let (q, qOverflow) = numAttentionHeads.multipliedReportingOverflow(by: headDim)
        let (kv, kvOverflow) = numKeyValueHeads.multipliedReportingOverflow(by: headDim)
        if qOverflow || kvOverflow {
            return "num_attention_heads \(numAttentionHeads) or num_key_value_heads \(numKeyValueHeads) times head_dim \(headDim) overflows"
        }
        for (name, rows) in [("vocab_size", vocabSize), ("intermediate_size", intermediateSize),
                             ("num_attention_heads × head_dim", q), ("num_key_value_heads × head_dim", kv)]
        where rows.multipliedReportingOverflow(by: hiddenSize).overflow {
            return "\(name) \(rows) times hidden_size \(hiddenSize) overflows"
        }
        if numAttentionHeads % numKeyValueHeads != 0 {
            return "num_attention_heads \(numAttentionHeads) is not a multiple of num_key_value_heads \(numKeyValueHeads)"
        }
        if !headDimGiven, hiddenSize % numAttentionHeads != 0 {
            return "hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(numAttentionHeads) and no head_dim is given"
        }
        if !(rmsNormEps > 0 && rmsNormEps.isFinite) { return "rms_norm_eps \(rmsNormEps) is not a positive number" }
        if !(ropeTheta > 0 && ropeTheta.isFinite) { return "rope_theta \(ropeTheta) is not a positive number" }
        return nil
    }
}

/// An error in a model's configuration file; its description is `<file>: error: <reason>`.
public struct ModelConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    public var file: String
    public var reason: String
    public init(file: String, reason: String) {
        self.file = file
        self.reason = reason
    }
    public var description: String { "\(file): error: \(reason)" }
}

// MARK: config.json

extension LlamaConfig {
    /// Reads a Hugging Face `config.json` of a `LlamaForCausalLM`.
    public init(configJSON path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ModelConfigError(file: path, reason: "cannot read file")
        }
        try self.init(configJSONData: data, file: path)
    }

    /// Decodes the text of a `config.json`; `file` names it in errors. Required: `hidden_size`,
    /// `intermediate_size`, `num_hidden_layers`, `num_attention_heads`, `rms_norm_eps`,
    /// `vocab_size`, `max_position_embeddings`; defaults: `num_key_value_heads` = heads,
    /// `rope_theta` = 10000, `tie_word_embeddings` = false, `head_dim` = hidden / heads.
    public init(configJSONData data: Data, file: String) throws {
        func fail(_ reason: String) -> ModelConfigError { ModelConfigError(file: file, reason: reason) }
        let root: [String: ConfigJSON]
        do {
            guard case .object(let o) = try JSONDecoder().decode(ConfigJSON.self, from: data) else {
                throw fail("config is not a JSON object")
            }
            root = o
        } catch let e as ModelConfigError {
            throw e
        } catch {
            throw fail("not valid JSON (\(error))")
        }
        let fields = ConfigFields(values: root, fail: fail)

        let architectures = try fields.optionalStrings("architectures") ?? []
        let modelType = try fields.optionalString("model_type")
        guard architectures.contains("LlamaForCausalLM") || (architectures.isEmpty && modelType == "llama") else {
            let what = architectures.isEmpty ? "model_type \(modelType.map { "'\($0)'" } ?? "(none)")" : "architectures \(architectures)"
            throw fail("\(what) is not LlamaForCausalLM")
        }
        if let act = try fields.optionalString("hidden_act"), act != "silu" {
            throw fail("hidden_act '\(act)' is not supported (only silu)")
        }
        if let scaling = root["rope_scaling"], scaling != .null {
            throw fail("rope_scaling \(scaling) is not supported (only null)")
        }
        for flag in ["attention_bias", "mlp_bias"] where try fields.optionalBool(flag) == true {
            throw fail("\(flag) = true is not supported (LLaMA has no biases)")
        }

        let heads = try fields.int("num_attention_heads")
        let eos: [Int]
        switch root["eos_token_id"] {
        case nil, .null?: eos = []
        case .array?: eos = try fields.ints("eos_token_id")
        default: eos = [try fields.int("eos_token_id")]
        }
        self.init(hiddenSize: try fields.int("hidden_size"),
                  intermediateSize: try fields.int("intermediate_size"),
                  numHiddenLayers: try fields.int("num_hidden_layers"),
                  numAttentionHeads: heads,
                  numKeyValueHeads: try fields.optionalInt("num_key_value_heads") ?? heads,
                  headDim: try fields.optionalInt("head_dim"),
                  rmsNormEps: try fields.double("rms_norm_eps"),
                  ropeTheta: try fields.optionalDouble("rope_theta") ?? 10000,
                  vocabSize: try fields.int("vocab_size"),
                  maxPositionEmbeddings: try fields.int("max_position_embeddings"),
                  tieWordEmbeddings: try fields.optionalBool("tie_word_embeddings") ?? false,
                  bosTokenID: try fields.optionalInt("bos_token_id"),
                  eosTokenIDs: eos)
        if let problem = inconsistency(headDimGiven: root["head_dim"] != nil) { throw fail(problem) }
    }
}

// MARK: GGUF

extension LlamaConfig {
    /// Reads the `<arch>.*` metadata of a GGUF file (`general.architecture`, normally `llama`):
    /// block_count, embedding_length, feed_forward_length, attention.head_count,
    /// attention.head_count_kv (default head_count), attention.layer_norm_rms_epsilon,
    /// rope.freq_base (default 10000), context_length, vocab_size (else the number of
    /// `tokenizer.ggml.tokens`), attention.key_length (default embedding / heads). Embeddings are
    /// tied when the file has no `output.weight`.
    public init(gguf: GGUFFile) throws {
        guard let arch = gguf.string("general.architecture") else {
            throw gguf.metadataError("general.architecture", expected: "string")
        }
        guard arch == "llama" else {
            throw GGUFError(file: gguf.path, reason: "general.architecture is '\(arch)', expected 'llama'")
        }
        func int(_ key: String) throws -> Int {
            guard let v = gguf.int("\(arch).\(key)") else { throw gguf.metadataError("\(arch).\(key)", expected: "an integer") }
            return v
        }
        func optionalInt(_ key: String) throws -> Int? {
            guard gguf.value("\(arch).\(key)") != nil else { return nil }
            return try int(key)
        }
        func double(_ key: String) throws -> Double {
            guard let v = gguf.double("\(arch).\(key)") else { throw gguf.metadataError("\(arch).\(key)", expected: "a float") }
            return v
        }
        let heads = try int("attention.head_count")
        let vocab: Int
        if gguf.value("\(arch).vocab_size") != nil {
            vocab = try int("vocab_size")
        } else if let tokens = gguf.array("tokenizer.ggml.tokens") {
            vocab = tokens.count
        } else {
            throw GGUFError(file: gguf.path, reason: "metadata '\(arch).vocab_size' and 'tokenizer.ggml.tokens' are both missing")
        }
        func tokenID(_ key: String) throws -> Int? {
            guard gguf.value(key) != nil else { return nil }
            guard let id = gguf.int(key) else { throw gguf.metadataError(key, expected: "an integer") }
            return id
        }
        self.init(hiddenSize: try int("embedding_length"),
                  intermediateSize: try int("feed_forward_length"),
                  numHiddenLayers: try int("block_count"),
                  numAttentionHeads: heads,
                  numKeyValueHeads: try optionalInt("attention.head_count_kv") ?? heads,
                  headDim: try optionalInt("attention.key_length"),
                  rmsNormEps: Self.decimal(try double("attention.layer_norm_rms_epsilon")),
                  ropeTheta: gguf.value("\(arch).rope.freq_base") == nil ? 10000 : try double("rope.freq_base"),
                  vocabSize: vocab,
                  maxPositionEmbeddings: try int("context_length"),
                  tieWordEmbeddings: gguf.tensor(named: "output.weight") == nil,
                  bosTokenID: try tokenID("tokenizer.ggml.bos_token_id"),
                  eosTokenIDs: try tokenID("tokenizer.ggml.eos_token_id").map { [$0] } ?? [])
        if let problem = inconsistency(headDimGiven: gguf.value("\(arch).attention.key_length") != nil) {
            throw GGUFError(file: gguf.path, reason: "llama metadata: \(problem)")
        }
    }
}

// MARK: JSON

/// A JSON value, decoded exactly (integers stay integers) so that errors can say what a field is.
enum ConfigJSON: Decodable, Equatable, CustomStringConvertible {
    case null, bool(Bool), int(Int), double(Double), string(String), array([ConfigJSON]), object([String: ConfigJSON])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([ConfigJSON].self) { self = .array(a) }
        else { self = .object(try c.decode([String: ConfigJSON].self)) }
    }

    var kind: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .int, .double: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    var description: String {
        switch self {
        case .null: "null"
        case .bool(let b): "\(b)"
        case .int(let i): "\(i)"
        case .double(let d): "\(d)"
        case .string(let s): "\"\(s)\""
        case .array(let a): "[" + a.map(\.description).joined(separator: ", ") + "]"
        case .object(let o): "{" + o.keys.sorted().map { "\"\($0)\": \(o[$0]?.description ?? "")" }.joined(separator: ", ") + "}"
        }
    }
}

/// Typed access to the fields of a JSON object, with errors naming the field.
struct ConfigFields {
    var values: [String: ConfigJSON]
    var fail: (String) -> ModelConfigError

    private func present(_ key: String) -> ConfigJSON? {
        guard let v = values[key], v != .null else { return nil }
        return v
    }

    private func wrong(_ key: String, _ v: ConfigJSON, _ expected: String) -> ModelConfigError {
        fail("field '\(key)' is \(v.kind) (\(v)), expected \(expected)")
    }

    private func asInt(_ key: String, _ v: ConfigJSON) throws -> Int {
        switch v {
        case .int(let i): return i
        case .double(let d) where d.rounded() == d && abs(d) < 1e15: return Int(d)
        default: throw wrong(key, v, "an integer")
        }
    }

    func optionalInt(_ key: String) throws -> Int? { try present(key).map { try asInt(key, $0) } }
    func int(_ key: String) throws -> Int {
        guard let v = try optionalInt(key) else { throw fail("missing field '\(key)'") }
        return v
    }

    func optionalDouble(_ key: String) throws -> Double? {
        switch present(key) {
        case nil: return nil
        case .int(let i)?: return Double(i)
        case .double(let d)?: return d
        case let v?: throw wrong(key, v, "a number")
        }
    }
    func double(_ key: String) throws -> Double {
        guard let v = try optionalDouble(key) else { throw fail("missing field '\(key)'") }
        return v
    }

    func optionalBool(_ key: String) throws -> Bool? {
        switch present(key) {
        case nil: return nil
        case .bool(let b)?: return b
        case let v?: throw wrong(key, v, "true or false")
        }
    }

    func optionalString(_ key: String) throws -> String? {
        switch present(key) {
        case nil: return nil
        case .string(let s)?: return s
        case let v?: throw wrong(key, v, "a string")
        }
    }

    func optionalStrings(_ key: String) throws -> [String]? {
        switch present(key) {
        case nil: return nil
        case .array(let a)?:
            return try a.map { e in
                guard case .string(let s) = e else { throw wrong(key, .array(a), "an array of strings") }
                return s
            }
        case let v?: throw wrong(key, v, "an array of strings")
        }
    }

    func ints(_ key: String) throws -> [Int] {
        guard case .array(let a)? = present(key) else { throw fail("missing field '\(key)'") }
        return try a.map { try asInt(key, $0) }
    }
}
