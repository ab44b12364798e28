import Foundation
import Testing
@testable import NMFrontend

/// Inputs that crashed a reader under the fuzz targets (fuzz/, docs/reliability.md). Each is kept
/// twice: as a small hand-written case here, and as the fuzzer's own input,
/// fuzz/corpus/<target>/regression-*, which the last test runs through the same calls as the
/// fuzz target (and which `make fuzz` seeds every run with).
@Suite struct FuzzRegressionTests {
    static func tokenizerMetadata(_ w: inout GGUFTestWriter) {
        let tokens = (0..<256).map { BPEByteLevel.encode([UInt8($0)]) }
        w.add("tokenizer.ggml.model", .string("gpt2"))
        w.add("tokenizer.ggml.tokens", .array(.string(tokens)))
    }

    /// A GGUF token id outside Int32 (`tokenizer.ggml.eos_token_id` = 2546139138) trapped in
    /// `Int32.init` when the tokenizer was read; it is an error naming the key.
    @Test(arguments: [GGUFValue.uint32(2_546_139_138), .uint64(1 << 40), .int64(-(1 << 40)), .uint64(.max)])
    func tokenIDBeyondInt32IsAnError(_ id: GGUFValue) throws {
        let dir = try TestSupport.temporaryDirectory("fuzz-regression")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var w = GGUFTestWriter()
        Self.tokenizerMetadata(&w)
        w.add("tokenizer.ggml.eos_token_id", id)
        let path = dir + "/eos.gguf"
        try TestSupport.write(w.bytes(), to: path)
        let file = try GGUFFile.open(path: path)
        #expect(throws: GGUFError(file: path, reason: "metadata 'tokenizer.ggml.eos_token_id' is \(id.type) \(id), expected a token id that fits 32 bits")) {
            try TokenizerSpec(gguf: file)
        }
    }

    @Test func tokenIDsInsideInt32AreRead() throws {
        let dir = try TestSupport.temporaryDirectory("fuzz-regression")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var w = GGUFTestWriter()
        Self.tokenizerMetadata(&w)
        w.add("tokenizer.ggml.bos_token_id", .uint64(1))
        w.add("tokenizer.ggml.eos_token_id", .int32(-5))
        w.add("tokenizer.ggml.unknown_token_id", .string("not an integer"))
        let path = dir + "/ids.gguf"
        try TestSupport.write(w.bytes(), to: path)
        let spec = try TokenizerSpec(gguf: GGUFFile.open(path: path))
        #expect(spec.bos == 1)
        #expect(spec.eos == -5)  // out of the vocabulary: makeTokenizer rejects it
        #expect(spec.unknown == nil)
        #expect(throws: TokenizerError.self) { try spec.makeTokenizer() }
    }

    /// A tokenizer.json whose vocabulary holds one id near Int32.max reserved maxID + 1 token
    /// slots (gigabytes) before finding the hole; the hole is now found first.
    @Test func tokenizerJSONWithAHugeIDFailsBeforeAllocating() throws {
        let dir = try TestSupport.temporaryDirectory("fuzz-regression")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/tokenizer.json"
        let json = #"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 2147483600, "c": 1}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}}"#
        try TestSupport.write(Array(json.utf8), to: path)
        #expect(throws: TokenizerError.invalidTokenizerJSON(
            path: path, reason: "token ids are not contiguous: no token has id 2 (largest id 2147483600)")) {
            try BPETokenizer.fromTokenizerJSON(path: path)
        }
    }

    /// `block_count` = 2^40 with no tensors: the importer listed every claimed layer's weights
    /// before reading the first, and never finished (65536 layers took seconds). It now stops
    /// at the first missing weight.
    @Test func importStopsAtTheFirstMissingWeight() throws {
        let dir = try TestSupport.temporaryDirectory("fuzz-regression")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var w = GGUFTestWriter()
        w.add("general.architecture", .string("llama"))
        for (key, value) in [("block_count", UInt64(1) << 40), ("context_length", 16), ("embedding_length", 8),
                             ("feed_forward_length", 16), ("attention.head_count", 2), ("vocab_size", 4)] {
            w.add("llama." + key, .uint64(value))
        }
        w.add("llama.attention.layer_norm_rms_epsilon", .float32(1e-5))
        Self.tokenizerMetadata(&w)
        let path = dir + "/layers.gguf"
        try TestSupport.write(w.bytes(), to: path)
        #expect(throws: GGUFError(file: path, reason: "tensor 'token_embd.weight' is missing")) {
            try ModelImporter.load(path: path)
        }
    }

    /// Products of configuration numbers (heads × head_dim, rows × hidden_size) overflowed in the
    /// graph builder (a trap); the configuration is now rejected, naming the numbers.
    @Test func overflowingConfigurationProductsAreRejected() {
        func config(hidden: Int = 8, heads: Int = 2, kvHeads: Int = 1, headDim: Int? = nil, vocab: Int = 4) -> LlamaConfig {
            LlamaConfig(hiddenSize: hidden, intermediateSize: 16, numHiddenLayers: 1, numAttentionHeads: heads,
                        numKeyValueHeads: kvHeads, headDim: headDim, rmsNormEps: 1e-5, vocabSize: vocab,
                        maxPositionEmbeddings: 16)
        }
        #expect(config().inconsistency() == nil)
        #expect(config(heads: 1 << 40, kvHeads: 1 << 40, headDim: 1 << 40).inconsistency()
                == "num_attention_heads 1099511627776 or num_key_value_heads 1099511627776 times head_dim 1099511627776 overflows")
        #expect(config(hidden: 1 << 40, headDim: 4, vocab: 1 << 62).inconsistency()
                == "vocab_size 4611686018427387904 times hidden_size 1099511627776 overflows")
        #expect(config(hidden: 1 << 32, heads: 1 << 16, kvHeads: 1, headDim: 1 << 16).inconsistency()
                == "num_attention_heads × head_dim 4294967296 times hidden_size 4294967296 overflows")
    }

    /// The fuzzer's own crashing inputs, through the calls of its targets: each must end in a
    /// value or a thrown error (a trap would end the test process).
    @Test func fuzzCorpusRegressionInputs() throws {
        let corpus = TestSupport.repositoryRoot() + "/fuzz/corpus"
        let dir = try TestSupport.temporaryDirectory("fuzz-regression")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var ran = 0
        for name in try FileManager.default.contentsOfDirectory(atPath: corpus + "/gguf") where name.hasPrefix("regression-") {
            let file = try GGUFFile.open(path: corpus + "/gguf/" + name)
            _ = try? LlamaConfig(gguf: file)
            _ = try? TokenizerSpec(gguf: file).makeTokenizer()
            for tensor in file.tensors { _ = try? file.dequantize(tensor) }
            #expect(throws: (any Error).self) { try ModelImporter.load(path: corpus + "/gguf/" + name) }
            ran += 1
        }
        let separator = Array("\n%%NMC-FUZZ-NEXT-FILE%%\n".utf8)
        for name in try FileManager.default.contentsOfDirectory(atPath: corpus + "/tokenizer-json") where name.hasPrefix("regression-") {
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: corpus + "/tokenizer-json/" + name)))
            // The first part is tokenizer.json; a second, after the separator, tokenizer_config.json.
            var json = bytes
            if let cut = (0...(max(0, bytes.count - separator.count))).first(where: { Array(bytes[$0..<min(bytes.count, $0 + separator.count)]) == separator }) {
                json = Array(bytes[..<cut])
                try TestSupport.write(Array(bytes[(cut + separator.count)...]), to: dir + "/tokenizer_config.json")
            }
            try TestSupport.write(json, to: dir + "/tokenizer.json")
            #expect(throws: TokenizerError.self) { try BPETokenizer.fromTokenizerJSON(path: dir + "/tokenizer.json") }
            try? FileManager.default.removeItem(atPath: dir + "/tokenizer_config.json")
            ran += 1
        }
        #expect(ran >= 2)
    }
}
