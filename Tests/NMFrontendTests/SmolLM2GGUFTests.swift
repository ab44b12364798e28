import Foundation
import Testing
@testable import NMFrontend

/// The real model that `make model` fetches: SmolLM2-135M-Instruct quantized to Q4_1.
@Suite struct SmolLM2GGUFTests {
    static let modelPath = TestSupport.repositoryRoot() + "/models/SmolLM2-135M-Instruct.Q4_1.gguf"

    static func open() throws -> GGUFFile {
        guard FileManager.default.fileExists(atPath: modelPath) else {
            Issue.record("\(modelPath) is missing: run `make model` (from the repository root) to fetch SmolLM2-135M-Instruct")
            throw PythonGGUF.PythonFailure(message: "model missing")
        }
        return try GGUFFile.open(path: modelPath)
    }

    @Test func metadataAndTensors() throws {
        let f = try Self.open()
        #expect(f.version == 3)
        #expect(f.string("general.architecture") == "llama")
        #expect(f.uint32("llama.block_count") == 30)
        #expect(f.uint32("llama.embedding_length") == 576)
        #expect(f.uint32("llama.feed_forward_length") == 1536)
        #expect(f.uint32("llama.attention.head_count") == 9)
        #expect(f.uint32("llama.attention.head_count_kv") == 3)
        #expect(f.float("llama.rope.freq_base") == 100000)
        #expect(f.float("llama.attention.layer_norm_rms_epsilon") == 1e-5)
        #expect(f.uint32("llama.context_length") == 8192)
        #expect(f.stringArray("tokenizer.ggml.tokens")?.count == 49152)
        #expect(f.int32Array("tokenizer.ggml.token_type")?.count == 49152)
        #expect(f.stringArray("tokenizer.ggml.merges")?.count == 48900)
        #expect(f.stringArray("tokenizer.ggml.tokens")?.prefix(3) == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
        #expect(f.string("tokenizer.ggml.model") == "gpt2")
        #expect(f.bool("tokenizer.ggml.add_bos_token") == false)
        #expect(f.metadataKeys.count == 33 && f.metadata.count == 33)

        #expect(f.tensors.count == 272)
        let types = Dictionary(grouping: f.tensors, by: \.type).mapValues(\.count)
        #expect(types == [.f32: 61, .q4_1: 210, .q8_0: 1])
        let embedding = try #require(f.tensor(named: "token_embd.weight"))
        #expect(embedding.dims == [576, 49152] && embedding.shape == [49152, 576] && embedding.type == .q8_0)
        #expect(embedding.byteCount == 49152 * 576 / 32 * 34)
        let down = try #require(f.tensor(named: "blk.0.ffn_down.weight"))
        #expect(down.dims == [1536, 576] && down.shape == [576, 1536] && down.type == .q4_1)
        #expect(f.tensor(named: "output.weight") == nil)  // tied to the embedding
        // Tensors are packed in order, each at an aligned offset, the last ending the file.
        for (a, b) in zip(f.tensors, f.tensors.dropFirst()) {
            #expect(b.offset == (a.offset + a.byteCount + 31) / 32 * 32, "\(b.name)")
        }
        let last = try #require(f.tensors.last)
        #expect(last.fileOffset + last.byteCount == f.fileSize)
    }

    @Test func llamaConfig() throws {
        let c = try LlamaConfig(gguf: try Self.open())
        #expect(c == LlamaConfig(hiddenSize: 576, intermediateSize: 1536, numHiddenLayers: 30, numAttentionHeads: 9,
                                 numKeyValueHeads: 3, headDim: 64, rmsNormEps: 1e-5, ropeTheta: 100000,
                                 vocabSize: 49152, maxPositionEmbeddings: 8192, tieWordEmbeddings: true,
                                 bosTokenID: 1, eosTokenIDs: [2]))
    }

    /// A few tensors of every type in the model, dequantized here and by the gguf package, must be
    /// bit-identical.
    @Test(.enabled(if: PythonGGUF.isAvailable, Comment(rawValue: PythonGGUF.skipMessage)))
    func dequantizationMatchesTheGGUFPackage() throws {
        let f = try Self.open()
        var chosen: [GGUFTensorInfo] = []
        for type in Set(f.tensors.map(\.type)).sorted(by: { $0.rawValue < $1.rawValue }) {
            let ofType = f.tensors.filter { $0.type == type }
            // The first two, and the last, of each type.
            var picks = Array(ofType.prefix(2))
            if let last = ofType.last, !picks.contains(last) { picks.append(last) }
            chosen += picks
        }
        #expect(Set(chosen.map(\.type)) == [.f32, .q4_1, .q8_0])
        let dir = try TestSupport.temporaryDirectory("smollm2-py")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let theirs = try PythonGGUF.dequantize(file: Self.modelPath, names: chosen.map(\.name),
                                               sizes: chosen.map(\.elementCount), workDirectory: dir)
        for (t, expected) in zip(chosen, theirs) {
            let ours = try f.dequantize(t)
            #expect(TestSupport.firstDifference(ours, expected) == nil, "\(t.name) (\(t.type))")
            let finite = ours.allSatisfy { $0.isFinite }
            #expect(finite, "\(t.name)")
        }
    }
}
