import Foundation
import NMInterpreter
import NMIR
import NMRuntime
import NMTargetCPU
import NMTargetPTX

/// `nmc compile … --target ptx`: lowers the compressed module's @decode to `model.ptx` (every
/// kernel of the step), `plan.json` (buffers, weight fills, launches; DecodePlan) and, for real
/// weights, `weights.bin` (the linear weights re-laid for the kernels, docs/ptx-weight-layout.md;
/// norms and the embedding table as f32). `nmc-run DIR` runs it on the GPU.
public enum PTXArtifact {
    /// The oldest GPU architecture the artifact runs on (`nmc compile --gpu`): sm_80 (Ampere and
    /// later), or sm_90 (Hopper and later), whose decode step launches each kernel as a
    /// programmatic dependent launch of the one before (DecodeLowering's `dependentLaunch`).
    public enum GPU: String, CaseIterable, Sendable {
        case sm80 = "sm_80", sm90 = "sm_90"
    }

    /// Writes the PTX artifact's files into `directory`; returns their names.
    public static func write(module: Module, to directory: String, syntheticSeed: UInt64?, gpu: GPU = .sm80, console: Console) throws -> [String] {
        let started = Date()
        let out = try DecodeLowering.lower(module, syntheticSeed: syntheticSeed, dependentLaunch: gpu == .sm90)
        try AtomicFile.write(out.ptx, to: directory + "/model.ptx")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(out.plan), to: directory + "/plan.json")
        var files = ["model.ptx", "plan.json"]
        if !out.weights.isEmpty {
            try AtomicFile.write(Data(out.weights), to: directory + "/weights.bin")
            files.append("weights.bin")
        }
        let kernels = Set(out.plan.launches.map(\.kernel)).count
        let dependent = out.plan.launches.filter { $0.dependent == true }.count
        console.writeErr(String(format: "ptx: %@, %d kernels, %d launches a decode step (one CUDA graph%@), %@, lowered in %.1f s\n",
                                gpu.rawValue, kernels, out.plan.launches.count, dependent > 0 ? ", \(dependent) of them dependent launches" : "",
                                syntheticSeed.map { "weights synthetic (seed \($0)), made on the GPU" } ?? "\(out.weights.count >> 20) MiB of re-laid weights",
                                Date().timeIntervalSince(started)))
        return files
    }

    /// Runs `steps` greedy decode steps from `startToken` on the CPU backend (or the interpreter)
    /// and writes `reference.json` (the tokens) and `reference.bin` (the f32 logits of a few
    /// steps), which `nmc-run DIR --check` compares the GPU with.
    public static func writeReference(module: Module, to directory: String, steps: Int, startToken: Int, backend: ExecutionBackend,
                                      console: Console) throws -> [String] {
        guard steps >= 1 else { throw ToolError("--reference-steps must be at least 1") }
        let started = Date()
        var forward: (Int32, Int) throws -> [Float]
        switch backend {
        case .cpu:
            let runner = try CPUModelRunner(program: CPUProgram.jit(module: module, weightsDirectory: nil,
                                                                    threads: ProcessInfo.processInfo.activeProcessorCount), module: module)
            forward = { token, _ in try runner.forward([token]) }
        case .interpreter:
            let interpreter = Interpreter(module: module, weightsDirectory: nil)
            guard let prefill = module.function(named: "prefill") else { throw ToolError("the model has no @prefill") }
            var caches: [RuntimeValue] = try prefill.arguments.dropFirst(2).map { arg in
                guard case .kvCache(let type) = arg.type else { throw ToolError("@prefill argument %\(arg.name) is not a kv.cache") }
                return .kvCache(KVCache(type: type))
            }
            forward = { token, position in
                let results = try interpreter.run("decode", [.tensor(Tensor(shape: [1], ints: [token])), .tensor(.scalar(Int32(position)))] + caches)
                caches = Array(results.dropFirst())
                return results[0].tensor?.floats ?? []
            }
        }
        var tokens = [startToken]
        let logitSteps = Array(Set([0, 1, steps / 2, steps - 1])).sorted()
        var recorded: [Float] = []
        for s in 0..<steps {
            let logits = try forward(Int32(tokens[s]), s)
            if logitSteps.contains(s) { recorded += logits }
            tokens.append(logits.indices.max { logits[$0] < logits[$1] || (logits[$0] == logits[$1] && $0 > $1) } ?? 0)
        }
        let reference: [String: Any] = ["backend": backend == .cpu ? "cpu backend (JIT)" : "reference interpreter", "tokens": tokens,
                                        "logitSteps": logitSteps, "logitsFile": "reference.bin"]
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: reference, options: [.prettyPrinted, .sortedKeys]),
                             to: directory + "/reference.json")
        try AtomicFile.write(recorded.withUnsafeBytes { Data($0) }, to: directory + "/reference.bin")
        console.writeErr(String(format: "reference: %d greedy steps on the %@ in %.1f s\n", steps,
                                backend == .cpu ? "CPU backend" : "reference interpreter", Date().timeIntervalSince(started)))
        return ["reference.json", "reference.bin"]
    }
}
