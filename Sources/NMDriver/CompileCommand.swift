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
                               console: Console) throws {
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
        let staging = output + ".tmp-\(getpid())"
        try? FileManager.default.removeItem(atPath: staging)
        TemporaryPaths.shared.add(staging)
        defer { TemporaryPaths.shared.remove(staging) }
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
        do {
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
                "linear_weights": ["matrices": storage.rows.count, "weights": storage.totalParameters,
                                   "bytes_before": storage.totalBefore, "bytes_after": storage.totalAfter,
                                   "bits_per_weight": storage.bitsPerWeight],
                "files": ["model.nmir", "weights.safetensors"]
                    + (target == "cpu" ? ["model.o", CPUSharedLibrary.libraryName, CPUSharedLibrary.abiName] : []),
            ]
            let data = try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys])
            try AtomicFile.write(data, to: staging + "/manifest.json")
            try replace(output, with: staging)
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw error
        }
        console.writeOut("wrote \(output) (target \(target))\n")
        if target == "ptx" {
            console.writeErr("nmc: code generation for --target \(target) is not implemented yet; it arrives with the \(target.uppercased()) backend issue. \(output) holds the compressed NMIR, which `nmc run` and `nmc eval` execute through the reference interpreter.\n")
            throw ExitStatus(code: 2)
        }
    }
}

/// A command that finished its work but must exit with a particular status.
public struct ExitStatus: Error {
    public var code: Int32
}
