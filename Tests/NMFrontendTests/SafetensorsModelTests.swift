import Foundation
import NMIR
import Testing
@testable import NMFrontend

@Suite struct SafetensorsModelTests {
    static let smolConfig = """
    {
      "architectures": ["LlamaForCausalLM"],
      "attention_bias": false,
      "bos_token_id": 1,
      "eos_token_id": 2,
      "hidden_act": "silu",
      "hidden_size": 576,
      "intermediate_size": 1536,
      "max_position_embeddings": 8192,
      "model_type": "llama",
      "num_attention_heads": 9,
      "num_hidden_layers": 30,
      "num_key_value_heads": 3,
      "rms_norm_eps": 1e-05,
      "rope_scaling": null,
      "rope_theta": 100000,
      "tie_word_embeddings": true,
      "torch_dtype": "bfloat16",
      "vocab_size": 49152,
      "transformers_version": "4.42.3"
    }
    """

    static func le<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        values.flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    }

    /// Tensors of every convertible dtype, with the f32 values they hold.
    static let tensors: [(name: String, dtype: String, shape: [Int], bytes: [UInt8], values: [Float])] = [
        ("model.embed_tokens.weight", "BF16", [2, 3], le([0x3F80, 0xC000, 0x0000, 0x3E80, 0x8000, 0x4120] as [UInt16]), [1, -2, 0, 0.25, -0.0, 10]),
        ("model.norm.weight", "F32", [3], le([Float(1.5).bitPattern, Float(-0.125).bitPattern, Float(3e-8).bitPattern]), [1.5, -0.125, 3e-8]),
        ("model.layers.0.self_attn.q_proj.weight", "F16", [2, 2], le([0x3C00, 0xBC00, 0x3555, 0x7BFF] as [UInt16]),
         [1, -1, Float(Float16(bitPattern: 0x3555)), 65504]),
        ("ids.i8", "I8", [4], [0x00, 0x7F, 0x80, 0xFF], [0, 127, -128, -1]),
        ("ids.i32", "I32", [3], le([7, -70000, 16_777_217] as [Int32]), [7, -70000, 16_777_216]),
    ]

    static func folder(_ tag: String, config: String? = smolConfig) throws -> String {
        let dir = try TestSupport.temporaryDirectory(tag)
        if let config { try config.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8) }
        return dir
    }

    static func check(_ model: SafetensorsModel) throws {
        #expect(Set(model.tensors.map(\.name)) == Set(tensors.map(\.name)))
        for t in tensors {
            let info = try #require(model.tensor(named: t.name))
            #expect(info.dtype == t.dtype && info.shape == t.shape && info.byteCount == t.bytes.count, "\(t.name)")
            #expect(model.withRawBytes(of: info) { Array($0) } == t.bytes, "\(t.name)")
            let values = try model.floats(of: info)
            #expect(values.map(\.bitPattern) == t.values.map(\.bitPattern), "\(t.name): \(values)")
        }
        #expect(model.tensor(named: "lm_head.weight") == nil)
    }

    @Test func singleFileFolder() throws {
        let dir = try Self.folder("st-single")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Safetensors.write(path: dir + "/model.safetensors", tensors: Self.tensors.map { ($0.name, $0.dtype, $0.shape, $0.bytes) },
                              metadata: ["format": "pt"])
        let model = try SafetensorsModel.open(path: dir)
        #expect(model.shardFiles == ["model.safetensors"])
        #expect(model.metadata == ["format": "pt"])
        try Self.check(model)
        // The same file opened directly.
        let direct = try SafetensorsModel.open(path: dir + "/model.safetensors")
        #expect(direct.directory == dir && direct.tensors == model.tensors)
        let config = try model.config()
        #expect(config == LlamaConfig(hiddenSize: 576, intermediateSize: 1536, numHiddenLayers: 30, numAttentionHeads: 9,
                                      numKeyValueHeads: 3, rmsNormEps: 1e-5, ropeTheta: 100000, vocabSize: 49152,
                                      maxPositionEmbeddings: 8192, tieWordEmbeddings: true, bosTokenID: 1, eosTokenIDs: [2]))
        #expect(config.headDim == 64 && config.eosTokenID == 2)
    }

    /// Two shards and their index; `weightMap` replaces the index's map, `overrides` changes entries of the right one.
    static func writeSharded(_ dir: String, weightMap: [String: String]? = nil, overrides: [String: String] = [:]) throws {
        let first = Array(Self.tensors.prefix(2)), second = Array(Self.tensors.dropFirst(2))
        try Safetensors.write(path: dir + "/model-00001-of-00002.safetensors", tensors: first.map { ($0.name, $0.dtype, $0.shape, $0.bytes) })
        try Safetensors.write(path: dir + "/model-00002-of-00002.safetensors", tensors: second.map { ($0.name, $0.dtype, $0.shape, $0.bytes) })
        var map: [String: String] = [:]
        for t in first { map[t.name] = "model-00001-of-00002.safetensors" }
        for t in second { map[t.name] = "model-00002-of-00002.safetensors" }
        map.merge(overrides) { _, new in new }
        let entries = (weightMap ?? map).sorted { $0.key < $1.key }.map { "    \"\($0.key)\": \"\($0.value)\"" }
        let index = "{\n  \"metadata\": {\"total_size\": 74},\n  \"weight_map\": {\n" + entries.joined(separator: ",\n") + "\n  }\n}\n"
        try index.write(toFile: dir + "/model.safetensors.index.json", atomically: true, encoding: .utf8)
    }

    @Test func shardedFolder() throws {
        let dir = try Self.folder("st-sharded")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeSharded(dir)
        let model = try SafetensorsModel.open(path: dir + "/")
        #expect(model.shardFiles == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"])
        #expect(model.tensor(named: "ids.i8")?.file == "model-00002-of-00002.safetensors")
        try Self.check(model)
    }

    /// The reason that opening `path` is rejected, checking that the error names `file`.
    static func rejection(_ path: String, file: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> String? {
        do {
            _ = try SafetensorsModel.open(path: path)
            Issue.record("\(path) opened", sourceLocation: sourceLocation)
        } catch let e as Safetensors.FormatError {
            #expect(e.file == file, sourceLocation: sourceLocation)
            #expect(e.description == "\(file): error: \(e.reason)", sourceLocation: sourceLocation)
            return e.reason
        } catch {
            Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
        }
        return nil
    }

    @Test func shardedIndexErrors() throws {
        let dir = try Self.folder("st-index")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let index = dir + "/model.safetensors.index.json"
        #expect(Self.rejection(dir, file: dir) == "neither model.safetensors nor model.safetensors.index.json is in the folder")
        #expect(Self.rejection(dir + "/nothing", file: dir + "/nothing") == "cannot open (No such file or directory)")

        try Self.writeSharded(dir, weightMap: ["model.norm.weight": "model-00009-of-00009.safetensors"])
        #expect(Self.rejection(dir, file: dir + "/model-00009-of-00009.safetensors") == "cannot open file (No such file or directory)")
        try Self.writeSharded(dir, overrides: ["model.norm.weight": "model-00002-of-00002.safetensors"])
        #expect(Self.rejection(dir, file: index)
                == "weight_map puts tensor 'model.norm.weight' in model-00002-of-00002.safetensors, but it is in model-00001-of-00002.safetensors")
        try Self.writeSharded(dir, weightMap: ["model.norm.weight": "model-00001-of-00002.safetensors", "lm_head.weight": "model-00001-of-00002.safetensors"])
        #expect(Self.rejection(dir, file: index) == "weight_map lists tensor 'lm_head.weight', but model-00001-of-00002.safetensors does not hold it")
        try Self.writeSharded(dir, weightMap: ["x": "../model.safetensors"])
        #expect(Self.rejection(dir, file: index) == "weight_map entry 'x' names '../model.safetensors', which is not a file inside the folder")

        try "{\"weight_map\": 3}".write(toFile: index, atomically: true, encoding: .utf8)
        #expect(Self.rejection(dir, file: index) == "field 'weight_map' is a number, expected an object")
        try "{\"metadata\": {}}".write(toFile: index, atomically: true, encoding: .utf8)
        #expect(Self.rejection(dir, file: index) == "missing field 'weight_map'")
        try "{\"weight_map\": {".write(toFile: index, atomically: true, encoding: .utf8)
        #expect(Self.rejection(dir, file: index)?.hasPrefix("not valid JSON (") == true)

        // The same tensor in two shards.
        try Safetensors.write(path: dir + "/a.safetensors", tensors: [("w", "F32", [1], [0, 0, 0, 0])])
        try Safetensors.write(path: dir + "/b.safetensors", tensors: [("w", "F32", [1], [0, 0, 0, 0])])
        try "{\"weight_map\": {\"w\": \"a.safetensors\", \"v\": \"b.safetensors\"}}".write(toFile: index, atomically: true, encoding: .utf8)
        #expect(Self.rejection(dir, file: dir + "/b.safetensors") == "tensor 'w' is also in a.safetensors")
    }

    /// A file made of a header length, the JSON header and `data`.
    static func rawFile(header: String, data: [UInt8]) -> [UInt8] {
        le([UInt64(header.utf8.count)]) + Array(header.utf8) + data
    }

    @Test func headersThatLieAboutOffsets() throws {
        let dir = try Self.folder("st-lying")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/model.safetensors"
        func reject(_ header: String, _ data: [UInt8]) throws -> String? {
            try TestSupport.write(Self.rawFile(header: header, data: data), to: path)
            return Self.rejection(dir, file: path)
        }
        #expect(try reject("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", [UInt8](repeating: 0, count: 8))
                == "tensor 'w': data_offsets [0, 16] outside the 8-byte data section")
        #expect(try reject("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,8]}}", [UInt8](repeating: 0, count: 8))
                == "tensor 'w': 8 bytes do not hold shape [4] of F32")
        #expect(try reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                           [UInt8](repeating: 0, count: 12))
                == "tensor 'b' bytes 4..<12 overlap tensor 'a' bytes 0..<8")
        #expect(try reject("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", [0, 0, 0x80]) != nil)
        var lying = Self.rawFile(header: "{}", data: [])
        lying[0] = 0xFF
        try TestSupport.write(lying, to: path)
        #expect(Self.rejection(dir, file: path) == "header length 255 runs past the end of the file (10 bytes)")

        // A dtype the reader keeps but cannot convert.
        try TestSupport.write(Self.rawFile(header: "{\"w\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", data: [UInt8](repeating: 0, count: 8)), to: path)
        let model = try SafetensorsModel.open(path: dir)
        let w = try #require(model.tensor(named: "w"))
        #expect(throws: Safetensors.FormatError.self) { try model.floats(of: w) }
        do { _ = try model.floats(of: w) } catch let e as Safetensors.FormatError {
            #expect(e.description == "\(path): error: tensor 'w': cannot convert dtype I64 to f32 (supported: BF16, F16, F32, I32, I8)")
        }
    }

    // MARK: config.json

    static func configError(_ json: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> String? {
        do {
            _ = try LlamaConfig(configJSONData: Data(json.utf8), file: "/m/config.json")
            Issue.record("config accepted", sourceLocation: sourceLocation)
        } catch let e as ModelConfigError {
            #expect(e.file == "/m/config.json" && e.description == "/m/config.json: error: \(e.reason)", sourceLocation: sourceLocation)
            return e.reason
        } catch {
            Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
        }
        return nil
    }

    static func config(removing key: String, _ replacement: String? = nil) -> String {
        smolConfig.split(separator: "\n").compactMap { line -> String? in
            guard line.contains("\"\(key)\":") else { return String(line) }
            return replacement.map { "  \"\(key)\": \($0)," }
        }.joined(separator: "\n")
    }

    @Test func configDefaultsAndVariants() throws {
        let minimal = """
        {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
         "num_attention_heads": 4, "rms_norm_eps": 1e-6, "vocab_size": 100, "max_position_embeddings": 256,
         "eos_token_id": [5, 6], "head_dim": 32}
        """
        let c = try LlamaConfig(configJSONData: Data(minimal.utf8), file: "c.json")
        #expect(c.numKeyValueHeads == 4 && c.ropeTheta == 10000 && !c.tieWordEmbeddings && c.bosTokenID == nil)
        #expect(c.eosTokenIDs == [5, 6] && c.headDim == 32 && c.rmsNormEps == 1e-6)
    }

    @Test func configErrors() throws {
        for key in ["hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "rms_norm_eps",
                    "vocab_size", "max_position_embeddings"] {
            #expect(Self.configError(Self.config(removing: key)) == "missing field '\(key)'")
        }
        #expect(Self.configError(Self.config(removing: "hidden_size", "\"576\"")) == "field 'hidden_size' is a string (\"576\"), expected an integer")
        #expect(Self.configError(Self.config(removing: "hidden_size", "576.5")) == "field 'hidden_size' is a number (576.5), expected an integer")
        #expect(Self.configError(Self.config(removing: "rms_norm_eps", "true")) == "field 'rms_norm_eps' is a boolean (true), expected a number")
        #expect(Self.configError(Self.config(removing: "tie_word_embeddings", "1")) == "field 'tie_word_embeddings' is a number (1), expected true or false")
        #expect(Self.configError(Self.config(removing: "architectures", "[\"MistralForCausalLM\"]")) == "architectures [\"MistralForCausalLM\"] is not LlamaForCausalLM")
        #expect(Self.configError(Self.config(removing: "hidden_act", "\"gelu\"")) == "hidden_act 'gelu' is not supported (only silu)")
        #expect(Self.configError(Self.config(removing: "rope_scaling", "{\"rope_type\": \"llama3\", \"factor\": 8.0}"))
                == "rope_scaling {\"factor\": 8, \"rope_type\": \"llama3\"} is not supported (only null)")
        #expect(Self.configError(Self.config(removing: "num_key_value_heads", "4")) == "num_attention_heads 9 is not a multiple of num_key_value_heads 4")
        #expect(Self.configError(Self.config(removing: "hidden_size", "577")) == "hidden_size 577 is not a multiple of num_attention_heads 9 and no head_dim is given")
        #expect(Self.configError(Self.config(removing: "num_hidden_layers", "0")) == "num_hidden_layers is 0, expected a positive number")
        #expect(Self.configError(Self.config(removing: "num_attention_heads", "0")) == "num_attention_heads is 0, expected a positive number")
        #expect(Self.configError(Self.config(removing: "num_key_value_heads", "-3")) == "num_key_value_heads is -3, expected a positive number")
        #expect(Self.configError(Self.config(removing: "rms_norm_eps", "0")) == "rms_norm_eps 0.0 is not a positive number")
        #expect(Self.configError("[1, 2]") == "config is not a JSON object")
        #expect(Self.configError("{\"hidden_size\": ")?.hasPrefix("not valid JSON (") == true)
        do {
            _ = try LlamaConfig(configJSON: "/nonexistent/config.json")
            Issue.record("read a missing file")
        } catch let e as ModelConfigError {
            #expect(e.description == "/nonexistent/config.json: error: cannot read file")
        }
        // A folder whose config is missing a field names config.json.
        let dir = try Self.folder("st-config", config: Self.config(removing: "vocab_size"))
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Safetensors.write(path: dir + "/model.safetensors", tensors: [("w", "F32", [1], [0, 0, 0, 0])])
        do {
            _ = try SafetensorsModel.open(path: dir).config()
            Issue.record("config accepted")
        } catch let e as ModelConfigError {
            #expect(e.description == "\(dir)/config.json: error: missing field 'vocab_size'")
        }
    }

    @Test func ggufConfigErrorsNameTheKey() throws {
        let dir = try TestSupport.temporaryDirectory("gguf-config")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var w = GGUFTestWriter()
        w.add("general.architecture", .string("llama"))
        w.add("llama.block_count", .uint32(2))
        w.add("llama.attention.head_count", .uint32(4))
        w.add("llama.vocab_size", .uint32(100))
        w.add("llama.embedding_length", .string("64"))
        let path = dir + "/c.gguf"
        try TestSupport.write(w.bytes(), to: path)
        do {
            _ = try LlamaConfig(gguf: try GGUFFile.open(path: path))
            Issue.record("config accepted")
        } catch let e as GGUFError {
            #expect(e.description == "\(path): error: metadata 'llama.embedding_length' is string \"64\", expected an integer")
        }
        // Defaults: KV heads = heads, rope base 10000, vocabulary from the token list; an
        // output.weight tensor unties the embedding.
        var minimal = GGUFTestWriter()
        minimal.add("general.architecture", .string("llama"))
        for (k, v) in [("block_count", 2), ("embedding_length", 64), ("feed_forward_length", 96), ("attention.head_count", 4),
                       ("context_length", 128)] { minimal.add("llama.\(k)", .uint32(UInt32(v))) }
        minimal.add("llama.attention.layer_norm_rms_epsilon", .float32(1e-6))
        minimal.add("tokenizer.ggml.tokens", .array(.string(["a", "b", "c"])))
        minimal.addTensor("output.weight", dims: [1], type: .f32, data: [0, 0, 0, 0])
        try TestSupport.write(minimal.bytes(), to: path)
        let c = try LlamaConfig(gguf: try GGUFFile.open(path: path))
        #expect(c == LlamaConfig(hiddenSize: 64, intermediateSize: 96, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 4,
                                 rmsNormEps: 1e-6, vocabSize: 3, maxPositionEmbeddings: 128))
        #expect(c.headDim == 16 && !c.tieWordEmbeddings && c.ropeTheta == 10000 && c.bosTokenID == nil)
        minimal.add("llama.attention.head_count_kv", .uint32(0))
        try TestSupport.write(minimal.bytes(), to: path)
        #expect(throws: GGUFError(file: path, reason: "llama metadata: num_key_value_heads is 0, expected a positive number")) {
            try LlamaConfig(gguf: try GGUFFile.open(path: path))
        }

        var other = GGUFTestWriter()
        other.add("general.architecture", .string("gpt2"))
        try TestSupport.write(other.bytes(), to: path)
        #expect(throws: GGUFError(file: path, reason: "general.architecture is 'gpt2', expected 'llama'")) {
            try LlamaConfig(gguf: try GGUFFile.open(path: path))
        }
    }
}
