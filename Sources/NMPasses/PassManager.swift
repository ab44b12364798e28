#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NMIR

/// Hooks around each pass: printing, dumps, timing, statistics.
public protocol PassInstrument: AnyObject {
    func runBefore(_ step: PipelineStep, index: Int, module: Module)
    func runAfter(_ step: PipelineStep, index: Int, module: Module, changed: Bool, statistics: [String: Int], seconds: Double)
    func runAfterFailure(_ step: PipelineStep, index: Int, module: Module, error: Error)
    /// Called once the pipeline ends, successfully or not.
    func finish()
}

extension PassInstrument {
    public func runBefore(_ step: PipelineStep, index: Int, module: Module) {}
    public func runAfter(_ step: PipelineStep, index: Int, module: Module, changed: Bool, statistics: [String: Int], seconds: Double) {}
    public func runAfterFailure(_ step: PipelineStep, index: Int, module: Module, error: Error) {}
    public func finish() {}
}

/// The error a pipeline ends with: which pass, and why.
public struct PipelineFailure: Error, CustomStringConvertible {
    public var pass: String
    public var diagnostics: [Diagnostic]

    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// Runs a pipeline: each pass, then the verifier, with the instruments around them.
public final class PassManager {
    public var steps: [PipelineStep]
    public var instruments: [PassInstrument] = []
    public var verifyEachPass = true
    public var verifier = Verifier()
    /// Handed to every pass (see `PassContext.environment`).
    public var environment: [String: String] = [:]
    /// Receives each pass's warnings (prefixed with the pass's name) once it has run.
    public var onWarning: (Diagnostic) -> Void = { _ in }

    public init(steps: [PipelineStep]) { self.steps = steps }

    public func run(_ module: inout Module) throws {
        defer { for i in instruments { i.finish() } }
        for (index, step) in steps.enumerated() {
            for i in instruments { i.runBefore(step, index: index, module: module) }
            let before = module
            let context = PassContext(options: step.options, environment: environment)
            let clock = ContinuousClock()
            let start = clock.now
            do {
                try step.pass.init().run(on: &module, context: context)
                if verifyEachPass { try verifier.verify(module) }
            } catch {
                for i in instruments { i.runAfterFailure(step, index: index, module: module, error: error) }
                throw failure(of: step, error)
            }
            for var warning in context.warnings {
                warning.message = "pass '\(step.name)': " + warning.message
                onWarning(warning)
            }
            let elapsed = clock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            for i in instruments {
                i.runAfter(step, index: index, module: module, changed: module != before,
                           statistics: context.statistics, seconds: seconds)
            }
        }
    }

    private func failure(of step: PipelineStep, _ error: Error) -> PipelineFailure {
        let prefix = "pass '\(step.name)'"
        switch error {
        case let list as DiagnosticList:
            let ds = list.diagnostics.map { d -> Diagnostic in
                var d = d
                d.message = "verification failed after \(prefix): " + d.message
                return d
            }
            return PipelineFailure(pass: step.name, diagnostics: ds)
        case let e as PassError:
            return PipelineFailure(pass: step.name, diagnostics: [
                Diagnostic(at: e.op?.location ?? .unknown, "\(prefix) failed: \(e)"),
            ])
        case let d as Diagnostic:
            var d = d
            d.message = "\(prefix) failed: " + d.message
            return PipelineFailure(pass: step.name, diagnostics: [d])
        default:
            return PipelineFailure(pass: step.name, diagnostics: [Diagnostic(at: .unknown, "\(prefix) failed: \(error)")])
        }
    }
}
