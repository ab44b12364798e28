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
