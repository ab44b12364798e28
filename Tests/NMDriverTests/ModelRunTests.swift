import Foundation
import Testing
@testable import NMDriver
import NMFrontend
import NMIR
import NMRuntime

/// The real model (SmolLM2-135M-Instruct, Q4_1 GGUF, fetched by `make model`) through the
/// importer and the reference interpreter.
@Suite(.serialized) struct ModelRunTests {
    static var repoRoot: String {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.path + "/Package.swift") { return url.path }
        }
        return "."
    }

    static var modelPath: String { repoRoot + "/models/SmolLM2-135M-Instruct.Q4_1.gguf" }

    func loadModel() throws -> ImportedModel {
        try #require(FileManager.default.fileExists(atPath: Self.modelPath), "the model is missing: run `make model`")
        return try ModelImporter.load(path: Self.modelPath, contextLength: 512)
    }

    @Test func greedyContinuationOfTheCapitalOfFranceIsParis() throws {
        let model = try loadModel()
        let session = try ModelSession(model: model)
        var sampler = Sampler(temperature: 0)
        var text = ""
        let prompt = model.tokenizer.encode("The capital of France is", addSpecial: true)
        let stats = try session.generate(prompt: prompt, count: 24, sampler: &sampler) { text += $0 }
        #expect(text.hasPrefix(" Paris"), "continuation: \(text)")
        #expect(stats.generatedTokens == 24 || model.tokenizer.isEndOfGeneration(stats.tokens.last ?? 0) == false)
        #expect(model.tokenizer.decode(stats.tokens) == text)
    }

    /// The CPU backend (LLVM, JIT) against the interpreter on the real model: the same 64 greedy
    /// tokens, and the first step's logits within a small relative error.
    @Test func cpuBackendGeneratesTheInterpretersGreedyTokens() throws {
        let model = try loadModel()
        let prompt = model.tokenizer.encode("Once upon a time, in a small village,", addSpecial: true)
        var runs: [[Int32]] = []
        var firstLogits: [[Float]] = []
        for backend in [ExecutionBackend.interpreter, .cpu] {
            let session = try ModelSession(model: model, backend: backend, threads: 2)
            var sampler = Sampler(temperature: 0)
            firstLogits.append(try session.forward(prompt))
            let stats = try session.generate(prompt: prompt, count: 64, sampler: &sampler) { _ in }
            runs.append(stats.tokens)
        }
        #expect(runs[0].count == 64)
        #expect(runs[1] == runs[0], "cpu: \(runs[1])\ninterpreter: \(runs[0])")
        let scale = firstLogits[0].map { abs($0) }.max() ?? 1
        let worst = zip(firstLogits[0], firstLogits[1]).map { abs($0 - $1) }.max() ?? 0
        #expect(worst <= 1e-3 * scale, "largest logit difference \(worst) of \(scale)")
    }

    @Test func importedFolderGivesIdenticalLogits() throws {
        let model = try loadModel()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nmc-import-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (console, out, _) = Console.capturing()
        try ModelCommands.importModel(path: Self.modelPath, output: dir, contextLength: 512, console: console)
        #expect(out().hasPrefix("imported "))
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: dir)) == ["model.nmir", "weights.safetensors", TokenizerSpec.fileName])

        let imported = try ModelImporter.load(path: dir)
        #expect(imported.format == "nmir")
        #expect(imported.config == model.config)
        #expect(imported.module.functions == model.module.functions)
        let prompt = model.tokenizer.encode("Gravity bends light around massive objects.")
        #expect(imported.tokenizer.encode("Gravity bends light around massive objects.") == prompt)
        let a = try ModelSession(model: model).forward(prompt)
        let b = try ModelSession(model: imported).forward(prompt)
        #expect(a.count == prompt.count * model.config.vocabSize)
        #expect(a == b, "logits differ after import → re-import")
    }

    /// A regression guard on the interpreter's quality figure: the first 1024 tokens of
    /// wikitext2-test, windows of 512, every position after the first scored. (The full figure,
    /// 16384 tokens, is in docs/quality.md with its command.)
    @Test func perplexityOnTheFirstTwoWindows() throws {
        let path = Self.repoRoot + "/../shared/data/wikitext2-test.txt"
        try #require(FileManager.default.fileExists(atPath: path), "missing \(path)")
        try #require(FileManager.default.fileExists(atPath: Self.modelPath), "the model is missing: run `make model`")
        let (console, out, _) = Console.capturing()
        let result = try ModelCommands.perplexity(path: Self.modelPath, textFile: path, context: 512, maxTokens: 1024,
                                                  secondHalfOnly: false, console: console)
        #expect(result.tokensScored == 1022)
        #expect(result.windows == 2)
        #expect(abs(result.perplexity - 20.4648) < 0.01, "perplexity \(result.perplexity)")
        #expect(out().hasPrefix("perplexity 20.46"))
    }
}
