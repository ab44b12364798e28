import Foundation
import NMFrontend
import NMInterpreter
import NMIR
import NMRuntime
import NMTargetCPU

/// What runs a model's functions.
public enum ExecutionBackend: String, CaseIterable, Sendable {
    /// The CPU backend: LLVM code for this machine, JIT-compiled (or `model.so` of a `--target cpu` artifact).
    case cpu
    /// The reference interpreter: slow, exact, the oracle.
    case interpreter
}

/// A model loaded for running: its KV caches, prefill and decode steps, and generation, through
/// the CPU backend or the reference interpreter.
public final class ModelSession {
    public let model: ImportedModel
    public let backend: ExecutionBackend
    let interpreter: Interpreter
    var caches: [RuntimeValue] = []
    /// The CPU backend's compiled functions with their caches.
    private var compiled: CPUModelRunner?
    /// Seconds spent generating and compiling code (0 for the interpreter).
    public private(set) var compileSeconds = 0.0
    /// Tokens already in the caches.
    public private(set) var position = 0

    public init(model: ImportedModel, backend: ExecutionBackend = .interpreter, threads: Int = 0) throws {
        self.model = model
        self.backend = backend
        interpreter = Interpreter(module: model.module, weightsDirectory: model.weightsDirectory)
        guard let prefill = model.module.function(named: "prefill"), model.module.function(named: "decode") != nil else {
            throw ToolError("the model has no @prefill and @decode functions")
        }
        caches = try prefill.arguments.dropFirst(2).map { arg in
            guard case .kvCache(let type) = arg.type else { throw ToolError("@prefill argument %\(arg.name) is not a kv.cache") }
            return .kvCache(KVCache(type: type))
        }
        if backend == .cpu {
            let started = Date()
            let threadCount = threads > 0 ? threads : ProcessInfo.processInfo.activeProcessorCount
            compiled = try CPUModelRunner(program: CPUArtifact.load(model: model, threads: threadCount), module: model.module)
            compileSeconds = Date().timeIntervalSince(started)
        }
    }

    public var vocabularySize: Int { model.config.vocabSize }
    public var contextLength: Int {
        if case .kvCache(let c) = caches.first { return c.type.capacity }
        return 0
    }

    public var threads: Int { compiled?.program.pool.threads ?? 1 }

    /// "cpu, 2 threads" or "reference interpreter", for reports.
    public var backendDescription: String {
        backend == .cpu ? "cpu, \(threads) thread\(threads == 1 ? "" : "s")" : "reference interpreter"
    }

    /// Forgets the tokens in the caches.
    public func reset() { position = 0 }

    /// Runs `tokens` at the current position and returns their logits, `tokens.count × vocab`.
    public func forward(_ tokens: [Int32]) throws -> [Float] {
        guard !tokens.isEmpty else { return [] }
        guard position + tokens.count <= contextLength else {
            throw ToolError("\(position + tokens.count) tokens exceed the context of \(contextLength) (use --ctx to enlarge it)")
        }
        if let compiled {
            if position == 0 { compiled.reset() }
            let logits = try compiled.forward(tokens)
            position += tokens.count
            return logits
        }
        let function = tokens.count == 1 ? "decode" : "prefill"
        let ids = Tensor(shape: [tokens.count], ints: tokens)
        let results = try interpreter.run(function, [.tensor(ids), .tensor(.scalar(Int32(position)))] + caches)
        position += tokens.count
        guard let logits = results.first?.tensor, results.count == caches.count + 1 else {
            throw ToolError("@\(function) must return the logits and the \(caches.count) updated caches")
        }
        caches = Array(results.dropFirst())
        return logits.floats
    }

    /// Generates up to `count` tokens after `prompt`, calling `emit` with each token's text as it
    /// comes. Stops early at an end-of-generation token.
    public func generate(prompt: [Int32], count: Int, sampler: inout Sampler,
                         emit: (String) -> Void) throws -> GenerationStats {
        reset()
        let vocab = vocabularySize
        let started = Date()
        var logits = try forward(prompt)
        let prefillSeconds = Date().timeIntervalSince(started)
        var generated: [Int32] = []
        var printed = 0
        let decodeStarted = Date()
        for _ in 0..<count {
            let rows = logits.count / vocab
            let next = Int32(sampler.next(logits[((rows - 1) * vocab)..<(rows * vocab)]))
            if model.tokenizer.isEndOfGeneration(next) { break }
            generated.append(next)
            // Print whole characters only: a token may end inside a UTF-8 sequence.
            let bytes = model.tokenizer.decodeBytes(generated)
            let complete = completeUTF8Prefix(bytes)
            if complete > printed {
                emit(String(decoding: bytes[printed..<complete], as: UTF8.self))
                printed = complete
            }
            if generated.count == count || position >= contextLength { break }
            logits = try forward([next])
        }
        let bytes = model.tokenizer.decodeBytes(generated)
        if bytes.count > printed { emit(String(decoding: bytes[printed...], as: UTF8.self)) }
        return GenerationStats(promptTokens: prompt.count, generatedTokens: generated.count, prefillSeconds: prefillSeconds,
                               decodeSeconds: Date().timeIntervalSince(decodeStarted), tokens: generated)
    }

    /// Length of the longest prefix of `bytes` that ends on a UTF-8 character boundary.
    func completeUTF8Prefix(_ bytes: [UInt8]) -> Int {
        var i = bytes.count
        var back = 0
        while i > 0, back < 4, bytes[i - 1] & 0xC0 == 0x80 { i -= 1; back += 1 }
        guard i > 0 else { return bytes.count }
        let lead = bytes[i - 1]
        let need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
        return need == back + 1 ? bytes.count : i - 1
    }
}

public struct GenerationStats: Sendable {
    public var promptTokens: Int
    public var generatedTokens: Int
    public var prefillSeconds: Double
    public var decodeSeconds: Double
    public var tokens: [Int32]

    public var decodeTokensPerSecond: Double { decodeSeconds > 0 ? Double(max(generatedTokens - 1, 0)) / decodeSeconds : 0 }
    public var prefillTokensPerSecond: Double { prefillSeconds > 0 ? Double(promptTokens) / prefillSeconds : 0 }
}
