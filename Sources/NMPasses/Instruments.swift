#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NMIR

/// `--print-ir-before=P`, `--print-ir-after=P`, `--print-ir-after-all`, `--print-ir-after-change`,
/// `--print-ir-after-failure`: writes the module with a header line naming the pass.
public final class PrintIRInstrument: PassInstrument {
    public var before: Set<String>
    public var after: Set<String>
    public var afterAll: Bool
    public var afterChange: Bool
    public var afterFailure: Bool
    private let printer: Printer
    private let write: (String) -> Void

    public init(before: Set<String> = [], after: Set<String> = [], afterAll: Bool = false, afterChange: Bool = false,
                afterFailure: Bool = false, printer: Printer = Printer(elideWeightsLargerThan: 1024),
                write: @escaping (String) -> Void) {
        self.before = before
        self.after = after
        self.afterAll = afterAll
        self.afterChange = afterChange
        self.afterFailure = afterFailure
        self.printer = printer
        self.write = write
    }

    public func runBefore(_ step: PipelineStep, index: Int, module: Module) {
        if before.contains(step.name) { write("// -----// IR Dump Before \(step.description) //----- //\n" + printer.print(module)) }
    }

    public func runAfter(_ step: PipelineStep, index: Int, module: Module, changed: Bool, statistics: [String: Int], seconds: Double) {
        if afterAll || after.contains(step.name) || (afterChange && changed) {
            write("// -----// IR Dump After \(step.description) //----- //\n" + printer.print(module))
        }
    }

    public func runAfterFailure(_ step: PipelineStep, index: Int, module: Module, error: Error) {
        if afterFailure { write("// -----// IR Dump After \(step.description) Failed //----- //\n" + printer.print(module)) }
    }
}

/// `--dump-dir DIR`: `00-input.nmir`, then `NN-after-PASS.nmir` for each pass (`NN-failed-PASS.nmir` for
/// one that fails), each written atomically. Weights larger than 1 KiB print as `elided`.
public final class DumpDirectoryInstrument: PassInstrument {
    public let directory: String
    private let printer = Printer(elideWeightsLargerThan: 1024)
    public private(set) var errors: [Error] = []

    public init(directory: String, input: Module) throws {
        self.directory = directory
        if FileManager.default.fileExists(atPath: directory), (try? FileManager.default.contentsOfDirectory(atPath: directory)) == nil {
            throw PassError("--dump-dir '\(directory)' exists and is not a directory")
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw PassError("cannot create the dump directory '\(directory)'")
        }
        try AtomicFile.write(printer.print(input), to: path(index: 0, label: "input"))
    }

    private func path(index: Int, label: String) -> String {
        let number = index < 10 ? "0\(index)" : "\(index)"
        return directory + "/" + number + "-" + label + ".nmir"
    }

    private func dump(_ module: Module, index: Int, label: String) {
        do { try AtomicFile.write(printer.print(module), to: path(index: index, label: label)) } catch { errors.append(error) }
    }

    public func runAfter(_ step: PipelineStep, index: Int, module: Module, changed: Bool, statistics: [String: Int], seconds: Double) {
        dump(module, index: index + 1, label: "after-" + step.name)
    }

    public func runAfterFailure(_ step: PipelineStep, index: Int, module: Module, error: Error) {
        dump(module, index: index + 1, label: "failed-" + step.name)
    }
}

/// `--pass-timing`: wall time of each pass and the total, as a table.
public final class TimingInstrument: PassInstrument {
    private var rows: [(String, Double)] = []
    private let write: (String) -> Void

    public init(write: @escaping (String) -> Void) { self.write = write }

    public func runAfter(_ step: PipelineStep, index: Int, module: Module, changed: Bool, statistics: [String: Int], seconds: Double) {
        rows.append((step.name, seconds))
    }

    public func finish() {
        let total = rows.reduce(0) { $0 + $1.1 }
        var out = "===- Pass execution timing report -===\n"
        out += "  Total: \(formatMilliseconds(total))\n"
        out += "  wall time   share  pass\n"
        for (name, s) in rows {
            let share = total > 0 ? s / total * 100 : 0
            out += "  " + pad(formatMilliseconds(s), 10) + "  " + pad(String(format1(share)) + "%", 6) + "  " + name + "\n"
        }
        write(out)
    }

    private func formatMilliseconds(_ s: Double) -> String { format1(s * 1000, digits: 3) + " ms" }
}

/// `--pass-statistics`: every statistic each pass declares, with its value.
public final class StatisticsInstrument: PassInstrument {
    private var rows: [(PipelineStep, [String: Int])] = []
    private let write: (String) -> Void

    public init(write: @escaping (String) -> Void) { self.write = write }

    public func runAfter(_ step: PipelineStep, index: Int, module: Module, changed: Bool, statistics: [String: Int], seconds: Double) {
        rows.append((step, statistics))
    }

    public func finish() {
        var out = "===- Pass statistics report -===\n"
        for (step, stats) in rows {
            out += "'\(step.name)'\n"
            let declared = step.pass.info.statistics
            for (name, help) in declared {
                out += "  " + pad(String(stats[name] ?? 0), 8) + " " + name + " - " + help + "\n"
            }
            for name in stats.keys.sorted() where !declared.contains(where: { $0.name == name }) {
                out += "  " + pad(String(stats[name] ?? 0), 8) + " " + name + "\n"
            }
        }
        write(out)
    }
}

/// Right-aligns text in a column.
func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
}

/// A number with a fixed count of decimals, without Foundation's `String(format:)`.
func format1(_ v: Double, digits: Int = 1) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let r = (v * scale).rounded() / scale
    var s = "\(r)"
    if s.contains("e") { return s }
    let parts = s.split(separator: ".", omittingEmptySubsequences: false)
    let frac = parts.count > 1 ? String(parts[1]) : ""
    s = String(parts[0]) + "." + frac + String(repeating: "0", count: max(0, digits - frac.count))
    return s
}
