import Foundation
import NMIR
import NMPasses

/// What `nmc-opt` was asked to do.
public struct OptOptions {
    public var input = "-"
    public var output: String?
    public var passes = ""
    public var splitInputFile = false
    public var verifyDiagnostics = false
    public var printIRBefore: [String] = []
    public var printIRAfter: [String] = []
    public var printIRAfterAll = false
    public var printIRAfterChange = false
    public var printIRAfterFailure = false
    public var dumpDirectory: String?
    public var passTiming = false
    public var passStatistics = false

    public init() {}
}

/// The logic of `nmc-opt`: read NMIR, run a pipeline, print NMIR. Returns the exit status.
public struct OptDriver {
    public var options: OptOptions
    public var console: Console

    public init(options: OptOptions, console: Console = .standard) {
        self.options = options
        self.console = console
    }

    public func run() -> Int32 {
        Interruption.install(tool: "nmc-opt")
        do {
            return try runChecked()
        } catch let d as Diagnostic {
            let pipeline = d.location.file == "--passes" ? SourceText(name: "--passes", text: options.passes) : nil
            console.writeErr(d.rendered(source: pipeline) + "\n")
        } catch {
            console.writeErr("nmc-opt: error: \(error)\n")
        }
        return 1
    }

    private func runChecked() throws -> Int32 {
        let steps = try PipelineParser(registry: DriverPasses.registry, sourceName: "--passes").parse(options.passes)
        for name in options.printIRBefore + options.printIRAfter where DriverPasses.registry[name] == nil {
            throw ToolError("unknown pass '\(name)' in --print-ir-before/--print-ir-after (known passes: \(DriverPasses.registry.names.joined(separator: ", ")))")
        }
        if options.dumpDirectory != nil && options.splitInputFile {
            throw ToolError("--dump-dir cannot be combined with --split-input-file; the parts would overwrite each other's dumps")
        }
        if options.output != nil && options.splitInputFile {
            throw ToolError("-o cannot be combined with --split-input-file; the chunks print to standard output")
        }
        let input = try InputFile.read(options.input)
        var outputs: [String] = []
        var failed = false
        for source in input.sources(split: options.splitInputFile) {
            var expected: ExpectedDiagnostics?
            do {
                expected = options.verifyDiagnostics ? try ExpectedDiagnostics(source: source) : nil
            } catch let d as Diagnostic {
                // A malformed expectation: show its line like any other error in the input.
                console.writeErr(d.rendered(source: source) + "\n")
                failed = true
                continue
            }
            var produced: [Diagnostic] = []
            var module: Module? = nil
            do {
                var m = try Parser.parseAndVerify(source)
                try ModuleIO.checkExternalWeights(m, directory: input.directory)
                try runPipeline(steps, on: &m, directory: input.directory)
                module = m
            } catch let d as Diagnostic {
                produced = [d]
            } catch let list as DiagnosticList {
                produced = list.diagnostics
            } catch let f as PipelineFailure {
                produced = f.diagnostics
            }
            if var e = expected {
                let problems = e.check(produced)
                expected = e
                for p in problems { console.writeErr(p.rendered(source: source) + "\n") }
                if !problems.isEmpty { failed = true }
            } else if !produced.isEmpty {
                for d in produced { console.writeErr(d.rendered(source: source) + "\n") }
                failed = true
            }
            if let module {
                if let output = options.output {
                    try ModuleIO.write(module, to: output, sourceDirectory: input.directory)
                } else {
                    outputs.append(Printer(elideWeightsLargerThan: ModuleIO.inlineWeightLimit).print(module))
                }
            }
        }
        if !outputs.isEmpty { console.writeOut(outputs.joined(separator: "// -----\n")) }
        return failed ? 1 : 0
    }

    private func runPipeline(_ steps: [PipelineStep], on module: inout Module, directory: String) throws {
        guard !steps.isEmpty || options.dumpDirectory != nil else { return }
        // Passes rewrite weights, so those in the weights file are read first.
        let loaded = steps.isEmpty ? [:] : try ModuleIO.loadExternalWeights(&module, directory: directory)
        defer { ModuleIO.restoreUnchangedWeights(&module, loaded: loaded) }
        let manager = PassManager(steps: steps)
        manager.environment["module-directory"] = directory
        let err = console.writeErr
        manager.onWarning = { err($0.description + "\n") }
        if !options.printIRBefore.isEmpty || !options.printIRAfter.isEmpty || options.printIRAfterAll
            || options.printIRAfterChange || options.printIRAfterFailure {
            manager.instruments.append(PrintIRInstrument(
                before: Set(options.printIRBefore), after: Set(options.printIRAfter), afterAll: options.printIRAfterAll,
                afterChange: options.printIRAfterChange, afterFailure: options.printIRAfterFailure, write: err))
        }
        var dumps: DumpDirectoryInstrument? = nil
        if let dir = options.dumpDirectory {
            do { dumps = try DumpDirectoryInstrument(directory: dir, input: module) } catch let e as PassError {
                throw ToolError(e.message)
            } catch {
                throw ToolError("cannot write the dump directory '\(dir)': \(errorText(error))")
            }
            manager.instruments.append(dumps!)
        }
        if options.passTiming { manager.instruments.append(TimingInstrument(write: err)) }
        if options.passStatistics { manager.instruments.append(StatisticsInstrument(write: err)) }
        try manager.run(&module)
        if let failed = dumps?.errors.first {
            throw ToolError("cannot write a dump into '\(options.dumpDirectory ?? "")': \(errorText(failed))")
        }
    }
}
