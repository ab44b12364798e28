import ArgumentParser
import Foundation
import NMDriver
import NMRuntime

/// nmc: compile LLaMA-family models into smaller, faster code for CPUs, NVIDIA GPUs and FPGAs.
@main
struct NMC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nmc",
        abstract: "The NMC compiler: import, compress (N:M sparsity, INT4) and compile LLaMA-family models.",
        discussion: """
        MODEL is a .gguf file, a Hugging Face folder (safetensors + config.json) or a folder written \
        by `nmc import` / `nmc compile`. Use `nmc-opt` to run single passes on textual NMIR.
        """,
        version: NMCVersion.line,
        subcommands: [Import.self, Compile.self, Run.self, Eval.self, Bench.self, Inspect.self])
}

/// Runs a command body, printing errors as `nmc: error: …` (or `file:line:col: error: …`) with exit status 1.
func reportingErrors(_ body: () throws -> Void) throws {
    Interruption.install(tool: "nmc")
    do {
        try body()
    } catch let e as ExitCode {
        throw e
    } catch let e as ExitStatus {
        throw ExitCode(e.code)
    } catch {
        Console.standard.writeErr(errorText(error) + "\n")
        throw ExitCode(1)
    }
}

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import a model (GGUF or Hugging Face safetensors) into NMIR: DIR/model.nmir + DIR/weights.safetensors.",
        discussion: "DIR is written under a temporary name and renamed into place when complete; an existing DIR is replaced only when it is an NMC folder.")
    @Argument(help: "The model: a .gguf file or a Hugging Face folder.") var model: String
    @Option(name: .short, help: "Output directory.") var output: String
    @Option(help: "Positions the KV caches hold (default: the model's, at most 2048).") var ctx: Int?
    func run() throws {
        try reportingErrors { try ModelCommands.importModel(path: model, output: output, contextLength: ctx, console: .standard) }
    }
}

/// The compression flags `nmc compile` and `nmc eval perplexity` share.
struct CompressionFlags: ParsableArguments {
    @Option(help: "N:M structured sparsity of the linear layers, e.g. 2:4, 1:4, 2:8, 4:8.") var sparsity: String?
    @Option(name: .customLong("sparsity-method"), help: "How weights are chosen: magnitude, wanda or sparsegpt.")
    var sparsityMethod: String = "magnitude"
    @Option(help: "Weight quantization: int4.") var quant: String?
    @Option(name: .customLong("group-size"), help: "INT4 group size along the input dimension.") var groupSize: Int = 128
    @Option(name: .customLong("quant-method"), help: "INT4 rounding: rtn or gptq.") var quantMethod: String = "rtn"
    @Flag(name: .customLong("asymmetric"), help: "INT4 with zero points (default: symmetric).") var asymmetric = false
    @Option(help: "Calibration text for wanda, sparsegpt and gptq (use ../shared/data/wikitext2-valid.txt).") var calibration: String?
    @Option(name: .customLong("calibration-samples"), help: "Windows of calibration text.") var calibrationSamples: Int = 64
    @Option(name: .customLong("calibration-seq"), help: "Tokens per calibration window.") var calibrationSeq: Int = 512
    @Option(help: "A pass pipeline that replaces the one the flags build (see nmc-opt --list-passes).") var passes: String?
    @Option(name: .customLong("act-bits"), help: "Quantize the inputs of the INT4 layers per token to this many bits (integer arithmetic; --target hls: 8).")
    var actBits: Int?

    var options: CompressionOptions {
        var o = CompressionOptions()
        o.sparsity = sparsity
        o.sparsityMethod = sparsityMethod
        o.quant = quant
        o.groupSize = groupSize
        o.quantMethod = quantMethod
        o.symmetric = !asymmetric
        o.calibration = calibration
        o.calibrationSamples = calibrationSamples
        o.calibrationSeq = calibrationSeq
        o.passes = passes
        o.actBits = actBits
        return o
    }
}

struct Compile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compress a model (N:M sparsity, INT4) and compile it for a target into an artifact directory.",
        discussion: """
        --target nmir writes the compressed NMIR (DIR/model.nmir, DIR/weights.safetensors with packed \
        weights, the tokenizer and DIR/manifest.json); `nmc run DIR` and `nmc eval perplexity DIR` run \
        it. --target cpu also writes the model's code for this machine: DIR/model.o, DIR/model.so and \
        DIR/model.abi.json (with --emit-llvm, DIR/model.ll and DIR/model.opt.ll); `nmc run DIR` and \
        `nmc-run DIR` load model.so without LLVM. --target hls also writes DIR/hls/: the systolic-array \
        kernel (HLS C++), its testbench and test vectors, a Makefile (make csim), a Vitis HLS script and \
        report.md/report.json (docs/fpga.md). --target ptx also writes the decode step for NVIDIA GPUs: \
        DIR/model.ptx (every kernel), DIR/plan.json (buffers, weight fills, launches: one CUDA graph) \
        and DIR/weights.bin (weights re-laid for the kernels, docs/ptx-weight-layout.md); `nmc-run DIR` \
        runs it. --config FILE --synthetic-weights SEED (instead of MODEL) compiles a config.json-style \
        model whose weights the GPU makes from the seed; --reference-steps N writes the CPU backend's \
        greedy steps beside it for `nmc-run DIR --check`.
        """)
    @Argument(help: "The model: a .gguf file, a Hugging Face folder or an NMC folder.") var model: String?
    @Option(help: "A config.json-style model description, compiled with --synthetic-weights instead of MODEL.") var config: String?
    @Option(name: .customLong("synthetic-weights"), help: "With --config: the seed of the weights (made identically on CPU and GPU).")
    var syntheticWeights: UInt64?
    @Option(name: .customLong("reference-steps"), help: "--target ptx: run this many greedy steps on the CPU backend and write them for nmc-run --check.")
    var referenceSteps: Int?
    @Option(name: .customLong("reference-backend"), help: "--reference-steps: cpu (the CPU backend) or interpreter.")
    var referenceBackend: String = "cpu"
    @Option(help: "Target: nmir, cpu, ptx or hls.") var target: String = "nmir"
    @OptionGroup var compression: CompressionFlags
    @Flag(help: "Print the storage of every linear weight before and after.") var report = false
    @Option(help: "Positions the KV caches hold (default: the model's, at most 2048).") var ctx: Int?
    @Option(help: "--target ptx: the oldest NVIDIA GPU the artifact runs on: sm_80 (Ampere and later) or sm_90 (Hopper and later: each kernel of the decode step is a programmatic dependent launch of the one before, so that the next layer's weights stream in while the step's small kernels run).")
    var gpu: String = "sm_80"
    @Option(help: "--target hls: the FPGA board the array is sized for: u280, vck190 or zcu102.") var fpga: String = "u280"
    @Option(help: "--target hls: the systolic array, ROWSxCOLS processing elements.") var array: String = "32x32"
    @Option(help: "--target hls: clock, MHz, for the report.") var clock: Double = 300
    @Option(name: .customLong("dense-lanes"), help: "--target hls: multipliers per PE for a dense model.") var denseLanes: Int = 2
    @Flag(name: .customLong("emit-llvm"), help: "--target cpu: also write DIR/model.ll (as generated) and DIR/model.opt.ll (optimized).") var emitLLVM = false
    @Option(name: .short, help: "Output directory.") var output: String
    func run() throws {
        try reportingErrors {
            var hls = HLSFlags()
            hls.fpga = fpga
            hls.array = array
            hls.clockMHz = clock
            hls.denseLanes = denseLanes
            var reference: ModelCommands.ReferenceOptions? = nil
            if let steps = referenceSteps {
                guard target == "ptx" else { throw ToolError("--reference-steps goes with --target ptx") }
                guard let backend = ExecutionBackend(rawValue: referenceBackend) else {
                    throw ToolError("--reference-backend: cpu or interpreter, not '\(referenceBackend)'")
                }
                reference = ModelCommands.ReferenceOptions(steps: steps, backend: backend)
            }
            guard let arch = PTXArtifact.GPU(rawValue: gpu) else {
                throw ToolError("--gpu: sm_80 or sm_90, not '\(gpu)'")
            }
            guard arch == .sm80 || target == "ptx" else { throw ToolError("--gpu goes with --target ptx") }
            switch (model, config, syntheticWeights) {
            case (nil, let config?, let seed?):
                try ModelCommands.compileSynthetic(configPath: config, seed: seed, target: target, options: compression.options, output: output,
                                                   contextLength: ctx, reference: reference, gpu: arch, console: .standard)
            case (let model?, nil, nil):
                try ModelCommands.compile(path: model, target: target, options: compression.options, output: output,
                                          report: report, contextLength: ctx, hls: hls, emitLLVM: emitLLVM, reference: reference, gpu: arch,
                                          console: .standard)
            default:
                throw ToolError("give MODEL, or --config FILE with --synthetic-weights SEED (not both)")
            }
        }
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate text with a model: streams the continuation of --prompt and reports tokens/s.",
        discussion: """
        Runs on the CPU backend: the model's LLVM code is JIT-compiled for this machine, or loaded from \
        model.so when MODEL is a `nmc compile --target cpu` folder. --backend interpreter runs the \
        reference interpreter instead. Temperature 0 is greedy.
        """)
    @Argument(help: "The model: a .gguf file, a Hugging Face folder or an `nmc import` folder.") var model: String
    @Option(help: "The prompt.") var prompt: String
    @Option(name: .short, help: "Tokens to generate.") var n: Int = 64
    @Option(help: "Sampling temperature; 0 picks the most likely token.") var temperature: Double = 0.8
    @Option(name: .customLong("top-k"), help: "Sample among the k most likely tokens (0: all).") var topK: Int = 40
    @Option(name: .customLong("top-p"), help: "Sample among the most likely tokens whose probabilities add up to p.") var topP: Double = 0.95
    @Option(help: "Random seed for sampling.") var seed: UInt64 = 0
    @Option(help: "Positions the KV caches hold (default: the model's, at most 2048).") var ctx: Int?
    @OptionGroup var execution: ExecutionFlags

    func validate() throws {
        guard n >= 0 else { throw ValidationError("-n must be ≥ 0") }
        guard temperature >= 0 else { throw ValidationError("--temperature must be ≥ 0") }
        guard topP > 0, topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
        guard topK >= 0 else { throw ValidationError("--top-k must be ≥ 0") }
    }

    func run() throws {
        try reportingErrors {
            try ModelCommands.run(path: model, prompt: prompt, count: n,
                                  sampler: Sampler(temperature: temperature, topK: topK, topP: topP, seed: seed),
                                  contextLength: ctx, backend: execution.backendValue, threads: execution.threads, console: .standard)
        }
    }
}

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure model quality.", subcommands: [Perplexity.self])

    struct Perplexity: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Perplexity of a model on a text file, over non-overlapping windows.",
            discussion: """
            Each window of --ctx tokens runs from an empty cache; BOS is not added. By default the logits \
            at every position score the next token; --score second-half scores only the second half of \
            each window (llama.cpp's rule).
            """)
        @Argument(help: "The model.") var model: String
        @Option(help: "The text file (e.g. ../shared/data/wikitext2-test.txt).") var text: String
        @Option(help: "Window (context) length.") var ctx: Int = 512
        @Option(name: .customLong("max-tokens"), help: "Use only the first N tokens of the text.") var maxTokens: Int?
        @Option(help: "Which positions are scored: all or second-half.") var score: String = "all"
        @OptionGroup var compression: CompressionFlags
        @OptionGroup var execution: ExecutionFlags

        func validate() throws {
            guard ctx >= 2 else { throw ValidationError("--ctx must be ≥ 2") }
            guard score == "all" || score == "second-half" else { throw ValidationError("--score must be all or second-half") }
            if let maxTokens, maxTokens < ctx { throw ValidationError("--max-tokens must be ≥ --ctx") }
        }

        func run() throws {
            try reportingErrors {
                _ = try ModelCommands.perplexity(path: model, textFile: text, context: ctx, maxTokens: maxTokens,
                                                 secondHalfOnly: score == "second-half",
                                                 compression: compression.options, backend: execution.backendValue,
                                                 threads: execution.threads, console: .standard)
            }
        }
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks that compare NMC with its baselines in one run (matmul, decode, hls).")
    @Argument(help: "What to measure: matmul, decode or hls.") var what: String
    @Argument(help: "hls: a model, or a preset: llama-7b, smollm2-135m.") var model: String?
    @Option(help: "hls: the FPGA board: u280, vck190 or zcu102.") var fpga: String = "u280"
    @Option(help: "hls: array sizes, ROWSxCOLS, comma-separated.") var arrays: String = "16x16,32x32,64x64"
    @Option(help: "hls: PE patterns, comma-separated: N:M or dense(N).") var patterns: String = "dense(1),dense(2),dense(4),1:4,2:4,1:8,2:8,4:8"
    @Option(help: "hls: tokens of the prefill.") var tokens: Int = 128
    @Option(help: "hls: clock, MHz.") var clock: Double = 300
    @Option(name: .short, help: "hls: where the table, JSON and SVG chart go.") var output: String = "out/bench-hls"
    @Option(help: "matmul, decode: threads (default: all cores).") var threads: Int = 0
    @Option(help: "matmul, decode: timed runs per case (the median is reported).") var runs: Int = 5
    @Option(name: .customLong("prompt-tokens"), help: "decode: tokens of the prefill.") var promptTokens: Int = 512
    @Option(name: .customLong("decode-tokens"), help: "decode: tokens decoded one at a time.") var decodeTokens: Int = 128
    @Option(help: "matmul, decode: the JSON file to write (default out/bench-matmul.json, out/bench-decode.json).") var json: String?
    @Option(help: "matmul, decode: the target measured here: cpu (GPU kernels: nmc-run --bench-matmul on the GPU machine).") var target: String = "cpu"
    func run() throws {
        if what == "matmul" || what == "decode" {
            guard target == "cpu" else {
                throw ValidationError("nmc bench \(what) measures --target cpu; the GPU's kernels are measured on the GPU machine by nmc-run --bench-matmul / --bench-step (docs/performance-gpu.md)")
            }
            return try reportingErrors {
                let threadCount = threads > 0 ? threads : ProcessInfo.processInfo.activeProcessorCount
                if what == "matmul" {
                    try CPUBench.matmul(threads: threadCount, runs: runs, output: json ?? "out/bench-matmul.json", console: .standard)
                } else {
                    guard let model else { throw ValidationError("nmc bench decode needs a model") }
                    try CPUBench.decode(path: model, threads: threadCount, promptTokens: promptTokens, decodeTokens: decodeTokens,
                                        runs: runs, output: json ?? "out/bench-decode.json", console: .standard)
                }
            }
        }
        guard what == "hls" else { throw ValidationError("nmc bench measures matmul, decode or hls, not '\(what)'") }
        try reportingErrors {
            guard let model else { throw ValidationError("nmc bench hls needs a model or a preset (llama-7b, smollm2-135m)") }
            try ModelCommands.benchHLS(modelOrConfig: model, fpga: fpga, arrays: arrays, patterns: patterns, tokens: tokens,
                                       clockMHz: clock, output: output, console: .standard)
        }
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a model's metadata, tensors (name, shape, dtype, bytes) and totals.")
    @Argument(help: "The model: a .gguf file, a Hugging Face folder or an NMC folder.") var model: String
    func run() throws { try reportingErrors { try ModelCommands.inspect(path: model, console: .standard) } }
}

/// Where a model runs: `--backend cpu|interpreter` and `--threads`.
struct ExecutionFlags: ParsableArguments {
    @Option(help: "cpu (LLVM code for this machine) or interpreter (the reference interpreter).") var backend: String = "cpu"
    @Option(help: "Threads for the CPU backend (default: all cores).") var threads: Int = 0

    var backendValue: ExecutionBackend { ExecutionBackend(rawValue: backend) ?? .cpu }

    func validate() throws {
        guard ExecutionBackend(rawValue: backend) != nil else { throw ValidationError("--backend must be cpu or interpreter") }
        guard threads >= 0 else { throw ValidationError("--threads must be ≥ 0") }
    }
}
