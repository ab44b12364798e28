import NMIR

/// Builds the NMIR of a LLaMA decoder: embedding, per layer RMSNorm → grouped-query attention
/// with rotary embeddings and a KV cache → residual → RMSNorm → SwiGLU MLP → residual, then the
/// final norm and the output head (tied to the embedding when the model has no `output.weight`).
///
/// Two functions share the body: `@prefill(%ids: tensor<?xi32>, %start, caches…)` returns the
/// logits of every token, `@decode(%ids: tensor<1xi32>, %start, caches…)` those of one. Each
/// layer threads a key cache and a value cache: arguments `%k0, %v0, %k1, …` and the same
/// caches, updated, after the logits in the results.
///
/// Weights use GGUF's names (`token_embd.weight`, `blk.N.attn_q.weight`, …, `output_norm.weight`).
/// `ropeStyle` is "interleaved" for GGUF (whose Q/K rows are permuted for it) and "half" for
/// Hugging Face checkpoints.
public struct LlamaGraphBuilder {
    public var config: LlamaConfig
    public var ropeStyle: String
    /// Positions each KV cache holds.
    public var contextLength: Int
    public var tiedEmbeddings: Bool

    public init(config: LlamaConfig, ropeStyle: String, contextLength: Int, tiedEmbeddings: Bool) {
        self.config = config
        self.ropeStyle = ropeStyle
        self.contextLength = contextLength
        self.tiedEmbeddings = tiedEmbeddings
    }

    var headDim: Int { config.headDim }

    public var cacheType: KVCacheType {
        KVCacheType(capacity: contextLength, heads: config.numKeyValueHeads, headDim: headDim)
    }

    /// The weights the graph reads, with their f32 types, in the order the graph first reads them.
    public var weightTypes: [(String, TensorType)] {
        var out: [(String, TensorType)] = []
        forEachWeightType { out.append(($0, $1)) }
        return out
    }

    /// `body` with each of `weightTypes` in turn, without listing them first: a reader stops at
    /// the first weight its file lacks, however many layers the configuration claims.
    public func forEachWeightType(_ body: (String, TensorType) throws -> Void) rethrows {
        let d = config.hiddenSize, ff = config.intermediateSize
        let q = config.numAttentionHeads * headDim, kv = config.numKeyValueHeads * headDim
        try body("token_embd.weight", TensorType([config.vocabSize, d], .f32))
        for l in 0..<config.numHiddenLayers {
            let p = "blk.\(l)."
            try body(p + "attn_norm.weight", TensorType([d], .f32))
            try body(p + "attn_q.weight", TensorType([q, d], .f32))
            try body(p + "attn_k.weight", TensorType([kv, d], .f32))
            try body(p + "attn_v.weight", TensorType([kv, d], .f32))
            try body(p + "attn_output.weight", TensorType([d, q], .f32))
            try body(p + "ffn_norm.weight", TensorType([d], .f32))
            try body(p + "ffn_gate.weight", TensorType([ff, d], .f32))
            try body(p + "ffn_up.weight", TensorType([ff, d], .f32))
            try body(p + "ffn_down.weight", TensorType([d, ff], .f32))
        }
        try body("output_norm.weight", TensorType([d], .f32))
        if !tiedEmbeddings { try body("output.weight", TensorType([config.vocabSize, d], .f32)) }
    }

    /// The prefill and decode functions.
    public func functions(weights: WeightStore) throws -> [Function] {
        [try function(name: "prefill", tokens: nil, weights: weights),
         try function(name: "decode", tokens: 1, weights: weights)]
    }

    func function(name: String, tokens: Int?, weights: WeightStore) throws -> Function {
        let cache = NMType.kvCache(cacheType)
        var arguments: [(String, NMType)] = [("ids", .tensor(TensorType([tokens], .i32))), ("start", .tensor(TensorType([], .i32)))]
        for l in 0..<config.numHiddenLayers { arguments += [("k\(l)", cache), ("v\(l)", cache)] }
        var b = Builder(name: name, arguments: arguments, weights: weights)
        let ids = b.arguments[0], start = b.arguments[1]
        let eps: Attribute = .float(config.rmsNormEps)
        func weight(_ n: String) throws -> Value { try b.add("nn.weight", attributes: ["name": .symbol(n)]) }

        var h = try b.add("nn.embedding", [try weight("token_embd.weight"), ids])
        var caches: [Value] = []
        for l in 0..<config.numHiddenLayers {
            let p = "blk.\(l)."
            let x = try b.add("nn.rms_norm", [h, try weight(p + "attn_norm.weight")], attributes: ["eps": eps])
            let q = try b.add("nn.linear", [x, try weight(p + "attn_q.weight")])
            let k = try b.add("nn.linear", [x, try weight(p + "attn_k.weight")])
            let v = try b.add("nn.linear", [x, try weight(p + "attn_v.weight")])
            let heads: (Int) -> Attribute = { .array([.int(-1), .int($0), .int(headDim)]) }
            let q3 = try b.add("tensor.reshape", [q], attributes: ["shape": heads(config.numAttentionHeads)])
            let k3 = try b.add("tensor.reshape", [k], attributes: ["shape": heads(config.numKeyValueHeads)])
            let v3 = try b.add("tensor.reshape", [v], attributes: ["shape": heads(config.numKeyValueHeads)])
            let rope: [String: Attribute] = ["theta": .float(config.ropeTheta), "style": .string(ropeStyle)]
            let qr = try b.add("nn.rope", [q3, start], attributes: rope)
            let kr = try b.add("nn.rope", [k3, start], attributes: rope)
            let kAll = try b.create("kv.append", [b.arguments[2 + 2 * l], kr, start])
            let vAll = try b.create("kv.append", [b.arguments[3 + 2 * l], v3, start])
            caches += [kAll[0], vAll[0]]
            let attention = try b.add("nn.attention", [qr, kAll[1], vAll[1]], attributes: ["causal": .bool(true)])
            let merged = try b.add("tensor.reshape", [attention], attributes: ["shape": .array([.int(-1), .int(config.numAttentionHeads * headDim)])])
            let o = try b.add("nn.linear", [merged, try weight(p + "attn_output.weight")])
            let h1 = try b.add("nn.add", [h, o])
            let f = try b.add("nn.rms_norm", [h1, try weight(p + "ffn_norm.weight")], attributes: ["eps": eps])
            let gate = try b.add("nn.linear", [f, try weight(p + "ffn_gate.weight")])
            let up = try b.add("nn.linear", [f, try weight(p + "ffn_up.weight")])
            let act = try b.add("nn.mul", [try b.add("nn.silu", [gate]), up])
            let down = try b.add("nn.linear", [act, try weight(p + "ffn_down.weight")])
            h = try b.add("nn.add", [h1, down])
        }
        let out = try b.add("nn.rms_norm", [h, try weight("output_norm.weight")], attributes: ["eps": eps])
        let head = try weight(tiedEmbeddings ? "token_embd.weight" : "output.weight")
        let logits = try b.add("nn.linear", [out, head], resultName: "logits")
        b.ret([logits] + caches)
        return b.function
    }
}
