import Foundation
import Testing
@testable import NMDriver
import NMIR
import NMTargetPTX

/// `nmc compile --target ptx` without a GPU: the synthetic model's structure, the decode plan the
/// lowering makes of it, the weights the CPU side materializes, and the artifact's files.
@Suite struct PTXArtifactTests {
    static let config = """
        {"model_type": "llama", "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "vocab_size": 512, "rms_norm_eps": 1e-5, "rope_theta": 10000,
         "max_position_embeddings": 64, "tie_word_embeddings": false}
        """

    func configPath() throws -> String {
        let path = NSTemporaryDirectory() + "nmc-ptx-config-\(UUID().uuidString).json"
        try Data(Self.config.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func options(int4: Bool, sparse: Bool) -> CompressionOptions {
        var o = CompressionOptions()
        if int4 { o.quant = "int4" }
        if sparse { o.sparsity = "2:4" }
        return o
    }

    @Test func syntheticModelIsTheCompressedGraph() throws {
        let (module, config) = try SyntheticModel.module(configPath: try configPath(), options: options(int4: true, sparse: true), contextLength: 32)
        #expect(config.hiddenSize == 128 && config.headDim == 32)
        let decode = try #require(module.function(named: "decode"))
        let quant = decode.body.filter { $0.name == "quant.linear" }
        #expect(quant.count == 2 * 7)                                              // q k v o gate up down per layer
        #expect(quant.allSatisfy { $0.attributes["nm"]?.patternValue == NMPattern(n: 2, m: 4) })
        #expect(decode.body.filter { $0.name == "nn.linear" }.count == 1)          // the f32 output head
        #expect(module.weights["blk.0.attn_q.weight.q"]?.type.packed?.nm == NMPattern(n: 2, m: 4))
        #expect(module.weights["blk.0.attn_q.weight.scales"]?.type.tensor?.shape.map(\.value) == [128, 1])
        #expect(module.weights.entries.allSatisfy { $0.data == .elided })
    }

    @Test func materializedWeightsAreTheGeneratorsValues() throws {
        let (module, _) = try SyntheticModel.module(configPath: try configPath(), options: options(int4: true, sparse: true), contextLength: 32)
        let full = try SyntheticModel.materialized(module, seed: 7)
        let keys = SyntheticWeights.keys(seed: 7, name: "blk.1.ffn_down.weight")
        let expected = try SyntheticWeights.packed(keys, rows: 128, columns: 256, sparse24: true)
        #expect(full.weights["blk.1.ffn_down.weight.q"]?.storageBytes == expected.storage)
        #expect(full.weights["blk.1.ffn_down.weight.scales"]?.storageBytes == expected.scaleBits.withUnsafeBytes { [UInt8]($0) })
        let norm = try #require(full.weights["blk.0.attn_norm.weight"]?.storageBytes)
        #expect(norm == [Float](repeating: 1, count: 128).withUnsafeBytes { [UInt8]($0) })
        // The embedding is ±1 (exponent 0), the output head ±1/√128 (exponent 4 = round(log2 √128 = 3.5)).
        let emb = try #require(full.weights["token_embd.weight"]?.storageBytes).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        #expect(emb[5] == SyntheticWeights.denseValue(SyntheticWeights.keys(seed: 7, name: "token_embd.weight"), row: 0, column: 5, columns: 128, exponent: 0))
        let head = try #require(full.weights["output.weight"]?.storageBytes).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        #expect(head.allSatisfy { abs($0) < 1.0 / 16 } && head.contains { abs($0) > 1.0 / 32 })
    }

    @Test func decodePlanFusesAndStacks() throws {
        let (module, _) = try SyntheticModel.module(configPath: try configPath(), options: options(int4: true, sparse: true), contextLength: 32)
        let out = try DecodeLowering.lower(module, syntheticSeed: 7)
        let plan = out.plan
        #expect(out.weights.isEmpty)
        // embedding; per layer norm, q|k|v, rope q, rope k → cache, v → cache, attention, o,
        // add+norm, gate|up, silu·mul, down; final add+norm, head.
        #expect(plan.launches.count == 1 + 2 * 11 + 2)
        let kernels = plan.launches.map(\.kernel)
        #expect(kernels[0] == "nm_embedding_d128")
        #expect(kernels[1] == "nm_rms_norm_d128_p128")
        #expect(kernels[2] == "nm_linear_int4Sparse24_n256_k128_t1_r1_w16")  // q 128 + k 64 + v 64 rows, stacked
        #expect(plan.launches[2].computes.count == 3)
        #expect(kernels[3] == "nm_rope_h4_d32_half" && kernels[4] == "nm_rope_h2_d32_half" && kernels[5] == "nm_kv_store_n64")
        #expect(kernels[6] == "nm_attention_hq4_hkv2_d32_c32_s8")
        #expect(kernels[8] == "nm_rms_norm_d128_p128_add" && plan.launches[8].computes.count == 2)
        #expect(kernels[9] == "nm_linear_int4Sparse24_n512_k128_t1_r1_w16")  // gate|up
        #expect(kernels[10] == "nm_silu_mul_n256")
        #expect(kernels.last == "nm_linear_fp16_n512_k128_t1_r1_w16")          // the f32 head as FP16
        #expect(plan.linearKinds == ["fp16", "int4Sparse24"])
        #expect(plan.vocab == 512 && plan.capacity == 32 && plan.syntheticSeed == 7)
        // rope k writes the cache row: its row argument is 2 heads × 32.
        #expect(plan.launches[4].arguments[4].u32 == 64)
        // Synthetic fills: the stacked q|k|v weight is generated member by member at its row offset.
        let qkv = plan.launches[2].arguments[0].buffer!
        let fills = plan.fills.filter { $0.buffer == qkv }
        #expect(fills.map(\.offset) == [0, 8 * 512, 12 * 512])  // 512 bytes of values per 16-row tile and unit
        #expect(fills.allSatisfy { $0.generator == .sparseValues && $0.padded == 128 })
        let data = try JSONEncoder().encode(plan)
        #expect(try JSONDecoder().decode(DecodePlan.self, from: data) == plan)
        #expect(out.ptx.contains(".target sm_80") && out.ptx.contains(".visible .entry nm_attention_hq4_hkv2_d32_c32_s8("))
    }

    @Test func sm90PlansLaunchEveryKernelAfterTheFirstAsADependentLaunch() throws {
        let (module, _) = try SyntheticModel.module(configPath: try configPath(), options: options(int4: true, sparse: true), contextLength: 32)
        let plain = try DecodeLowering.lower(module, syntheticSeed: 7)
        let out = try DecodeLowering.lower(module, syntheticSeed: 7, dependentLaunch: true)
        #expect(out.ptx.contains(".target sm_90") && !plain.ptx.contains("griddepcontrol"))
        #expect(out.plan.launches.count == plain.plan.launches.count)
        #expect(out.plan.launches[0].dependent == nil && out.plan.launches.dropFirst().allSatisfy { $0.dependent == true })
        #expect(plain.plan.launches.allSatisfy { $0.dependent == nil })
        // Every entry waits exactly once; the linear kernels after their weight loads (entry
        // "_d"), every other kernel before its first instruction.
        let entries = out.ptx.components(separatedBy: ".visible .entry ").dropFirst()
        #expect(entries.count == Set(out.plan.launches.map(\.kernel)).count)
        for e in entries {
            #expect(e.components(separatedBy: "griddepcontrol.wait;").count == 2)
            #expect(e.components(separatedBy: "griddepcontrol.launch_dependents;").count == 2)
            let name = String(e.prefix { $0 != "(" })
            if name.hasPrefix("nm_linear_") {
                #expect(name.hasSuffix("_d"))
            } else {
                let lines = e.split(separator: "\n").map(String.init)
                let open = try #require(lines.firstIndex(of: "{"))
                let first = try #require(lines[(open + 1)...].firstIndex { !$0.hasPrefix("    .reg ") && !$0.hasPrefix("    .shared ") })
                #expect(lines[first] == "    griddepcontrol.launch_dependents;" && lines[first + 1] == "    griddepcontrol.wait;")
            }
        }
        // An older plan (no "dependent" key) still reads.
        let data = try JSONEncoder().encode(plain.plan)
        #expect(!String(decoding: data, as: UTF8.self).contains("dependent"))
        #expect(try JSONDecoder().decode(DecodePlan.self, from: data) == plain.plan)
    }

    @Test func compileWritesTheArtifact() throws {
        let dir = NSTemporaryDirectory() + "nmc-ptx-artifact-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (console, out, _) = Console.capturing()
        try ModelCommands.compileSynthetic(configPath: try configPath(), seed: 3, target: "ptx", options: options(int4: true, sparse: false),
                                           output: dir, contextLength: 32, reference: .init(steps: 3, backend: .interpreter), console: console)
        #expect(out().contains("wrote"))
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(files == ["manifest.json", "model.nmir", "model.ptx", "plan.json", "reference.bin", "reference.json"])
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/manifest.json"))) as? [String: Any])
        #expect(manifest["target"] as? String == "ptx")
        #expect((manifest["synthetic_weights"] as? [String: Any])?["seed"] as? Int == 3)
        let reference = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/reference.json"))) as? [String: Any])
        #expect((reference["tokens"] as? [Int])?.count == 4)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/reference.bin")).count == 3 * 512 * 4)  // steps 0, 1, 2
        let plan = try JSONDecoder().decode(DecodePlan.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/plan.json")))
        #expect(plan.linearKinds == ["fp16", "int4"])
        #expect(throws: ToolError.self) {
            try ModelCommands.compileSynthetic(configPath: try configPath(), seed: 3, target: "cpu", options: options(int4: true, sparse: false),
                                               output: dir + "-cpu", contextLength: 32, reference: nil, console: console)
        }
    }

    @Test func unsupportedGroupsAreRefusedWithTheReason() throws {
        var o = CompressionOptions()
        o.quant = "int4"
        o.groupSize = 64
        #expect(throws: ToolError.self) { try SyntheticModel.module(configPath: try configPath(), options: o, contextLength: 32) }
    }
}
