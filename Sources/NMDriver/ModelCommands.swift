import Foundation
import NMFrontend
import NMIR
import NMRuntime

/// The logic of `nmc import`, `nmc inspect`, `nmc run` and `nmc eval perplexity`.
public enum ModelCommands {
    /// `nmc import MODEL -o DIR`: `DIR/model.nmir`, `DIR/weights.safetensors` and the tokenizer.
    /// The folder is written beside DIR under a temporary name and renamed into place when
    /// complete; an existing DIR is replaced only when it is an NMC folder.
    public static func importModel(path: String, output rawOutput: String, contextLength: Int?, console: Console) throws {
        let output = normalizedDirectory(rawOutput)
        try checkReplaceable(output)
        let started = Date()
        let model = try ModelImporter.load(path: path, contextLength: contextLength)
        try writeStaged(output) { staging in
            var module = model.module
            module.weights.file = "weights.safetensors"
            try ModuleIO.write(module, to: staging + "/model.nmir", sourceDirectory: model.weightsDirectory ?? staging)
            if let spec = model.tokenizerSpec {
                try spec.write(to: staging + "/" + TokenizerSpec.fileName)
            } else if let source = model.weightsDirectory ?? (model.format == "huggingface" ? path : nil) {
                for file in ["tokenizer.json", "tokenizer_config.json"] where FileManager.default.fileExists(atPath: source + "/" + file) {
                    try FileManager.default.copyItem(atPath: source + "/" + file, toPath: staging + "/" + file)
                }
            }
        }
        let bytes = model.module.weights.entries.reduce(0) { $0 + (WeightStore.storageByteCount(of: $1.type) ?? 0) }
        console.writeOut("imported \(path) (\(model.format)) into \(output): \(model.module.weights.entries.count) weights, "
                         + "\(formatBytes(bytes)), functions \(model.module.functions.map { "@" + $0.name }.joined(separator: ", ")) "
                         + String(format: "in %.1f s\n", Date().timeIntervalSince(started)))
    }

    /// A folder path without trailing slashes (`out/` and `out` name the same folder).
    static func normalizedDirectory(_ path: String) -> String {
        var p = path
        while p.count > 1, p.hasSuffix("/") { p.removeLast() }
        return p
    }

    /// Refuses to replace something that is not an NMC folder.
    static func checkReplaceable(_ output: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: output, isDirectory: &isDirectory) else { return }
        guard isDirectory.boolValue, FileManager.default.fileExists(atPath: output + "/model.nmir") else {
            throw ToolError("'\(output)' exists and is not an NMC folder (no model.nmir); not overwriting it")
        }
    }

    /// Runs `body` on a temporary sibling of `output` (removed on failure, and on interruption
    /// through TemporaryPaths) and renames it into place when `body` completes.
    static func writeStaged(_ output: String, _ body: (String) throws -> Void) throws {
        let staging = output + ".tmp-\(getpid())"
        try? FileManager.default.removeItem(atPath: staging)
        TemporaryPaths.shared.add(staging)
        defer { TemporaryPaths.shared.remove(staging) }
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
        do {
            try body(staging)
            try replace(output, with: staging)
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw error
        }
    }

    static func replace(_ output: String, with staging: String) throws {
        let old = output + ".old-\(getpid())"
        // From here an interruption must not delete anything: the swap takes two renames.
        let exists = FileManager.default.fileExists(atPath: output)
        if exists {
            do { try FileManager.default.moveItem(atPath: output, toPath: old) } catch {
                throw ToolError("cannot move the previous '\(output)' aside to replace it")
            }
        }
        do {
            try FileManager.default.moveItem(atPath: staging, toPath: output)
        } catch {
            if exists { try? FileManager.default.moveItem(atPath: old, toPath: output) }
            throw ToolError("cannot move the new folder into place at '\(output)'")
        }
        if exists { try? FileManager.default.removeItem(atPath: old) }
    }

    /// `nmc inspect MODEL`: metadata, tensors (name, shape, dtype, bytes) and totals.
    public static func inspect(path: String, console: Console) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ToolError("'\(path)': no such file or directory")
        }
        var out = ""
        var rows: [(String, String, String, Int)] = []
        if !isDirectory.boolValue {
            let gguf = try GGUFFile.open(path: path)
            out += "\(path): GGUF version \(gguf.version), \(gguf.metadataKeys.count) metadata keys, \(gguf.tensors.count) tensors\n\nmetadata:\n"
            for key in gguf.metadataKeys {
                let text = gguf.metadata[key].map { v -> String in
                    let s = v.description
                    return s.count > 120 ? String(s.prefix(117)) + "…" : s
                } ?? ""
                out += "  \(key) = \(text)\n"
            }
            rows = gguf.tensors.map { ($0.name, $0.shape.map(String.init).joined(separator: "x"), $0.type.name, $0.byteCount) }
        } else if FileManager.default.fileExists(atPath: path + "/model.nmir") {
            let model = try ModelImporter.load(path: path)
            out += "\(path): NMC folder, module @\(model.module.name ?? "")\n\nattributes:\n"
            for key in model.module.attributes.keys.sorted() { out += "  \(key) = \(model.module.attributes[key]!)\n" }
            rows = model.module.weights.entries.map { e in
                (e.name, shapeText(e.type), dtypeText(e.type), WeightStore.storageByteCount(of: e.type) ?? 0)
            }
        } else {
            let model = try SafetensorsModel.open(path: path)
            let config = try model.config()
            out += "\(path): Hugging Face folder, \(model.shardFiles.count) safetensors file(s)\n\nconfig:\n"
            out += "  hidden_size = \(config.hiddenSize)\n  intermediate_size = \(config.intermediateSize)\n"
            out += "  num_hidden_layers = \(config.numHiddenLayers)\n  num_attention_heads = \(config.numAttentionHeads)\n"
            out += "  num_key_value_heads = \(config.numKeyValueHeads)\n  vocab_size = \(config.vocabSize)\n"
            rows = model.tensors.map { ($0.name, $0.shape.map(String.init).joined(separator: "x"), $0.dtype, $0.byteCount) }
        }
        out += "\ntensors:\n"
        let nameWidth = min(48, rows.map(\.0.count).max() ?? 0)
        for (name, shape, dtype, bytes) in rows {
            out += "  " + name.padding(toLength: max(nameWidth, name.count), withPad: " ", startingAt: 0)
                + "  " + shape.padding(toLength: 14, withPad: " ", startingAt: 0)
                + "  " + dtype.padding(toLength: 6, withPad: " ", startingAt: 0) + "  " + formatBytes(bytes) + "\n"
        }
        var byType: [String: (Int, Int)] = [:]
        for (_, _, dtype, bytes) in rows { byType[dtype, default: (0, 0)].0 += 1; byType[dtype, default: (0, 0)].1 += bytes }
        let total = rows.reduce(0) { $0 + $1.3 }
        out += "\ntotal: \(rows.count) tensors, \(formatBytes(total)) (\(total) bytes)\n"
        for dtype in byType.keys.sorted() { out += "  \(dtype): \(byType[dtype]!.0) tensors, \(formatBytes(byType[dtype]!.1))\n" }
        console.writeOut(out)
    }

    static func shapeText(_ t: NMType) -> String {
        switch t {
        case .tensor(let t): return t.shape.map(\.description).joined(separator: "x")
        case .packed(let p): return "\(p.rows)x\(p.columns)"
        case .kvCache(let k): return "\(k.capacity)x\(k.heads)x\(k.headDim)"
        }
    }

    static func dtypeText(_ t: NMType) -> String {
        switch t {
        case .tensor(let t): return t.dtype.rawValue + (t.nm.map { " \($0)" } ?? "")
        case .packed(let p): return "\(p.storage)" + (p.nm.map { " \($0)" } ?? "")
        case .kvCache(let k): return k.dtype.rawValue
        }
    }

    public static func formatBytes(_ n: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB"]
        var v = Double(n), u = 0
        while v >= 1024, u < units.count - 1 { v /= 1024; u += 1 }
        return u == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[u])
    }

    /// `nmc run MODEL --prompt TEXT -n N`: streams the continuation to stdout, speed to stderr.
    public static func run(path: String, prompt: String, count: Int, sampler: Sampler, contextLength: Int?,
                           backend: ExecutionBackend = .interpreter, threads: Int = 0, console: Console) throws {
        let model = try ModelImporter.load(path: path, contextLength: contextLength)
        let session = try ModelSession(model: model, backend: backend, threads: threads)
        let tokens = model.tokenizer.encode(prompt, addSpecial: true)
        guard !tokens.isEmpty else { throw ToolError("the prompt is empty; give --prompt TEXT") }
        var sampler = sampler
        let stats = try session.generate(prompt: tokens, count: count, sampler: &sampler) { console.writeOut($0) }
        console.writeOut("\n")
        console.writeErr(String(format: "prompt: %d tokens, %.1f tokens/s; generated: %d tokens, %.1f tokens/s (%@)\n",
                                stats.promptTokens, stats.prefillTokensPerSecond, stats.generatedTokens, stats.decodeTokensPerSecond,
                                session.backendDescription))
    }

    /// `nmc eval perplexity MODEL --text FILE --ctx N [--max-tokens N]`.
    public static func perplexity(path: String, textFile: String, context: Int, maxTokens: Int?, secondHalfOnly: Bool,
                                  compression: CompressionOptions = CompressionOptions(),
                                  backend: ExecutionBackend = .interpreter, threads: Int = 0,
                                  console: Console) throws -> PerplexityResult {
        guard context >= 2 else { throw ToolError("--ctx must be at least 2") }
        guard let data = FileManager.default.contents(atPath: textFile) else { throw ToolError("cannot read '\(textFile)'") }
        var model = try ModelImporter.load(path: path, contextLength: context)
        if !compression.isEmpty {
            let (compressed, storage) = try compress(model, source: path, options: compression, console: console)
            model = compressed
            console.writeOut(storage.text(perTensor: false))
        }
        let session = try ModelSession(model: model, backend: backend, threads: threads)
        var tokens = model.tokenizer.encode(String(decoding: data, as: UTF8.self))
        if let maxTokens { tokens = Array(tokens.prefix(maxTokens)) }
        guard tokens.count >= context else {
            throw ToolError("'\(textFile)' has \(tokens.count) tokens, fewer than one window of \(context)")
        }
        let progress = ProgressLine("perplexity", total: tokens.count / context)
        let result = try Perplexity.evaluate(tokens: tokens, context: context, vocab: session.vocabularySize,
                                             secondHalfOnly: secondHalfOnly, progress: progress) { window in
            session.reset()
            return try session.forward(window)
        }
        console.writeOut(String(format: "perplexity %.4f over %d tokens (%d windows of %d, %@ scored, BOS not added) in %.1f s (%.1f tokens/s, %@)\n",
                                result.perplexity, result.tokensScored, result.windows, context,
                                secondHalfOnly ? "second half of each window" : "every position after the first",
                                result.seconds, Double(result.windows * context) / result.seconds, session.backendDescription))
        return result
    }
}
