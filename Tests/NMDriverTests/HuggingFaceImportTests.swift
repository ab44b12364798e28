import Foundation
import Testing
@testable import NMDriver
import NMFrontend
import NMIR

/// Converts SmolLM2 from GGUF into a Hugging Face folder (config.json, model.safetensors,
/// tokenizer.json), undoing the GGUF converter's Q/K row permutation, and checks that importing
/// the folder — rotate-half rotary embeddings on the original rows — gives the same logits as the
/// GGUF path with interleaved rotary embeddings on the permuted rows.
@Suite(.serialized) struct HuggingFaceImportTests {
    /// GGUF row `h·D + 2i + half` holds Hugging Face row `h·D + half·D/2 + i`.
    static func unpermuteRows(_ w: [Float], heads: Int, columns: Int) -> [Float] {
        let rows = w.count / columns, d = rows / heads
        var out = [Float](repeating: 0, count: w.count)
        for h in 0..<heads {
            for i in 0..<(d / 2) {
                for half in 0..<2 {
                    let g = h * d + 2 * i + half, r = h * d + half * (d / 2) + i
                    out[(r * columns)..<((r + 1) * columns)] = w[(g * columns)..<((g + 1) * columns)]
                }
            }
        }
        return out
    }

    static func floats(_ e: WeightEntry) -> [Float] {
        guard case .bytes(let b) = e.data else { return [] }
        return b.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    static func writeFolder(from model: ImportedModel, spec: TokenizerSpec, to dir: String) throws {
        let c = model.config
        let config: [String: Any] = [
            "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
            "hidden_size": c.hiddenSize, "intermediate_size": c.intermediateSize, "num_hidden_layers": c.numHiddenLayers,
            "num_attention_heads": c.numAttentionHeads, "num_key_value_heads": c.numKeyValueHeads,
            "rms_norm_eps": c.rmsNormEps, "rope_theta": c.ropeTheta, "vocab_size": c.vocabSize,
            "max_position_embeddings": c.maxPositionEmbeddings, "tie_word_embeddings": true,
            "bos_token_id": 1, "eos_token_id": 2,
        ]
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: dir + "/config.json"))
        var tensors: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])] = []
        for e in model.module.weights.entries {
            var values = floats(e)
            let shape = e.type.tensor?.shape.compactMap(\.value) ?? []
            if e.name.hasSuffix("attn_q.weight") { values = unpermuteRows(values, heads: c.numAttentionHeads, columns: shape[1]) }
            if e.name.hasSuffix("attn_k.weight") { values = unpermuteRows(values, heads: c.numKeyValueHeads, columns: shape[1]) }
            tensors.append((ModelImporter.huggingFaceName(e.name), "F32", shape, values.withUnsafeBytes { [UInt8]($0) }))
        }
        try Safetensors.write(path: dir + "/model.safetensors", tensors: tensors, metadata: ["format": "pt"])
        var vocab: [String: Int] = [:]
        for (i, t) in spec.tokens.enumerated() { vocab[t] = i }
        let added: [[String: Any]] = spec.tokens.enumerated().compactMap { i, t in
            (spec.tokenTypes?[i] ?? 1) == 3 ? ["id": i, "content": t, "special": true] : nil
        }
        let tokenizer: [String: Any] = [
            "model": ["type": "BPE", "vocab": vocab, "merges": spec.merges, "unk_token": spec.tokens[Int(spec.unknown ?? 0)]],
            "added_tokens": added,
            "pre_tokenizer": ["type": "Sequence", "pretokenizers": [
                ["type": "Digits", "individual_digits": true],
                ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true],
            ]],
        ]
        try JSONSerialization.data(withJSONObject: tokenizer).write(to: URL(fileURLWithPath: dir + "/tokenizer.json"))
    }

    @Test func huggingFaceFolderMatchesGGUF() throws {
        try #require(FileManager.default.fileExists(atPath: ModelRunTests.modelPath), "the model is missing: run `make model`")
        let gguf = try ModelImporter.load(path: ModelRunTests.modelPath, contextLength: 64)
        let spec = try #require(gguf.tokenizerSpec)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nmc-hf-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeFolder(from: gguf, spec: spec, to: dir)

        let hf = try ModelImporter.load(path: dir, contextLength: 64)
        #expect(hf.format == "huggingface")
        let text = "The quick brown fox jumps over the lazy dog. 12345"
        let ids = gguf.tokenizer.encode(text)
        #expect(hf.tokenizer.encode(text) == ids)
        let a = try ModelSession(model: gguf).forward(ids)
        let b = try ModelSession(model: hf).forward(ids)
        #expect(a.count == b.count)
        var worst: Float = 0, scale: Float = 0
        for i in 0..<a.count { worst = max(worst, abs(a[i] - b[i])); scale = max(scale, abs(a[i])) }
        // Same math on the same values, only the rotary pairing differs: float rounding only.
        #expect(worst <= 1e-3 * scale, "max |Δlogit| \(worst) against max |logit| \(scale)")
        // And the argmax of every position agrees.
        let vocab = gguf.config.vocabSize
        for t in 0..<ids.count {
            let ra = a[(t * vocab)..<((t + 1) * vocab)], rb = b[(t * vocab)..<((t + 1) * vocab)]
            #expect(ra.firstIndex(of: ra.max()!) == rb.firstIndex(of: rb.max()!), "position \(t)")
        }
    }
}
