import Foundation
import NMFrontend
import NMIR
import NMRuntime

/// `nmc-run DIR --prompt TEXT`: generates text with a `nmc compile --target cpu` artifact, through
/// its `model.so` (dlopen) — no LLVM, no compiler.
enum ArtifactRun {
    static func generate(directory: String, prompt: String, count: Int, threads: Int) throws {
        let model = try ModelImporter.load(path: directory)
        let library = try CPUSharedLibrary(directory: directory)
        guard library.matches(model.module) else {
            throw CPURuntimeError("\(directory)/\(CPUSharedLibrary.libraryName) was built for other functions than \(directory)/model.nmir; compile again")
        }
        let threadCount = threads > 0 ? threads : ProcessInfo.processInfo.activeProcessorCount
        let runner = try CPUModelRunner(program: library.executable(module: model.module, weightsDirectory: directory, threads: threadCount),
                                        module: model.module)
        let tokens = model.tokenizer.encode(prompt, addSpecial: true)
        guard !tokens.isEmpty else { throw CPURuntimeError("the prompt is empty; give --prompt TEXT") }
        let vocab = model.config.vocabSize
        let started = Date()
        var logits = try runner.forward(tokens)
        let prefillSeconds = Date().timeIntervalSince(started)
        var generated: [Int32] = []
        let decodeStarted = Date()
        while generated.count < count {
            let last = logits[(logits.count - vocab)...]
            let next = Int32(last.indices.max { last[$0] < last[$1] }! - last.startIndex)
            if model.tokenizer.isEndOfGeneration(next) { break }
            generated.append(next)
            if generated.count == count || runner.position >= runner.contextLength { break }
            logits = try runner.forward([next])
        }
        let decodeSeconds = Date().timeIntervalSince(decodeStarted)
        print(model.tokenizer.decode(generated))
        FileHandle.standardError.write(Data(String(format: "prompt: %d tokens, %.1f tokens/s; generated: %d tokens, %.1f tokens/s (model.so, %d threads, greedy)\n",
                                                   tokens.count, Double(tokens.count) / prefillSeconds, generated.count,
                                                   Double(max(generated.count - 1, 0)) / decodeSeconds, threadCount).utf8))
    }
}
