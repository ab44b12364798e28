import Testing
import NMIR
@testable import NMPasses

/// Parses and verifies NMIR text, recording an issue (and rethrowing) when it does not.
func module(_ text: String, name: String = "t.nmir") throws -> Module {
    try Parser.parseAndVerify(SourceText(name: name, text: text))
}

/// Runs one pass directly and returns the module it leaves (verified) and the statistics it
/// counted, leaving out those that stayed 0.
func apply<P: Pass>(_ pass: P.Type, _ text: String) throws -> (Module, [String: Int]) {
    var m = try module(text)
    let context = PassContext(options: P.info.defaultOptions)
    try P().run(on: &m, context: context)
    try Verifier().verify(m)
    return (m, context.statistics.filter { $0.value != 0 })
}

/// Runs a pipeline through a PassManager (verifying after each pass).
func runPipeline(_ pipeline: String, on m: inout Module, instruments: [PassInstrument] = []) throws {
    let manager = PassManager(steps: try PipelineParser().parse(pipeline))
    manager.instruments = instruments
    try manager.run(&m)
}

/// The printed ops of the first function, then its `return` line.
func bodyLines(_ m: Module, function index: Int = 0) -> [String] {
    let f = m.functions[index]
    return f.body.map { Printer().print($0) } + ["return " + f.returnValues.map(\.description).joined(separator: ", ")]
}

/// Collects what an instrument writes.
final class WrittenText {
    var chunks: [String] = []
    var all: String { chunks.joined() }
    var write: (String) -> Void { { [unowned self] in self.chunks.append($0) } }
}

/// Keeps the statistics of each pass that ran, in order.
final class StatisticsRecorder: PassInstrument {
    var rows: [(pass: String, statistics: [String: Int])] = []
    func runAfter(_ step: PipelineStep, index: Int, module: Module, changed: Bool, statistics: [String: Int], seconds: Double) {
        rows.append((step.name, statistics))
    }
}
