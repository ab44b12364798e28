import Foundation
import NMFrontend
import NMIR
import NMPasses

/// The compression flags `nmc compile` and `nmc eval perplexity` share, and the pipeline they
/// build: `calibrate` (when a method needs it), `nm-prune`, `quantize-int4`,
/// `fuse-dequant-matmul`, then `canonicalize,dce` (which also drops the calibration statistics).
public struct CompressionOptions: Sendable {
    public var sparsity: String?
    public var sparsityMethod = "magnitude"
    public var quant: String?
    public var groupSize = 128
    public var quantMethod = "rtn"
    public var symmetric = true
    public var calibration: String?
    public var calibrationSamples = 64
    public var calibrationSeq = 512
    /// Quantize the activations of the 4-bit linear layers to this many bits (`quantize-activations`).
    public var actBits: Int?
    /// A whole pipeline that replaces the one the flags build.
    public var passes: String?

    public init() {}

    public var isEmpty: Bool { sparsity == nil && quant == nil && passes == nil }

    /// The pipeline text; throws on flags that do not fit together.
    public func pipeline() throws -> String {
        if let passes {
            guard sparsity == nil, quant == nil, actBits == nil else {
                throw ToolError("--passes replaces the pipeline; drop --sparsity, --quant and --act-bits")
            }
            return passes
        }
        var steps: [String] = []
        var pattern: NMPattern? = nil
        if let sparsity {
            let parts = sparsity.split(separator: ":")
            guard parts.count == 2, let n = Int(parts[0]), let m = Int(parts[1]), let p = NMPattern(n: n, m: m) else {
                throw ToolError("--sparsity '\(sparsity)' is not an N:M pattern with 1 ≤ N < M ≤ 16 (like 2:4)")
            }
            pattern = p
            guard ["magnitude", "wanda", "sparsegpt"].contains(sparsityMethod) else {
                throw ToolError("--sparsity-method must be magnitude, wanda or sparsegpt, got '\(sparsityMethod)'")
            }
        }
        if let quant {
            guard quant == "int4" else { throw ToolError("--quant must be int4, got '\(quant)'") }
            guard ["rtn", "gptq"].contains(quantMethod) else { throw ToolError("--quant-method must be rtn or gptq, got '\(quantMethod)'") }
            guard groupSize >= 1 else { throw ToolError("--group-size must be ≥ 1, got \(groupSize)") }
        }
        let needsNorms = pattern != nil && sparsityMethod == "wanda"
        let needsHessian = (pattern != nil && sparsityMethod == "sparsegpt") || (quant != nil && quantMethod == "gptq")
        if needsNorms || needsHessian {
            guard let calibration else {
                let what = needsHessian ? (quantMethod == "gptq" && quant != nil ? "--quant-method gptq" : "--sparsity-method sparsegpt")
                    : "--sparsity-method wanda"
                throw ToolError("\(what) needs calibration text: --calibration FILE (use ../shared/data/wikitext2-valid.txt)")
            }
            steps.append("calibrate{file=\(quoted(calibration)) samples=\(calibrationSamples) seq=\(calibrationSeq) hessian=\(needsHessian)}")
        }
        if let p = pattern { steps.append("nm-prune{n=\(p.n) m=\(p.m) method=\(sparsityMethod)}") }
        if quant != nil {
            steps.append("quantize-int4{group=\(groupSize) symmetric=\(symmetric) method=\(quantMethod)}")
            steps.append("fuse-dequant-matmul")
        }
        if let actBits {
            guard quant != nil else { throw ToolError("--act-bits needs --quant int4 (it quantizes the inputs of 4-bit layers)") }
            guard (2...8).contains(actBits) else { throw ToolError("--act-bits must be from 2 to 8, got \(actBits)") }
            steps.append("quantize-activations{bits=\(actBits)}")
        }
        steps += ["canonicalize", "dce"]
        return steps.joined(separator: ",")
    }

    private func quoted(_ s: String) -> String {
        s.contains(where: { " ,{}\"".contains($0) }) ? quoteString(s) : s
    }
}

extension ModelCommands {
    /// Runs the compression pipeline on a loaded model; `source` is where its tokenizer is.
    public static func compress(_ model: ImportedModel, source: String, options: CompressionOptions,
                                console: Console, verbose: Bool = true) throws -> (ImportedModel, StorageReport) {
        let text = try options.pipeline()
        let steps = try PipelineParser(registry: DriverPasses.registry, sourceName: "pipeline").parse(text)
        if verbose { console.writeErr("pipeline: \(text)\n") }
        var module = model.module
        if let dir = model.weightsDirectory { try ModuleIO.loadExternalWeights(&module, directory: dir) }
        let before = module
        let manager = PassManager(steps: steps)
        manager.environment["tokenizer"] = source
        if let dir = model.weightsDirectory { manager.environment["module-directory"] = dir }
        manager.onWarning = { console.writeErr($0.description + "\n") }
        if verbose {
            manager.instruments.append(PassProgressInstrument(total: steps.count) { console.writeErr($0) })
        }
        try manager.run(&module)
        var compressed = model
        compressed.module = module
        compressed.weightsDirectory = nil
        return (compressed, StorageReport(before: before, after: module))
    }
}

/// One line per pass with its wall time, for long pipelines.
final class PassProgressInstrument: PassInstrument {
    let total: Int
    let write: (String) -> Void
    init(total: Int, write: @escaping (String) -> Void) {
        self.total = total
        self.write = write
    }
    func runAfter(_ step: PipelineStep, index: Int, module: Module, changed: Bool, statistics: [String: Int], seconds: Double) {
        let stats = statistics.keys.sorted().map { "\($0)=\(statistics[$0]!)" }.joined(separator: " ")
        write(String(format: "[%d/%d] %@ %.1f s %@\n", index + 1, total, step.name, seconds, stats))
    }
}
