import ArgumentParser
import NMDriver

/// nmc-opt: textual NMIR in, passes, textual NMIR out. The logic lives in NMDriver.OptDriver.
@main
struct NMCOpt: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nmc-opt",
        abstract: "Run NMIR passes on a textual NMIR file and print the result.",
        discussion: """
        Reads NMIR from FILE (or standard input), verifies it, runs the pipeline given by --passes, \
        verifying after every pass, and prints the result to standard output or -o. Diagnostics go to \
        standard error as file:line:col: error: …; the exit status is 1 when there is one.

        Pipeline syntax: pass{option=value option=value},pass,…  for example
          --passes='canonicalize,cse,dce,infer-shapes'

        Passes and their options:
        \(RegistryListing.passes())
        """)

    @Argument(help: "NMIR file to read; '-' or nothing reads standard input.")
    var input: String = "-"

    @Option(name: .short, help: "Write the result here instead of standard output (weights go beside it).")
    var output: String?

    @Option(name: .long, help: "The pass pipeline, e.g. 'canonicalize,cse,dce'.")
    var passes: String = ""

    @Flag(name: .long, help: "Split the input at lines starting with '// -----' and process each part on its own.")
    var splitInputFile = false

    @Flag(name: .long, help: "Check diagnostics against '// expected-error@+1 {{…}}' comments instead of printing them.")
    var verifyDiagnostics = false

    @Option(name: .customLong("print-ir-before"), parsing: .singleValue, help: "Print the IR before each run of this pass (repeatable).")
    var printIRBefore: [String] = []

    @Option(name: .customLong("print-ir-after"), parsing: .singleValue, help: "Print the IR after each run of this pass (repeatable).")
    var printIRAfter: [String] = []

    @Flag(name: .customLong("print-ir-after-all"), help: "Print the IR after every pass.")
    var printIRAfterAll = false

    @Flag(name: .customLong("print-ir-after-change"), help: "Print the IR after every pass that changed it.")
    var printIRAfterChange = false

    @Flag(name: .customLong("print-ir-after-failure"), help: "Print the IR after a pass that fails.")
    var printIRAfterFailure = false

    @Option(name: .long, help: "Write numbered dumps (00-input.nmir, 01-after-PASS.nmir, …) into this directory.")
    var dumpDir: String?

    @Flag(name: .long, help: "Report the wall time of each pass.")
    var passTiming = false

    @Flag(name: .long, help: "Report the statistics each pass counts.")
    var passStatistics = false

    @Flag(name: .long, help: "List the registered ops and exit.")
    var listOps = false

    @Flag(name: .long, help: "List the registered passes with their options and exit.")
    var listPasses = false

    func run() throws {
        if listOps { print(RegistryListing.ops(), terminator: ""); return }
        if listPasses { print(RegistryListing.passes(), terminator: ""); return }
        var o = OptOptions()
        o.input = input
        o.output = output
        o.passes = passes
        o.splitInputFile = splitInputFile
        o.verifyDiagnostics = verifyDiagnostics
        o.printIRBefore = printIRBefore.flatMap { $0.split(separator: ",").map(String.init) }
        o.printIRAfter = printIRAfter.flatMap { $0.split(separator: ",").map(String.init) }
        o.printIRAfterAll = printIRAfterAll
        o.printIRAfterChange = printIRAfterChange
        o.printIRAfterFailure = printIRAfterFailure
        o.dumpDirectory = dumpDir
        o.passTiming = passTiming
        o.passStatistics = passStatistics
        let status = OptDriver(options: o).run()
        if status != 0 { throw ExitCode(status) }
    }
}
