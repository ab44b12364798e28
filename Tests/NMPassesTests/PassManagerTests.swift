import Foundation
import Testing
import NMIR
@testable import NMPasses

/// Breaks the IR on purpose: gives the first op of the first function a wrong result type and
/// leaves its uses as they were.
struct CorruptResultTypePass: Pass {
    static let info = PassInfo(name: "corrupt-result-type", summary: "test-only: gives the first op a wrong result type")
    init() {}
    func run(on module: inout Module, context: PassContext) throws {
        module.functions[0].body[0].results[0].type = .tensor(TensorType([7], .f32))
    }
}

/// Fails with a plain diagnostic at the first op.
struct DiagnosticFailPass: Pass {
    static let info = PassInfo(name: "diagnostic-fail", summary: "test-only: throws a Diagnostic")
    init() {}
    func run(on module: inout Module, context: PassContext) throws {
        throw Diagnostic(at: module.functions[0].body[0].location, "cannot handle this op")
    }
}

/// Fails with an error that is neither a Diagnostic nor a PassError.
struct OtherErrorPass: Pass {
    struct Oops: Error, CustomStringConvertible { var description: String { "oops" } }
    static let info = PassInfo(name: "other-error", summary: "test-only: throws some other error")
    init() {}
    func run(on module: inout Module, context: PassContext) throws { throw Oops() }
}

/// Counts a declared and an undeclared statistic without changing anything.
struct CountingPass: Pass {
    static let info = PassInfo(name: "counting", summary: "test-only: counts", statistics: [("seen", "ops seen")])
    init() {}
    func run(on module: inout Module, context: PassContext) throws {
        for f in module.functions { context.count("seen", by: f.body.count) }
        context.count("surprise", by: 2)
    }
}

let managerRegistry = PassRegistry(PassRegistry.standard.passes
    + [CorruptResultTypePass.self, DiagnosticFailPass.self, OtherErrorPass.self, CountingPass.self])

@Suite struct PassManagerTests {
    static let source = """
    func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
      %one = arith.constant {value = 1.0} : tensor<4xf32>
      %y = nn.mul %x, %one : tensor<4xf32>
      %a = nn.silu %y : tensor<4xf32>
      return %a
    }
    """

    /// The module after canonicalize (x · 1 removed, the constant erased); cse leaves it alone.
    static let canonicalized = """
    module {
      func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
        %a = nn.silu %x : tensor<4xf32>
        return %a
      }
    }

    """

    func manager(_ pipeline: String, _ instruments: [PassInstrument] = []) throws -> PassManager {
        let m = PassManager(steps: try PipelineParser(registry: managerRegistry).parse(pipeline))
        m.instruments = instruments
        return m
    }

    /// Runs a pipeline that must fail and returns the failure.
    func failure(_ pipeline: String, on text: String = source, _ instruments: [PassInstrument] = []) throws -> (PipelineFailure, Module)? {
        var m = try module(text)
        do {
            try manager(pipeline, instruments).run(&m)
            Issue.record("'\(pipeline)' did not fail")
            return nil
        } catch let f as PipelineFailure {
            return (f, m)
        }
    }

    // MARK: - Verification and failures

    @Test func verifierAfterEachPassCatchesBrokenIR() throws {
        guard let (f, _) = try failure("canonicalize,corrupt-result-type,cse", on: """
        func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
          %a = nn.silu %x : tensor<4xf32>
          %b = nn.add %a, %x : tensor<4xf32>
          return %b
        }
        """) else { return }
        #expect(f.pass == "corrupt-result-type")
        #expect(f.diagnostics.count == 2)
        guard f.diagnostics.count == 2 else { return }
        #expect(f.diagnostics.allSatisfy { $0.message.hasPrefix("verification failed after pass 'corrupt-result-type': ") })
        #expect(f.diagnostics.map(\.location.line) == [2, 3])
        #expect(f.diagnostics[0].message.contains("'nn.silu'") && f.diagnostics[0].message.contains("tensor<7xf32>"))
        #expect(f.diagnostics[1].message.contains("%a") && f.diagnostics[1].message.contains("tensor<7xf32>"))
        #expect(f.description.hasPrefix("t.nmir:2:3: error: verification failed after pass 'corrupt-result-type': "))
    }

    @Test func withoutVerificationTheBrokenModuleGoesThrough() throws {
        var m = try module(Self.source)
        let pm = try manager("corrupt-result-type")
        pm.verifyEachPass = false
        try pm.run(&m)
        #expect(m.functions[0].body[0].results[0].type == .tensor(TensorType([7], .f32)))
        #expect(!Verifier().diagnose(m).isEmpty)
    }

    @Test func passFailureNamesThePassTheFunctionAndTheOp() throws {
        guard let (f, m) = try failure("canonicalize,test-fail{op=nn.silu},cse", on: """
        func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
          return %x
        }
        func @g(%x: tensor<4xf32>) -> tensor<4xf32> {
          %s = nn.silu %x : tensor<4xf32>
          return %s
        }
        """) else { return }
        #expect(f.pass == "test-fail")
        #expect(f.description == "t.nmir:5:3: error: pass 'test-fail' failed: reached nn.silu in @g at 'nn.silu' (%s)")
        // The module is left as the failing pass left it.
        #expect(bodyLines(m, function: 1) == ["%failed_here = nn.silu %x : tensor<4xf32>", "return %failed_here"])
    }

    @Test func otherFailuresNameThePass() throws {
        guard let (d, _) = try failure("cse,diagnostic-fail") else { return }
        #expect(d.pass == "diagnostic-fail")
        #expect(d.description == "t.nmir:2:3: error: pass 'diagnostic-fail' failed: cannot handle this op")
        guard let (o, _) = try failure("other-error") else { return }
        #expect(o.pass == "other-error")
        #expect(o.description == "<unknown>: error: pass 'other-error' failed: oops")
    }

    @Test func passesRunInOrderWithTheirOptions() throws {
        // test-fail{op=nn.mul} stops at the mul; had canonicalize run after it, or had the
        // option been ignored (default nn.silu), the failure would name another op.
        guard let (f, _) = try failure("cse,test-fail{op=nn.mul},canonicalize") else { return }
        #expect(f.description == "t.nmir:3:3: error: pass 'test-fail' failed: reached nn.mul in @f at 'nn.mul' (%y)")
        var m = try module(Self.source)
        try manager("canonicalize,test-fail{op=nn.mul}").run(&m)
        #expect(Printer().print(m) == Self.canonicalized)
    }

    // MARK: - Printing the IR

    @Test func printBeforeAndAfterNamedPasses() throws {
        var m = try module(Self.source)
        let before = try module(Self.source)
        let out = WrittenText()
        try manager("canonicalize,cse", [PrintIRInstrument(before: ["cse", "canonicalize"], after: ["cse"], write: out.write)]).run(&m)
        #expect(out.chunks == [
            "// -----// IR Dump Before canonicalize //----- //\n" + Printer().print(before),
            "// -----// IR Dump Before cse //----- //\n" + Self.canonicalized,
            "// -----// IR Dump After cse //----- //\n" + Self.canonicalized,
        ])
    }

    @Test func printAfterAll() throws {
        var m = try module(Self.source)
        let out = WrittenText()
        try manager("canonicalize,cse,test-fail{op=nn.mul}", [PrintIRInstrument(afterAll: true, write: out.write)]).run(&m)
        #expect(out.chunks == [
            "// -----// IR Dump After canonicalize //----- //\n" + Self.canonicalized,
            "// -----// IR Dump After cse //----- //\n" + Self.canonicalized,
            "// -----// IR Dump After test-fail{op=nn.mul} //----- //\n" + Self.canonicalized,
        ])
    }

    @Test func printAfterChangeOnlyWhenThePassChangedTheModule() throws {
        var m = try module(Self.source)
        let out = WrittenText()
        try manager("cse,canonicalize,cse,canonicalize", [PrintIRInstrument(afterChange: true, write: out.write)]).run(&m)
        #expect(out.chunks == ["// -----// IR Dump After canonicalize //----- //\n" + Self.canonicalized])
    }

    @Test func printAfterFailureShowsTheModuleAsTheFailingPassLeftIt() throws {
        let out = WrittenText()
        let instrument = PrintIRInstrument(afterAll: true, afterFailure: true, write: out.write)
        guard try failure("canonicalize,test-fail{op=nn.silu}", [instrument]) != nil else { return }
        #expect(out.chunks == [
            "// -----// IR Dump After canonicalize //----- //\n" + Self.canonicalized,
            "// -----// IR Dump After test-fail Failed //----- //\n" + """
            module {
              func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
                %failed_here = nn.silu %x : tensor<4xf32>
                return %failed_here
              }
            }

            """,
        ])
    }

    @Test func noFailureDumpUnlessAsked() throws {
        let out = WrittenText()
        guard try failure("test-fail{op=nn.mul}", [PrintIRInstrument(after: ["test-fail"], write: out.write)]) != nil else { return }
        #expect(out.chunks.isEmpty)
    }

    @Test func printedModulesElideLargeWeights() throws {
        let values = (0..<300).map { String(Double($0)) }.joined(separator: ", ")
        var m = try module("""
        module {
          weights {
            @big : tensor<300xf32> = dense<[\(values)]>
            @small : tensor<2xf32> = dense<[1.0, 2.0]>
          }
          func @f() -> (tensor<300xf32>, tensor<2xf32>) {
            %b = nn.weight {name = @big} : tensor<300xf32>
            %s = nn.weight {name = @small} : tensor<2xf32>
            return %b, %s
          }
        }
        """)
        let out = WrittenText()
        try manager("dce", [PrintIRInstrument(after: ["dce"], write: out.write)]).run(&m)
        #expect(out.all.contains("@big : tensor<300xf32> = elided\n"))
        #expect(out.all.contains("@small : tensor<2xf32> = dense<[1.0, 2.0]>\n"))
    }

    // MARK: - Dump directory

    func withTemporaryDirectory(_ body: (String) throws -> Void) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nmc-test-" + UUID().uuidString).path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try body(dir)
    }

    func contents(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
    }

    @Test func dumpDirectoryWritesNumberedFiles() throws {
        try withTemporaryDirectory { root in
            let dir = root + "/dumps/nested"
            var m = try module(Self.source)
            let input = Printer(elideWeightsLargerThan: 1024).print(m)
            let dump = try DumpDirectoryInstrument(directory: dir, input: m)
            try manager("canonicalize,cse", [dump]).run(&m)
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
                    == ["00-input.nmir", "01-after-canonicalize.nmir", "02-after-cse.nmir"])
            #expect(contents(dir + "/00-input.nmir") == input)
            #expect(contents(dir + "/01-after-canonicalize.nmir") == Self.canonicalized)
            #expect(contents(dir + "/02-after-cse.nmir") == Self.canonicalized)
            #expect(dump.errors.isEmpty)
        }
    }

    @Test func dumpDirectoryWritesTheFailedPass() throws {
        try withTemporaryDirectory { dir in
            let m = try module(Self.source)
            let dump = try DumpDirectoryInstrument(directory: dir, input: m)
            guard try failure("canonicalize,test-fail{op=nn.silu},dce", [dump]) != nil else { return }
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
                    == ["00-input.nmir", "01-after-canonicalize.nmir", "02-failed-test-fail.nmir"])
            let failed = contents(dir + "/02-failed-test-fail.nmir") ?? ""
            #expect(failed.contains("%failed_here = nn.silu %x : tensor<4xf32>"))
            #expect(try Parser.parseAndVerify(SourceText(name: "failed", text: failed)).functions[0].body.count == 1)
        }
    }

    @Test func dumpDirectoryNumbersPastTen() throws {
        try withTemporaryDirectory { dir in
            var m = try module(Self.source)
            let dump = try DumpDirectoryInstrument(directory: dir, input: m)
            try manager(Array(repeating: "dce", count: 11).joined(separator: ","), [dump]).run(&m)
            let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
            #expect(files == ["00-input.nmir"] + (1...11).map { ($0 < 10 ? "0\($0)" : "\($0)") + "-after-dce.nmir" })
            #expect(files.last == "11-after-dce.nmir")
        }
    }

    // MARK: - Timing and statistics

    @Test func timingReportHasOneRowPerPass() throws {
        var m = try module(Self.source)
        let out = WrittenText()
        try manager("canonicalize,cse,dce,cse", [TimingInstrument(write: out.write)]).run(&m)
        #expect(out.chunks.count == 1)
        let lines = out.all.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.count == 8, "\(lines)")
        guard lines.count == 8 else { return }
        #expect(lines[0] == "===- Pass execution timing report -===")
        let total = #/  Total: \d+\.\d{3} ms/#
        #expect(lines[1].wholeMatch(of: total) != nil, "\(lines[1])")
        #expect(lines[2] == "  wall time   share  pass")
        #expect(lines[7] == "")
        let row = #/\s+(\d+\.\d{3}) ms\s+(\d+\.\d)%  (\S+)/#
        let rows = lines[3..<7].compactMap { $0.wholeMatch(of: row) }
        #expect(rows.map { String($0.output.3) } == ["canonicalize", "cse", "dce", "cse"])
        let shares = rows.compactMap { Double($0.output.2) }.reduce(0, +)
        #expect(shares == 0 || abs(shares - 100) < 0.5, "shares add up to \(shares)")
    }

    @Test func timingReportIsWrittenOnFailureWithThePassesThatRan() throws {
        let out = WrittenText()
        guard try failure("canonicalize,test-fail,cse", [TimingInstrument(write: out.write)]) != nil else { return }
        #expect(out.chunks.count == 1)
        #expect(out.all.hasSuffix("  canonicalize\n"))
        #expect(out.all.split(separator: "\n").count == 4)
    }

    func statisticsRow(_ value: Int, _ name: String, _ help: String?) -> String {
        let v = String(value)
        return "  " + String(repeating: " ", count: 8 - v.count) + v + " " + name + (help.map { " - " + $0 } ?? "") + "\n"
    }

    @Test func statisticsReportHasEveryDeclaredStatistic() throws {
        var m = try module("""
        module {
          weights {
            @w : tensor<4xf32> = dense<[1.0, 2.0, 3.0, 4.0]>
          }
          func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
            %one = arith.constant {value = 1.0} : tensor<4xf32>
            %y = nn.mul %x, %one : tensor<4xf32>
            %a = nn.silu %y : tensor<4xf32>
            %b = nn.silu %x : tensor<4xf32>
            %c = nn.add %a, %b : tensor<4xf32>
            return %c
          }
        }
        """)
        let out = WrittenText()
        try manager("canonicalize,cse,dce,counting", [StatisticsInstrument(write: out.write)]).run(&m)
        #expect(out.chunks.count == 1)
        #expect(out.all == "===- Pass statistics report -===\n"
                + "'canonicalize'\n"
                + statisticsRow(0, "folded", "ops folded into constants")
                + statisticsRow(1, "identities", "identity ops removed")
                + statisticsRow(0, "merged-reshapes", "reshape chains merged")
                + statisticsRow(1, "erased", "dead ops erased")
                + "'cse'\n"
                + statisticsRow(1, "eliminated", "ops replaced by an earlier identical op")
                + "'dce'\n"
                + statisticsRow(0, "erased-ops", "dead ops erased")
                + statisticsRow(1, "erased-weights", "unreferenced weights removed from the store")
                + "'counting'\n"
                + statisticsRow(2, "seen", "ops seen")
                + statisticsRow(2, "surprise", nil))
        #expect(bodyLines(m) == ["%a = nn.silu %x : tensor<4xf32>", "%c = nn.add %a, %a : tensor<4xf32>", "return %c"])
    }

    @Test func instrumentsSeeEveryPassInOrder() throws {
        var m = try module(Self.source)
        let recorder = StatisticsRecorder()
        try manager("cse,canonicalize,dce,dce", [recorder]).run(&m)
        #expect(recorder.rows.map(\.pass) == ["cse", "canonicalize", "dce", "dce"])
        #expect(recorder.rows.dropFirst().first?.statistics == ["identities": 1, "erased": 1])
    }
}
