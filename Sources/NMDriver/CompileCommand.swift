import Foundation
import NMFrontend
import NMIR
import NMRuntime
import NMTargetHLS

extension ModelCommands {
    /// The targets `nmc compile` knows; `nmir` stops after compression.
    public static let targets = ["nmir", "cpu", "ptx", "hls"]

    /// `nmc compile MODEL --target nmir [compression flags] -o DIR [--report]`: compresses the model
    /// and writes `DIR/model.nmir`, `DIR/weights.safetensors` (packed), the tokenizer and
    /// `DIR/manifest.json`, into a temporary sibling renamed into place when complete.
    public static func compile(path: String, target: String, options rawOptions: CompressionOptions, output rawOutput: String,
                               report: Bool, contextLength: Int?, hls: HLSFlags = HLSFlags(), emitLLVM: Bool = false,
                               reference: ReferenceOptions? = nil, gpu: PTXArtifact.GPU = .sm80, console: Console) throws {
        guard targets.contains(target) else {
            throw ToolError("unknown target '\(target)' (known: \(targets.joined(separator: ", ")))")
        }
        let options = try target == "hls" ? hls.compressionOptions(rawOptions) : rawOptions
        let hlsOptions = target == "hls" ? try hls.options() : nil
        _ = try options.pipeline()  // flag errors before any work
        let output = normalizedDirectory(rawOutput)
        try checkReplaceable(output)
        let model = try ModelImporter.load(path: path, contextLength: contextLength)
        let (compressed, storage) = try compress(model, source: path, options: options, console: console)
        console.writeOut(storage.text(perTensor: report))
        try writeStaged(output) { staging in
            var module = compressed.module
            module.weights.file = "weights.safetensors"
            try ModuleIO.write(module, to: staging + "/model.nmir", sourceDirectory: staging)
            if let hlsOptions {
                let estimate = try HLSProjectWriter.write(module: compressed.module, to: staging, options: hlsOptions)
                console.writeOut(hlsSummary(estimate, directory: output))
            }
            if target == "cpu" {
                try CPUArtifact.write(module: module, to: staging, emitLLVM: emitLLVM, console: console)
            }
            var ptxFiles: [String] = []
            if target == "ptx" {
                ptxFiles = try PTXArtifact.write(module: compressed.module, to: staging, syntheticSeed: nil, gpu: gpu, console: console)
                if let reference {
                    ptxFiles += try PTXArtifact.writeReference(module: compressed.module, to: staging, steps: reference.steps,
                                                               startToken: reference.startToken, backend: reference.backend, console: console)
                }
            }
            if let spec = model.tokenizerSpec {
                try spec.write(to: staging + "/" + TokenizerSpec.fileName)
            } else {
                let source = model.weightsDirectory ?? path
                for file in ["tokenizer.json", "tokenizer_config.json"] where FileManager.default.fileExists(atPath: source + "/" + file) {
                    try FileManager.default.copyItem(atPath: source + "/" + file, toPath: staging + "/" + file)
                }
            }
            let manifest: [String: Any] = [
                "format": "nmc-artifact", "nmc": NMCVersion.number, "target": target, "source": path,
                "pipeline": try options.pipeline(),
                "gpu": target == "ptx" ? gpu.rawValue : NSNull(),
                "linear_weights": ["matrices": storage.rows.count, "weights": storage.totalParameters,
                                   "bytes_before": storage.totalBefore, "bytes_after": storage.totalAfter,
                                   "bits_per_weight": storage.bitsPerWeight],
                "files": ["model.nmir", "weights.safetensors"]
                    + (target == "cpu" ? ["model.o", CPUSharedLibrary.libraryName, CPUSharedLibrary.abiName] : []) + ptxFiles,
            ]
            let data = try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys])
            try AtomicFile.write(data, to: staging + "/manifest.json")
        }
        console.writeOut("wrote \(output) (target \(target))\n")
    }

    /// What `--reference-steps` asks of a `--target ptx` compile: greedy steps on a CPU backend.
    public struct ReferenceOptions {
        public var steps: Int
        public var startToken: Int
        public var backend: ExecutionBackend
        public init(steps: Int, startToken: Int = 1, backend: ExecutionBackend = .cpu) {
            self.steps = steps; self.startToken = startToken; self.backend = backend
        }
    }

    /// `nmc compile --config FILE --synthetic-weights SEED --target ptx|nmir -o DIR`: a model from
    /// a config alone (SyntheticModel); DIR/model.nmir keeps its weights elided, the GPU makes them
    /// from the seed. With `reference`, the weights are also made here (same functions) and the
    /// CPU backend's greedy steps written beside.
    public static func compileSynthetic(configPath: String, seed: UInt64, target: String, options: CompressionOptions, output rawOutput: String,
                                        contextLength: Int?, reference: ReferenceOptions?, gpu: PTXArtifact.GPU = .sm80, console: Console) throws {
        guard target == "ptx" || target == "nmir" else {
            throw ToolError("--synthetic-weights compiles for --target ptx or nmir (the GPU makes the weights from the seed), not \(target)")
        }
        let output = normalizedDirectory(rawOutput)
        try checkReplaceable(output)
        let (module, config) = try SyntheticModel.module(configPath: configPath, options: options, contextLength: contextLength)
        try writeStaged(output) { staging in
            try ModuleIO.write(module, to: staging + "/model.nmir", sourceDirectory: staging)
            var files = ["model.nmir"]
            if target == "ptx" {
                files += try PTXArtifact.write(module: module, to: staging, syntheticSeed: seed, gpu: gpu, console: console)
                if let reference {
                    let full = try SyntheticModel.materialized(module, seed: seed)
                    files += try PTXArtifact.writeReference(module: full, to: staging, steps: reference.steps, startToken: reference.startToken,
                                                            backend: reference.backend, console: console)
                }
            }
            let manifest: [String: Any] = [
                "format": "nmc-artifact", "nmc": NMCVersion.number, "target": target, "source": configPath,
                "synthetic_weights": ["seed": seed, "generator": "SyntheticWeights (Sources/NMTargetPTX/SyntheticWeights.swift)"],
                "config": ["hidden_size": config.hiddenSize, "layers": config.numHiddenLayers, "heads": config.numAttentionHeads,
                           "kv_heads": config.numKeyValueHeads, "head_dim": config.headDim, "intermediate_size": config.intermediateSize,
                           "vocab_size": config.vocabSize],
                "compression": ["quant": options.quant ?? "none", "sparsity": options.sparsity ?? "none"],
                "gpu": target == "ptx" ? gpu.rawValue : NSNull(),
                "files": files,
            ]
            try AtomicFile.write(try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys]),
                                 to: staging + "/manifest.json")
        }
        console.writeOut("wrote \(output) (target \(target), synthetic weights, seed \(seed))\n")
    }
}

/// A command that finished its work but must exit with a particular status.
public struct ExitStatus: Error {
    public var code: Int32
}
