import Foundation
import Testing
import NMIR
import NMPasses
@testable import NMDriver

/// What one `nmc-opt` run returned and printed.
struct OptRun {
    var status: Int32
    var out: String
    var err: String
}

func runOpt(_ configure: (inout OptOptions) -> Void) -> OptRun {
    var options = OptOptions()
    configure(&options)
    let (console, out, err) = Console.capturing()
    let status = OptDriver(options: options, console: console).run()
    return OptRun(status: status, out: out(), err: err())
}

/// A fresh directory under the system's temporary directory, removed afterwards.
func withTemporaryDirectory(_ body: (String) throws -> Void) throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nmc-opt-test-" + UUID().uuidString).path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try body(dir)
}

func write(_ text: String, to path: String) throws {
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
}

func read(_ path: String) -> String? {
    FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
}

func listing(_ dir: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
}

@Suite struct OptDriverTests {
    static let source = """
    // x · 1 and a dead op for the cleanup passes
    func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
      %one = arith.constant {value = 1.0} : tensor<4xf32>
      %y = nn.mul %x, %one : tensor<4xf32>
      %dead = nn.silu %x : tensor<4xf32>
      return %y
    }
    """

    static let canonicalized = """
    module {
      func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
        return %x
      }
    }

    """

    // MARK: - Running

    @Test func cleanRunPrintsTheModule() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/in.nmir"
            try write(Self.source, to: path)
            let r = runOpt { $0.input = path }
            #expect(r.status == 0)
            #expect(r.err == "")
            #expect(r.out == Printer().print(try Parser.parse(Self.source)))
            #expect(r.out.hasPrefix("module {\n  func @f(%x: tensor<4xf32>) -> tensor<4xf32> {\n    %one = arith.constant"))

            let c = runOpt { $0.input = path; $0.passes = "canonicalize,cse,dce" }
            #expect(c.status == 0)
            #expect(c.err == "")
            #expect(c.out == Self.canonicalized)
        }
    }

    @Test func parseErrorShowsFileLineColumnSourceLineAndCaret() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/bad.nmir"
            try write("""
            func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
              %a = nn.silu %nope : tensor<4xf32>
              return %a
            }
            """, to: path)
            let r = runOpt { $0.input = path; $0.passes = "canonicalize" }
            #expect(r.status == 1)
            #expect(r.out == "")
            #expect(r.err == "\(path):2:16: error: use of undefined value %nope\n"
                    + "  %a = nn.silu %nope : tensor<4xf32>\n"
                    + "               ^\n")
        }
    }

    @Test func passFailureIsReportedAtTheOp() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/in.nmir"
            try write(Self.source, to: path)
            let r = runOpt { $0.input = path; $0.passes = "test-fail{op=nn.mul}" }
            #expect(r.status == 1)
            #expect(r.out == "")
            #expect(r.err == "\(path):4:3: error: pass 'test-fail' failed: reached nn.mul in @f at 'nn.mul' (%y)\n"
                    + "  %y = nn.mul %x, %one : tensor<4xf32>\n"
                    + "  ^\n")
        }
    }

    @Test func missingInputFile() {
        let r = runOpt { $0.input = "/nonexistent/dir/in.nmir" }
        #expect(r.status == 1)
        #expect(r.err == "nmc-opt: error: cannot read '/nonexistent/dir/in.nmir': no such file\n")
    }

    // MARK: - --split-input-file

    static let chunks = """
    func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
      return %x
    }
    // -----
    func @g(%x: tensor<4xf32>) -> tensor<4xf32> {
      %a = nn.silu %nope : tensor<4xf32>
      return %a
    }
    // -----
    func @h(%x: tensor<2xf32>) -> tensor<2xf32> {
      %one = arith.constant {value = 1.0} : tensor<2xf32>
      %y = nn.mul %x, %one : tensor<2xf32>
      return %y
    }
    """

    @Test func splitInputFileProcessesEachChunkWithOriginalLineNumbers() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/split.nmir"
            try write(Self.chunks, to: path)
            let r = runOpt { $0.input = path; $0.passes = "canonicalize"; $0.splitInputFile = true }
            #expect(r.status == 1)
            #expect(r.err == "\(path):6:16: error: use of undefined value %nope\n"
                    + "  %a = nn.silu %nope : tensor<4xf32>\n"
                    + "               ^\n")
            #expect(r.out == """
            module {
              func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
                return %x
              }
            }
            // -----
            module {
              func @h(%x: tensor<2xf32>) -> tensor<2xf32> {
                return %x
              }
            }

            """)
        }
    }

    @Test func withoutSplittingTheMarkersAreComments() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/split.nmir"
            try write(Self.chunks, to: path)
            let r = runOpt { $0.input = path }
            // One module: the first error is the only one, at the same line.
            #expect(r.status == 1)
            #expect(r.out == "")
            #expect(r.err.hasPrefix("\(path):6:16: error: use of undefined value %nope\n"))
        }
    }

    @Test func outputFileCannotBeCombinedWithSplitting() throws {
        let r = runOpt { $0.input = "x.nmir"; $0.output = "y.nmir"; $0.splitInputFile = true }
        #expect(r.status == 1)
        #expect(r.err == "nmc-opt: error: -o cannot be combined with --split-input-file; the chunks print to standard output\n")
    }

    // MARK: - --verify-diagnostics

    static let expectations = """
    func @next(%x: tensor<4xf32>) -> tensor<4xf32> {
      // expected-error@+1 {{use of undefined value %nope}}
      %a = nn.silu %nope : tensor<4xf32>
      return %a
    }
    // -----
    func @previous(%x: tensor<4xf32>) -> tensor<4xf32> {
      %a = nn.silu %nope : tensor<4xf32>
      // expected-error@-1 {{undefined value}}
      return %a
    }
    // -----
    func @same(%x: tensor<4xf32>) -> tensor<4xf32> {
      %a = nn.silu %nope : tensor<4xf32> // expected-error {{%nope}}
      return %a
    }
    // -----
    func @below(%x: tensor<4xf32>) -> tensor<4xf32> {
      // expected-error@below {{unknown operation 'nn.bogus'}}
      %a = nn.bogus %x : tensor<4xf32>
      return %a
    }
    // -----
    func @above(%x: tensor<4xf32>) -> tensor<4xf32> {
      %a = nn.bogus %x : tensor<4xf32>
      // expected-error@above {{unknown operation}}
      return %a
    }
    // -----
    func @further(%x: tensor<4xf32>) -> tensor<4xf32> {
      // expected-error@+3 {{undefined value %later}}

      // (a comment line)
      %a = nn.silu %later : tensor<4xf32>
      return %a
    }
    // -----
    func @withnote(%x: tensor<4xf32>) -> tensor<4xf32> {
      %a = nn.silu %x : tensor<4xf32> // expected-note {{previously defined here}}
      %a = nn.silu %x : tensor<4xf32> // expected-error {{redefinition of value %a}}
      return %a
    }
    // -----
    func @passfails(%x: tensor<4xf32>) -> tensor<4xf32> {
      %a = nn.mul %x, %x : tensor<4xf32> // expected-error {{pass 'test-fail' failed: reached nn.mul in @passfails}}
      return %a
    }
    // -----
    func @clean(%x: tensor<4xf32>) -> tensor<4xf32> {
      return %x
    }
    """

    @Test func verifyDiagnosticsSucceedsWhenExpectationsMatch() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/expect.nmir"
            try write(Self.expectations, to: path)
            let r = runOpt { $0.input = path; $0.passes = "test-fail{op=nn.mul}"; $0.splitInputFile = true; $0.verifyDiagnostics = true }
            #expect(r.err == "")
            #expect(r.status == 0)
            // Only the chunk that had no error prints.
            #expect(r.out == "module {\n  func @clean(%x: tensor<4xf32>) -> tensor<4xf32> {\n    return %x\n  }\n}\n")
        }
    }

    @Test func verifyDiagnosticsFailsOnAMissingOrUnexpectedError() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/expect.nmir"
            try write("""
            func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
              // expected-error@+2 {{use of undefined value %nope}}
              %a = nn.silu %nope : tensor<4xf32>
              return %a
            }
            // -----
            func @g(%x: tensor<4xf32>) -> tensor<4xf32> {
              // expected-error@+1 {{something else}}
              %a = nn.silu %x : tensor<4xf32>
              return %a
            }
            """, to: path)
            let r = runOpt { $0.input = path; $0.splitInputFile = true; $0.verifyDiagnostics = true }
            #expect(r.status == 1)
            #expect(r.err == "\(path):3:16: error: unexpected error: use of undefined value %nope\n"
                    + "  %a = nn.silu %nope : tensor<4xf32>\n"
                    + "               ^\n"
                    + "\(path):2:6: error: expected error \"use of undefined value %nope\" on line 4 was not produced\n"
                    + "  // expected-error@+2 {{use of undefined value %nope}}\n"
                    + "     ^\n"
                    + "\(path):8:6: error: expected error \"something else\" on line 9 was not produced\n"
                    + "  // expected-error@+1 {{something else}}\n"
                    + "     ^\n")
            // The chunk without an error still prints.
            #expect(r.out.contains("func @g("))
        }
    }

    @Test func verifyDiagnosticsRequiresTheExpectedSeverityAndText() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/expect.nmir"
            try write("""
            func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
              %a = nn.silu %nope : tensor<4xf32> // expected-warning {{use of undefined value}}
              return %a
            }
            """, to: path)
            let r = runOpt { $0.input = path; $0.verifyDiagnostics = true }
            #expect(r.status == 1)
            #expect(r.err.contains("\(path):2:16: error: unexpected error: use of undefined value %nope\n"))
            #expect(r.err.contains("error: expected warning \"use of undefined value\" on line 2 was not produced\n"))
        }
    }

    @Test func expectationColumnsCountBytes() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/expect.nmir"
            try write("""
            func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
              return %x // ü expected-error {{never}}
            }
            """, to: path)
            let r = runOpt { $0.input = path; $0.verifyDiagnostics = true }
            #expect(r.status == 1)
            // "ü" is two bytes: 'e' is at column 19 of the line (17 characters before it), and the caret goes under it.
            #expect(r.err == "\(path):2:19: error: expected error \"never\" on line 2 was not produced\n"
                    + "  return %x // ü expected-error {{never}}\n"
                    + String(repeating: " ", count: 17) + "^\n")
        }
    }

    @Test func malformedExpectationIsAnError() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/expect.nmir"
            try write("func @f() {\n  return // expected-error@x {{nothing}}\n}\n", to: path)
            let r = runOpt { $0.input = path; $0.verifyDiagnostics = true }
            #expect(r.status == 1)
            #expect(r.err == "\(path):2:13: error: expected '+N', '-N', 'above' or 'below' after '@'\n"
                    + "  return // expected-error@x {{nothing}}\n"
                    + "            ^\n")
        }
    }

    // MARK: - Writing with -o

    @Test func outputFileIsWrittenAtomically() throws {
        try withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(atPath: dir + "/in", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: dir + "/out", withIntermediateDirectories: true)
            try write(Self.source, to: dir + "/in/a.nmir")
            // An older file at the destination is replaced.
            try write("stale", to: dir + "/out/b.nmir")
            let r = runOpt { $0.input = dir + "/in/a.nmir"; $0.output = dir + "/out/b.nmir"; $0.passes = "canonicalize" }
            #expect(r.status == 0)
            #expect(r.out == "")
            #expect(r.err == "")
            #expect(try listing(dir + "/out") == ["b.nmir"])
            #expect(read(dir + "/out/b.nmir") == Self.canonicalized)
        }
    }

    static func bigModule(values: [Double]) -> String {
        """
        module @big {
          weights {
            @big : tensor<300xf32> = dense<[\(values.map { formatFloat($0) }.joined(separator: ", "))]>
            @small : tensor<2xf32> = dense<[1.5, -2.0]>
          }
          func @f(%x: tensor<300xf32>) -> (tensor<300xf32>, tensor<2xf32>) {
            %b = nn.weight {name = @big} : tensor<300xf32>
            %s = nn.weight {name = @small} : tensor<2xf32>
            %y = nn.add %x, %b : tensor<300xf32>
            return %y, %s
          }
        }
        """
    }

    @Test func largeWeightsGoToASafetensorsFileBesideTheOutput() throws {
        let values = (0..<300).map { Double($0) * 0.5 - 40 }
        try withTemporaryDirectory { dir in
            let input = dir + "/in.nmir"
            try write(Self.bigModule(values: values), to: input)
            try FileManager.default.createDirectory(atPath: dir + "/out", withIntermediateDirectories: true)
            let output = dir + "/out/model.nmir"
            let r = runOpt { $0.input = input; $0.output = output; $0.passes = "canonicalize,cse,dce" }
            #expect(r.status == 0, "\(r.err)")
            #expect(try listing(dir + "/out") == ["model.nmir", "model.safetensors"])

            // The large weight is in the safetensors file with the bytes of its values; the small one stays inline.
            let contents = try Safetensors.read(path: dir + "/out/model.safetensors")
            #expect(contents.tensors.map(\.name) == ["big"])
            let info = try #require(contents.info("big"))
            #expect(info.dtype == "F32")
            #expect(info.shape == [300])
            #expect(Array(contents.bytes(of: info)) == WeightEncoding.encode(values, as: .f32))
            let text = try #require(read(output))
            #expect(text.contains("  weights \"model.safetensors\" {\n    @big : tensor<300xf32>\n    @small : tensor<2xf32> = dense<[1.5, -2.0]>\n  }\n"))

            // Reading it back gives the module that was written, weights included.
            var reread = try Parser.parseAndVerify(SourceText(name: output, text: text))
            #expect(reread.weights["big"]?.data == .external)
            var big = try #require(reread.weights["big"])
            big.data = .values(WeightEncoding.decode(contents.bytes(of: info), as: .f32, count: 300))
            reread.weights["big"] = big
            reread.weights.file = nil
            #expect(reread == (try Parser.parseAndVerify(SourceText(name: input, text: Self.bigModule(values: values)))))

            // And through nmc-opt again: it reads the weights file, prints the same text, and
            // writes an equal module with its own copy of the weights elsewhere.
            let again = runOpt { $0.input = output }
            #expect(again.status == 0, "\(again.err)")
            #expect(again.out == text)
            try FileManager.default.createDirectory(atPath: dir + "/again", withIntermediateDirectories: true)
            let copy = runOpt { $0.input = output; $0.output = dir + "/again/model.nmir" }
            #expect(copy.status == 0, "\(copy.err)")
            #expect(try listing(dir + "/again") == ["model.nmir", "model.safetensors"])
            #expect(read(dir + "/again/model.nmir") == text)
            #expect(FileManager.default.contents(atPath: dir + "/again/model.safetensors")
                    == FileManager.default.contents(atPath: dir + "/out/model.safetensors"))
        }
    }

    @Test func smallWeightsStayInline() throws {
        try withTemporaryDirectory { dir in
            let input = dir + "/in.nmir"
            try write("""
            module {
              weights {
                @w : tensor<256xf32> = dense<[\(Array(repeating: "1.0", count: 256).joined(separator: ", "))]>
              }
              func @f() -> tensor<256xf32> {
                %w = nn.weight {name = @w} : tensor<256xf32>
                return %w
              }
            }
            """, to: input)
            let r = runOpt { $0.input = input; $0.output = dir + "/out.nmir" }
            #expect(r.status == 0, "\(r.err)")
            // 256 f32 values are exactly 1 KiB: not more than the limit.
            #expect(try listing(dir) == ["in.nmir", "out.nmir"])
            #expect(read(dir + "/out.nmir")?.contains("@w : tensor<256xf32> = dense<[1.0, ") == true)
        }
    }

    @Test func missingWeightInTheWeightsFileIsNamed() throws {
        try withTemporaryDirectory { dir in
            try Safetensors.write(path: dir + "/w.safetensors", tensors: [
                (name: "present", dtype: "F32", shape: [4], bytes: WeightEncoding.encode([1, 2, 3, 4], as: .f32)),
            ])
            let path = dir + "/m.nmir"
            try write("""
            module {
              weights "w.safetensors" {
                @present : tensor<4xf32>
                @absent : tensor<2xf32>
              }
              func @f() -> tensor<2xf32> {
                %a = nn.weight {name = @absent} : tensor<2xf32>
                return %a
              }
            }
            """, to: path)
            let r = runOpt { $0.input = path }
            #expect(r.status == 1)
            #expect(r.out == "")
            #expect(r.err == "\(path):4:5: error: weight @absent is not in '\(dir)/w.safetensors'\n"
                    + "    @absent : tensor<2xf32>\n"
                    + "    ^\n")
        }
    }

    @Test func weightOfTheWrongShapeInTheWeightsFile() throws {
        try withTemporaryDirectory { dir in
            try Safetensors.write(path: dir + "/w.safetensors", tensors: [
                (name: "w", dtype: "F32", shape: [4], bytes: WeightEncoding.encode([1, 2, 3, 4], as: .f32)),
            ])
            let path = dir + "/m.nmir"
            try write("module {\n  weights \"w.safetensors\" {\n    @w : tensor<2x2xf32>\n  }\n}\n", to: path)
            let r = runOpt { $0.input = path }
            #expect(r.status == 1)
            #expect(r.err.hasPrefix("\(path):3:5: error: weight @w is F32 [4] in '\(dir)/w.safetensors', but the text declares tensor<2x2xf32>\n"))
        }
    }

    // MARK: - Pipelines and instruments

    @Test func badPipelineTextPointsAtTheColumn() {
        let r = runOpt { $0.input = "/does/not/matter.nmir"; $0.passes = "canonicalize,bogus{x=1}" }
        #expect(r.status == 1)
        #expect(r.out == "")
        #expect(r.err == "--passes:1:14: error: unknown pass 'bogus' (known passes: \(DriverPasses.registry.names.joined(separator: ", ")))\n"
                + "canonicalize,bogus{x=1}\n"
                + "             ^\n")

        let option = runOpt { $0.passes = "cse,test-fail{op}" }
        #expect(option.status == 1)
        #expect(option.err == "--passes:1:17: error: expected '=' after option 'op'\ncse,test-fail{op}\n                ^\n")
    }

    @Test func caretOfAPipelineErrorAfterNonASCIIText() {
        let r = runOpt { $0.passes = #"test-fail{op="é"},bogus"# }
        #expect(r.status == 1)
        #expect(r.err.hasPrefix("--passes:1:20: error: unknown pass 'bogus'"))
        #expect(r.err.hasSuffix("\n" + #"test-fail{op="é"},bogus"# + "\n" + String(repeating: " ", count: 18) + "^\n"))
    }

    @Test func unknownPassToPrintAround() {
        let r = runOpt { $0.passes = "cse"; $0.printIRAfter = ["cse", "nope"] }
        #expect(r.status == 1)
        #expect(r.err == "nmc-opt: error: unknown pass 'nope' in --print-ir-before/--print-ir-after (known passes: \(DriverPasses.registry.names.joined(separator: ", ")))\n")
    }

    @Test func instrumentsWriteToStandardError() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/in.nmir"
            try write(Self.source, to: path)
            let r = runOpt {
                $0.input = path
                $0.passes = "canonicalize,cse"
                $0.printIRAfter = ["canonicalize"]
                $0.passStatistics = true
                $0.dumpDirectory = dir + "/dump"
            }
            #expect(r.status == 0)
            #expect(r.out == Self.canonicalized)
            #expect(r.err.hasPrefix("// -----// IR Dump After canonicalize //----- //\n" + Self.canonicalized + "===- Pass statistics report -===\n'canonicalize'\n"))
            #expect(try listing(dir + "/dump") == ["00-input.nmir", "01-after-canonicalize.nmir", "02-after-cse.nmir"])
        }
    }

    @Test func printIRAfterFailureThroughTheDriver() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/in.nmir"
            try write(Self.source, to: path)
            let r = runOpt { $0.input = path; $0.passes = "test-fail{op=nn.mul}"; $0.printIRAfterFailure = true }
            #expect(r.status == 1)
            #expect(r.err.hasPrefix("// -----// IR Dump After test-fail{op=nn.mul} Failed //----- //\nmodule {\n"))
            #expect(r.err.contains("    %failed_here = nn.mul %x, %one : tensor<4xf32>\n"))
            #expect(r.err.hasSuffix("\(path):4:3: error: pass 'test-fail' failed: reached nn.mul in @f at 'nn.mul' (%y)\n  %y = nn.mul %x, %one : tensor<4xf32>\n  ^\n"))
        }
    }
}

/// A pass with a choice option, to see how the listing shows one.
struct ListedPass: Pass {
    static let info = PassInfo(
        name: "listed", summary: "test-only",
        options: [PassOptionSpec("method", .string, default: .string("a"), choices: ["a", "b"], "how"),
                  PassOptionSpec("label", .string, default: .string(""), "a label"),
                  PassOptionSpec("nm", .pattern, default: .pattern(NMPattern(n: 2, m: 4)!), "pattern")],
        statistics: [("things", "things done")])
    init() {}
    func run(on module: inout Module, context: PassContext) throws {}
}

@Suite struct RegistryListingTests {
    @Test func opsListingNamesEveryRegisteredOp() {
        let text = RegistryListing.ops()
        let registry = OpRegistry.standard
        #expect(registry.definitions.count >= 20)
        for def in registry.definitions {
            #expect(text.contains("\n  \(def.name) - \(def.summary)\n"), "\(def.name) is missing")
        }
        for dialect in registry.dialects {
            #expect(text.contains("\(dialect) dialect:\n"))
        }
        let opLines = text.split(separator: "\n").filter { $0.hasPrefix("  ") && !$0.hasPrefix("   ") }
        #expect(opLines.count == registry.definitions.count)
        for def in registry.definitions where !def.attributes.isEmpty {
            let first = def.attributes[0]
            #expect(text.contains("  \(def.name) - \(def.summary)\n") && text.contains("      attributes: \(first.name): \(first.kind.rawValue)"))
        }
    }

    @Test func passesListingNamesEveryPassWithItsOptions() {
        let text = RegistryListing.passes()
        for pass in PassRegistry.standard.passes {
            let info = pass.info
            #expect(text.contains("  \(info.name) - \(info.summary)\n"), "\(info.name) is missing")
            for o in info.options { #expect(text.contains("      \(o.name)=<\(o.kind.rawValue)> (default "), "\(info.name).\(o.name)") }
            for s in info.statistics { #expect(text.contains("      statistic \(s.name): \(s.help)\n")) }
        }
        #expect(text.contains("  test-fail - testing aid: fail at the first op with the given name\n      op=<string> (default nn.silu): the op name to fail at\n"))
        #expect(text.contains("  canonicalize - ") && text.contains("      statistic merged-reshapes: reshape chains merged\n"))
    }

    @Test func passListingShowsChoicesAndDefaults() {
        #expect(RegistryListing.passes(PassRegistry([ListedPass.self])) == """
              listed - test-only
                  method=<string> (default a): how [a|b]
                  label=<string> (default ""): a label
                  nm=<N:M pattern> (default 2:4): pattern
                  statistic things: things done

            """)
    }
}
