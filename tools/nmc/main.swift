import ArgumentParser
import NMDriver

/// nmc: compile LLaMA-family models into smaller, faster code for CPUs, NVIDIA GPUs and FPGAs.
@main
struct NMC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nmc",
        abstract: "The NMC compiler: import, compress (N:M sparsity, INT4) and compile LLaMA-family models.",
        discussion: """
        MODEL is a .gguf file, a Hugging Face folder (safetensors + config.json) or a folder written
        by `nmc import` / `nmc compile`. Use `nmc-opt` to run single passes on textual NMIR.
        """,
        version: NMCVersion.line,
        subcommands: [Import.self, Compile.self, Run.self, Eval.self, Bench.self, Inspect.self])
}

/// Says plainly that a subcommand is not built yet and exits with status 2.
func notYet(_ what: String, issue: String) throws -> Never {
    Console.standard.writeErr("nmc: \(what) is not implemented yet; it arrives with \(issue).\n")
    throw ExitCode(2)
}

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import a model (GGUF or Hugging Face safetensors) into NMIR: DIR/model.nmir + DIR/weights.safetensors.")
    @Argument(help: "The model: a .gguf file or a Hugging Face folder.") var model: String
    @Option(name: .short, help: "Output directory.") var output: String
    func run() throws { try notYet("nmc import", issue: "the model import issue (GGUF/safetensors readers)") }
}

struct Compile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compress and compile a model for a target (cpu, ptx, hls) into an artifact directory.")
    @Argument(help: "The model or an .nmir file.") var model: String
    @Option(help: "Target: cpu, ptx or hls.") var target: String = "cpu"
    @Option(help: "N:M sparsity, e.g. 2:4.") var sparsity: String?
    @Option(help: "Quantization: int4.") var quant: String?
    @Option(help: "A pass pipeline that replaces the one the flags build.") var passes: String?
    @Option(name: .short, help: "Output directory.") var output: String
    func run() throws { try notYet("nmc compile", issue: "the compression-pass and backend issues") }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Generate text with a model or a compiled artifact.")
    @Argument(help: "The model or artifact directory.") var model: String
    @Option(help: "The prompt.") var prompt: String = ""
    @Option(name: .short, help: "Tokens to generate.") var n: Int = 64
    func run() throws { try notYet("nmc run", issue: "the import issue (reference interpreter)") }
}

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure model quality.", subcommands: [Perplexity.self])

    struct Perplexity: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Perplexity of a model on a text file.")
        @Argument(help: "The model.") var model: String
        @Option(help: "The text file.") var text: String
        @Option(help: "Context length.") var ctx: Int = 512
        func run() throws { try notYet("nmc eval perplexity", issue: "the import issue (reference interpreter)") }
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks that compare NMC with its baselines in one run (matmul, decode, hls).")
    @Argument(help: "What to measure: matmul, decode or hls.") var what: String
    func run() throws { try notYet("nmc bench", issue: "the CPU, PTX and HLS backend issues") }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a model's metadata, tensors and totals.")
    @Argument(help: "The model.") var model: String
    func run() throws { try notYet("nmc inspect", issue: "the import issue (GGUF/safetensors readers)") }
}
