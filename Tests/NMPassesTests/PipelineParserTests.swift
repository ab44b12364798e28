import Testing
import NMIR
@testable import NMPasses

/// A pass that does nothing and takes one option of every kind, so the parser's typed options
/// can be tested without depending on the options of real passes.
struct TypedOptionsPass: Pass {
    static let info = PassInfo(
        name: "typed", summary: "test-only: takes options of every kind",
        options: [
            PassOptionSpec("count", .int, default: .int(3), "an int"),
            PassOptionSpec("ratio", .float, default: .float(0.5), "a float"),
            PassOptionSpec("enabled", .bool, default: .bool(false), "a bool"),
            PassOptionSpec("nm", .pattern, default: .pattern(NMPattern(n: 2, m: 4)!), "a pattern"),
            PassOptionSpec("method", .string, default: .string("magnitude"), choices: ["magnitude", "wanda", "sparsegpt"], "a choice"),
            PassOptionSpec("label", .string, default: .string("none"), "free text"),
        ])

    init() {}
    func run(on module: inout Module, context: PassContext) throws {}
}

let typedRegistry = PassRegistry([TypedOptionsPass.self, TestFailPass.self])

@Suite struct PipelineParserTests {
    func parse(_ text: String, _ registry: PassRegistry = typedRegistry) throws -> [PipelineStep] {
        try PipelineParser(registry: registry, sourceName: "--passes").parse(text)
    }

    /// The diagnostic a pipeline text fails with, as `--passes:1:COL: error: MESSAGE`.
    func error(_ text: String, _ registry: PassRegistry = typedRegistry) -> String? {
        do {
            let steps = try parse(text, registry)
            Issue.record("'\(text)' parsed to \(steps.map(\.description)); expected an error")
            return nil
        } catch let d as Diagnostic {
            return d.description
        } catch {
            Issue.record("'\(text)' threw \(error), not a Diagnostic")
            return nil
        }
    }

    // MARK: - Valid pipelines

    @Test(arguments: ["", " ", "  \t\n "])
    func emptyPipelineHasNoSteps(text: String) throws {
        #expect(try parse(text).isEmpty)
    }

    @Test func standardPassesInOrderWithSpaces() throws {
        let steps = try parse(" canonicalize , cse,dce ,\tinfer-shapes ", .standard)
        #expect(steps.map(\.name) == ["canonicalize", "cse", "dce", "infer-shapes"])
        #expect(steps.allSatisfy { $0.options.values.isEmpty })
        #expect(steps.map(\.description) == ["canonicalize", "cse", "dce", "infer-shapes"])
    }

    @Test func defaultsAreFilledIn() throws {
        let steps = try parse("typed")
        #expect(steps.count == 1)
        let o = steps[0].options
        #expect(o.values.count == 6)
        #expect(o.int("count") == 3)
        #expect(o.float("ratio") == 0.5)
        #expect(o.bool("enabled") == false)
        #expect(o.pattern("nm") == NMPattern(n: 2, m: 4))
        #expect(o.string("method") == "magnitude")
        #expect(o.string("label") == "none")
        #expect(steps[0].description == "typed")
        #expect(try parse("test-fail")[0].options == PassOptions(["op": .string("nn.silu")]))
    }

    @Test func everyOptionKindParses() throws {
        let steps = try parse("typed{count=-7 ratio=0.25 enabled=true nm=1:8 method=wanda label=x.y}")
        let o = steps[0].options
        #expect(o.values == [
            "count": .int(-7), "ratio": .float(0.25), "enabled": .bool(true), "nm": .pattern(NMPattern(n: 1, m: 8)!),
            "method": .string("wanda"), "label": .string("x.y"),
        ])
    }

    @Test func givenOptionsOverrideOnlyTheirOwnDefaults() throws {
        let o = try parse("typed{ratio=2}")[0].options
        #expect(o.values["ratio"] == .float(2))
        #expect(o.int("count") == 3)
        #expect(o.string("method") == "magnitude")
    }

    @Test(arguments: [("true", true), ("1", true), ("false", false), ("0", false)])
    func boolSpellings(text: String, value: Bool) throws {
        let o = try parse("typed{enabled=\(text)}")[0].options
        #expect(o.values["enabled"] == .bool(value))
    }

    @Test func spacesAroundBracesAndOptions() throws {
        let steps = try parse("typed {  count=9\tenabled=1  } ,test-fail{ op=nn.add }")
        #expect(steps.map(\.name) == ["typed", "test-fail"])
        #expect(steps[0].options.int("count") == 9)
        #expect(steps[0].options.bool("enabled") == true)
        #expect(steps[1].options.string("op") == "nn.add")
        #expect(try parse("typed{}")[0].options == TypedOptionsPass.info.defaultOptions)
    }

    @Test func quotedValuesKeepSpacesCommasBracesAndEscapes() throws {
        let steps = try parse(#"test-fail{op="a b,c{d}"},typed{label="say \"hi\" \\ ok"}"#)
        #expect(steps.count == 2)
        #expect(steps[0].options.string("op") == "a b,c{d}")
        #expect(steps[1].options.string("label") == #"say "hi" \ ok"#)
        #expect(try parse(#"typed{label=""}"#)[0].options.string("label") == "")
    }

    @Test func unquotedValueRunsToSpaceOrBrace() throws {
        // A comma inside braces belongs to the value; it only separates passes outside them.
        #expect(try parse("test-fail{op=a,b}")[0].options.string("op") == "a,b")
        #expect(try parse("test-fail{op=nn.add},typed")[0].options.string("op") == "nn.add")
    }

    @Test func descriptionShowsOnlyChangedOptions() throws {
        let steps = try parse("typed{count=3 ratio=0.125 nm=2:4 method=sparsegpt enabled=true}")
        // count and nm equal their defaults, so they are left out; order is the declaration order.
        #expect(steps[0].description == "typed{ratio=0.125 enabled=true method=sparsegpt}")
        #expect(try parse("test-fail{op=nn.mul}")[0].description == "test-fail{op=nn.mul}")
        #expect(try parse(#"test-fail{op="a b"}"#)[0].description == #"test-fail{op="a b"}"#)
    }

    @Test(arguments: [
        "typed", "typed{count=0}", "typed{count=-12 ratio=1.0e-05}", "typed{ratio=3.5 enabled=true nm=15:16}",
        "typed{nm=1:2 method=wanda label=abc}", #"typed{label="a b"}"#, #"typed{label=",{}"}"#, #"typed{label="q\"q"}"#,
        "test-fail{op=nn.add},typed{enabled=true},test-fail",
    ])
    func descriptionRoundTrips(text: String) throws {
        let steps = try parse(text)
        let printed = steps.map(\.description).joined(separator: ",")
        let again = try parse(printed)
        #expect(again.map(\.name) == steps.map(\.name), "\(printed)")
        #expect(again.map(\.options) == steps.map(\.options), "\(printed)")
        #expect(again.map(\.description) == steps.map(\.description))
    }

    @Test(arguments: ["", "a b", "x,y", "{z}", "}", "q\"", "back\\slash", "\\\"", "tab\there", "new\nline",
                      "bell\u{7}", "bell\u{7} and space", "mixed \"x\"\t{y}, z\n"])
    func stringOptionValuesRoundTrip(value: String) throws {
        var options = TypedOptionsPass.info.defaultOptions
        options.values["label"] = .string(value)
        let step = PipelineStep(pass: TypedOptionsPass.self, options: options)
        let again = try parse(step.description)
        #expect(again.count == 1)
        #expect(again.first?.options.string("label") == value, "description: \(step.description)")
    }

    // MARK: - Errors, with their exact message and column

    @Test func unknownPass() {
        #expect(error("nope") == "--passes:1:1: error: unknown pass 'nope' (known passes: typed, test-fail)")
        #expect(error("typed, cse") == "--passes:1:8: error: unknown pass 'cse' (known passes: typed, test-fail)")
        // Every registered pass, in registry order (the list grows as passes are added).
        #expect(error("canonicalize,frobnicate", .standard)
                == "--passes:1:14: error: unknown pass 'frobnicate' (known passes: \(PassRegistry.standard.names.joined(separator: ", ")))")
        #expect(PassRegistry.standard.names.starts(with: ["canonicalize", "cse", "dce", "infer-shapes", "test-fail"]))
    }

    @Test func unknownOption() {
        #expect(error("typed{count=1 bogus=2}")
                == "--passes:1:15: error: unknown option 'bogus' for pass 'typed' (options: count, ratio, enabled, nm, method, label)")
        #expect(error("cse{x=1}", .standard) == "--passes:1:5: error: unknown option 'x' for pass 'cse' (it takes no options)")
    }

    @Test func duplicateOption() {
        #expect(error("typed{count=1 ratio=2 count=1}") == "--passes:1:23: error: option 'count' is given twice")
        #expect(error("test-fail{op=a op=a}") == "--passes:1:16: error: option 'op' is given twice")
    }

    @Test func badIntValue() {
        #expect(error("typed{count=abc}")
                == "--passes:1:13: error: invalid value 'abc' for option 'count' of pass 'typed': expected an integer")
        #expect(error("typed{count=1.5}")
                == "--passes:1:13: error: invalid value '1.5' for option 'count' of pass 'typed': expected an integer")
        #expect(error("typed{count=}")
                == "--passes:1:13: error: invalid value '' for option 'count' of pass 'typed': expected an integer")
    }

    @Test func badFloatValue() {
        #expect(error("typed{ratio=half}")
                == "--passes:1:13: error: invalid value 'half' for option 'ratio' of pass 'typed': expected a number")
    }

    @Test func badBoolValue() {
        #expect(error("typed{enabled=yes}")
                == "--passes:1:15: error: invalid value 'yes' for option 'enabled' of pass 'typed': expected true or false")
        #expect(error("typed{enabled=True}")
                == "--passes:1:15: error: invalid value 'True' for option 'enabled' of pass 'typed': expected true or false")
    }

    @Test(arguments: ["4:2", "2:2", "0:4", "8:17", "2-4", "2:4:8", "x:4", "2:"])
    func badPatternValue(value: String) {
        #expect(error("typed{nm=\(value)}")
                == "--passes:1:10: error: invalid value '\(value)' for option 'nm' of pass 'typed': expected an N:M pattern with 1 ≤ N < M ≤ 16, like 2:4")
    }

    @Test func badChoiceValue() {
        #expect(error("typed{method=best}")
                == "--passes:1:14: error: invalid value 'best' for option 'method' of pass 'typed': expected one of magnitude, wanda, sparsegpt")
        // The column of a quoted value is that of its opening quote.
        #expect(error(#"typed{method="wanda "}"#)
                == "--passes:1:14: error: invalid value 'wanda ' for option 'method' of pass 'typed': expected one of magnitude, wanda, sparsegpt")
    }

    @Test func missingEquals() {
        #expect(error("typed{count}") == "--passes:1:12: error: expected '=' after option 'count'")
        #expect(error("typed{count 3}") == "--passes:1:12: error: expected '=' after option 'count'")
        #expect(error("typed{count") == "--passes:1:12: error: expected '=' after option 'count'")
    }

    @Test func missingOptionName() {
        #expect(error("typed{=3}") == "--passes:1:7: error: expected an option name in 'typed{…}', found '='")
        #expect(error("typed{count=1,ratio=2}") == "--passes:1:13: error: invalid value '1,ratio=2' for option 'count' of pass 'typed': expected an integer")
    }

    @Test func unclosedBrace() {
        #expect(error("typed{count=3") == "--passes:1:14: error: expected '}' to close the options of 'typed'")
        #expect(error("typed{") == "--passes:1:7: error: expected '}' to close the options of 'typed'")
        #expect(error("typed{count=3 ,test-fail") == "--passes:1:15: error: expected an option name in 'typed{…}', found ','")
    }

    @Test func unterminatedQuote() {
        #expect(error(#"test-fail{op="abc}"#) == "--passes:1:14: error: unterminated quoted value for option 'op'")
    }

    @Test func trailingComma() {
        #expect(error("typed,") == "--passes:1:7: error: expected a pass name after ','")
        #expect(error("typed, ") == "--passes:1:8: error: expected a pass name after ','")
    }

    @Test func emptyPassNames() {
        #expect(error(",typed") == "--passes:1:1: error: expected a pass name, found ','")
        #expect(error("typed,,typed") == "--passes:1:7: error: expected a pass name, found ','")
    }

    @Test func garbageBetweenPasses() {
        #expect(error("typed;test-fail") == "--passes:1:6: error: expected ',' between passes, found ';'")
        #expect(error("typed test-fail") == "--passes:1:7: error: expected ',' between passes, found 't'")
        #expect(error("typed{count=1}x") == "--passes:1:15: error: expected ',' between passes, found 'x'")
        #expect(error("typed}") == "--passes:1:6: error: expected ',' between passes, found '}'")
    }

    @Test func columnsCountBytesLikeEveryOtherDiagnostic() {
        // "é" is two bytes in UTF-8: the column of 'b' is 20, as the NMIR parser would count it.
        #expect(error(#"test-fail{op="é"},bogus"#) == "--passes:1:20: error: unknown pass 'bogus' (known passes: typed, test-fail)")
        #expect(error("test-fail{op=ü;},x") == "--passes:1:19: error: unknown pass 'x' (known passes: typed, test-fail)")
    }

    @Test func defaultSourceNameIsPipeline() {
        do {
            _ = try PipelineParser(registry: typedRegistry).parse("zzz")
            Issue.record("expected an error")
        } catch let d as Diagnostic {
            #expect(d.location == SourceLocation(file: "<pipeline>", line: 1, column: 1))
            #expect(d.severity == .error)
        } catch {
            Issue.record("\(error)")
        }
    }
}
