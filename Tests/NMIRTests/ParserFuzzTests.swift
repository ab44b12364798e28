#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
@testable import NMIR
import NMRuntime

/// Helpers on NMRuntime's SplitMix64 (the same sequence on every platform and run).
extension SplitMix64 {

    /// Uniform in 0 ..< n (n ≥ 1); the tiny modulo bias does not matter here.
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
    mutating func byte() -> UInt8 { UInt8(truncatingIfNeeded: next()) }
}

/// What happened to one fuzz input.
enum FuzzOutcome { case parsed, rejected, wrongError }

@Suite struct ParserFuzzTests {
    /// Every failure message names the seed and the input. Set NMIR_FUZZ_SEED (decimal) to explore
    /// other seeds or to replay one.
    static let seed: UInt64 = getenv("NMIR_FUZZ_SEED").flatMap { UInt64(String(cString: $0)) } ?? 0x4E4D_4952_F022_0001
    static let fileName = "fuzz.nmir"

    static let corpus: [[UInt8]] = {
        let texts = (try? OpExamples.printedCorpus()) ?? []
        return texts.map { Array($0.utf8) }
    }()

    /// Bytes shown safely in a failure message (first 600 of them).
    static func show(_ bytes: [UInt8]) -> String {
        var out = ""
        for b in bytes.prefix(600) {
            if b >= 0x20 && b < 0x7f && b != UInt8(ascii: "\\") { out.unicodeScalars.append(Unicode.Scalar(b)) }
            else if b == 10 { out += "\\n" }
            else { out += "\\x" + (b < 16 ? "0" : "") + String(b, radix: 16) }
        }
        return out + (bytes.count > 600 ? "… (\(bytes.count) bytes)" : "")
    }

    /// `<name>:<line>:<col>: error: ` with line ≥ 1 and col ≥ 1.
    static func hasLocatedErrorPrefix(_ description: String, line: Int, column: Int) -> Bool {
        let prefix = "\(fileName):"
        guard description.hasPrefix(prefix) else { return false }
        let rest = description.dropFirst(prefix.count)
        let parts = rest.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, let l = Int(parts[0]), let c = Int(parts[1]), l >= 1, c >= 1 else { return false }
        return l == line && c == column && parts[2].hasPrefix(" error: ")
    }

    /// The rendered form is the description, the source line, then a caret line (spaces or tabs, then `^`).
    static func renderingIsWellFormed(_ d: Diagnostic, _ source: SourceText) -> Bool {
        guard let line = source.displayLine(d.location.line) else { return false }
        let rendered = Array(d.rendered(source: source).utf8)
        let head = Array((d.description + "\n" + line + "\n").utf8)
        guard rendered.count > head.count, Array(rendered[0..<head.count]) == head else { return false }
        let caretLine = rendered[head.count...].prefix { $0 != 10 }
        guard caretLine.last == UInt8(ascii: "^") else { return false }
        return caretLine.dropLast().allSatisfy { $0 == 32 || $0 == 9 }
    }

    /// Feeds one input to the parser and verifier and checks what comes back.
    static func check(_ input: [UInt8], _ what: String) -> FuzzOutcome {
        let source = SourceText(name: fileName, bytes: input)
        let context = "seed \(seed), \(what): \(show(input))"
        var diagnostics: [Diagnostic]
        do {
            let m = try Parser.parseAndVerify(source)
            // What reads and verifies also prints, reads back and prints the same.
            let printed = Printer().print(m)
            do {
                let again = try Parser.parseAndVerify(SourceText(name: "reprinted.nmir", text: printed))
                #expect(Printer().print(again) == printed, "\(context)\nprinted:\n\(printed)")
            } catch {
                Issue.record("printed form does not read back: \(error)\n\(context)\nprinted:\n\(printed)")
                return .wrongError
            }
            return .parsed
        } catch let d as Diagnostic {
            diagnostics = [d]
        } catch let list as DiagnosticList {
            diagnostics = list.diagnostics
            #expect(!diagnostics.isEmpty, "empty DiagnosticList; \(context)")
        } catch {
            Issue.record("error of type \(type(of: error)): \(error)\n\(context)")
            return .wrongError
        }
        var ok = true
        for d in diagnostics {
            let located = hasLocatedErrorPrefix(d.description, line: d.location.line, column: d.location.column)
            #expect(located, "description \"\(d.description)\"; \(context)")
            let rendered = renderingIsWellFormed(d, source)
            #expect(rendered, "rendered \"\(d.rendered(source: source))\"; \(context)")
            ok = ok && located && rendered
        }
        return ok ? .rejected : .wrongError
    }

    // MARK: - Generators

    static let tokens: [String] = [
        "module", "func", "weights", "return", "attributes", "dense", "elided", "@f", "@\"a b\"", "%x", "%0", "%",
        "@", "(", ")", "{", "}", "<", ">", "[", "]", ":", ",", "=", "->", "-", "?", "x", "?x", "4x", "0x", "tensor",
        "quant.packed", "kv.cache", "f32", "f16", "bf16", "i32", "i8", "i4", "index", "nm", "group", "scale",
        "zero_point", "true", "false", "inf", "-inf", "nan", "2:4", "4:4", "1:16", "1.0e-05", "1e400", "-0.0",
        "9223372036854775808", "-9223372036854775808", "1099511627776", "\"", "\"\\u{", "\\", "\"0x0F\"",
        "nn.linear", "nn.weight", "nn.add", "tensor.reshape", "arith.constant", "quant.linear", "quant.dequant",
        "kv.append", "nn.attention", "{name = @w}", "{value = [1, 2]}", "\n", " ", "\t", "\r\n", "//", "\u{0}",
    ]

    static func randomBytes(_ rng: inout SplitMix64) -> [UInt8] {
        let count = rng.pick([0, 1, 2, 8, 40, 200, 1000])
        let alphabet: [UInt8] = Array("module func weights return tensor<?x4xf32> {}()[]<>@%:,=-\" \n0123456789.ex".utf8)
        switch rng.below(3) {
        case 0: return (0..<count).map { _ in rng.byte() }  // anything, NULs and invalid UTF-8 included
        case 1: return (0..<count).map { _ in rng.pick(alphabet) }
        default: return (0..<count).map { _ in rng.chance(20) ? rng.pick([0, 0x80, 0xC3, 0xE2, 0xFF, 0xF4]) : rng.pick(alphabet) }
        }
    }

    static func tokenSoup(_ rng: inout SplitMix64) -> [UInt8] {
        var out: [UInt8] = []
        for _ in 0..<rng.below(60) {
            out += Array(rng.pick(tokens).utf8)
            if rng.chance(50) { out.append(32) }
        }
        return out
    }

    /// Digit runs, long exponents, deep `[` nesting and the like, in the places that read them.
    static func extreme(_ rng: inout SplitMix64) -> [UInt8] {
        let n = rng.pick([1, 10, 100, 300, 1000, 5000, 20000, 100_000])
        let digits = String((0..<n).map { _ in Character(String(rng.below(10))) })
        let nested = String(repeating: "[", count: n)
        let texts = [
            "func @f(%x: tensor<\(digits)xf32>) {\n  return\n}",
            "func @f(%x: tensor<4x\(digits)x\(digits)xf32>) {\n  return\n}",
            "module attributes {a = \(digits)} {\n}",
            "module attributes {a = -\(digits).\(digits)e\(digits)} {\n}",
            "module attributes {a = 1.5e-\(digits)} {\n}",
            "module attributes {a = \(nested)} {\n}",
            "module attributes {a = \(nested)1\(String(repeating: "]", count: n))} {\n}",
            "module attributes {a = \(String(repeating: "[1, ", count: n))} {\n}",
            "weights {\n  @w : tensor<1xf32> = dense<\(nested)>\n}",
            "func @f(%x: tensor<4xf32, nm = \(digits):\(digits)>) {\n  return\n}",
            "func @f(%x: tensor<4xf32>) -> tensor<4xf32> {\n  %y = tensor.reshape %x {shape = \(nested)} : tensor<4xf32>\n  return %y\n}",
            "module attributes {s = \"\(String(repeating: "\\u{10FFFF}", count: min(n, 5000)))\"} {\n}",
            "module attributes {s = \"\\u{\(digits)}\"} {\n}",
            "func @\(String(repeating: "a", count: n))() {\n  return\n}",
            String(repeating: "// comment\n", count: min(n, 5000)) + "func @f() { return }",
            String(repeating: "\n", count: n) + "bogus",
            "weights {\n  @w : tensor<2xi32> = dense<[\(rng.pick(interestingNumbers)), \(digits)]>\n}",
            "weights {\n  @w : tensor<2xindex> = dense<[\(rng.pick(interestingNumbers)), -\(digits)]>\n}",
            "func @f(%q: quant.packed<2x8xi4, group = \(rng.pick(interestingNumbers)), scale = f16>, %s: tensor<2x1xf16>) -> tensor<2x8xf32> {\n"
                + "  %d = quant.dequant %q, %s : tensor<2x8xf32>\n  return %d\n}",
            "func @f(%q: quant.packed<\(digits)x\(rng.pick(interestingNumbers))xi4, group = \(digits), scale = f16>) {\n  return\n}",
        ]
        return Array(rng.pick(texts).utf8)
    }

    static let interestingNumbers = ["0", "-1", "1", "3", "16", "17", "-9223372036854775808", "9223372036854775807",
                                     "9223372036854775808", "1099511627776", "1099511627777", "4611686018427387904",
                                     "1e308", "1e400", "-1e400", "nan", "inf", "0.5", "2:4", "4:4", "?"]

    /// One random edit of `input`.
    static func mutate(_ input: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var b = input
        func range(_ maxLength: Int) -> Range<Int> {
            let start = b.isEmpty ? 0 : rng.below(b.count + 1)
            let length = rng.below(maxLength + 1)
            return start..<min(b.count, start + length)
        }
        switch rng.below(9) {
        case 0:  // delete a range
            b.removeSubrange(range(rng.pick([1, 4, 30, 300])))
        case 1:  // insert random bytes
            let at = rng.below(b.count + 1)
            b.insert(contentsOf: (0..<rng.below(8) + 1).map { _ in rng.byte() }, at: at)
        case 2:  // replace a range with random bytes
            let r = range(8)
            b.replaceSubrange(r, with: (0..<r.count).map { _ in rng.byte() })
        case 3:  // duplicate a range
            let r = range(rng.pick([2, 20, 200]))
            let copy = Array(b[r])
            b.insert(contentsOf: copy, at: rng.below(b.count + 1))
        case 4:  // swap two tokens (runs of non-space bytes)
            let spans = tokenSpans(b)
            guard spans.count >= 2 else { break }
            var i = rng.pick(spans), j = rng.pick(spans)
            if i.lowerBound > j.lowerBound { swap(&i, &j) }
            guard i.upperBound <= j.lowerBound else { break }
            let first = Array(b[i]), second = Array(b[j])
            b.replaceSubrange(j, with: first)
            b.replaceSubrange(i, with: second)
        case 5:  // replace a number with an interesting one
            let numbers = numberSpans(b)
            guard !numbers.isEmpty else { break }
            b.replaceSubrange(rng.pick(numbers), with: Array(rng.pick(interestingNumbers).utf8))
        case 6:  // insert a token
            b.insert(contentsOf: Array(rng.pick(tokens).utf8), at: rng.below(b.count + 1))
        case 7:  // truncate
            b.removeSubrange(rng.below(b.count + 1)..<b.count)
        default:  // splice with another corpus entry
            let other = rng.pick(corpus)
            let cut = rng.below(b.count + 1), from = rng.below(other.count + 1)
            b = Array(b[..<cut]) + Array(other[from...])
        }
        return b
    }

    static func tokenSpans(_ b: [UInt8]) -> [Range<Int>] {
        var spans: [Range<Int>] = []
        var start: Int? = nil
        for i in 0...b.count {
            let isSpace = i == b.count || b[i] == 32 || b[i] == 10
            if isSpace, let s = start { spans.append(s..<i); start = nil } else if !isSpace, start == nil { start = i }
        }
        return spans
    }

    static func numberSpans(_ b: [UInt8]) -> [Range<Int>] {
        var spans: [Range<Int>] = []
        var i = 0
        while i < b.count {
            if b[i] >= 48 && b[i] <= 57 {
                let s = i
                while i < b.count, b[i] >= 48 && b[i] <= 57 { i += 1 }
                spans.append(s..<i)
            } else {
                i += 1
            }
        }
        return spans
    }

    // MARK: - Tests

    struct Tally { var parsed = 0, rejected = 0, wrong = 0 }

    static func run(_ count: Int, salt: UInt64, _ kind: String, _ make: (inout SplitMix64) -> [UInt8]) -> Tally {
        var rng = SplitMix64(seed: seed ^ salt)
        var tally = Tally()
        for i in 0..<count {
            let input = make(&rng)
            switch check(input, "\(kind) #\(i)") {
            case .parsed: tally.parsed += 1
            case .rejected: tally.rejected += 1
            case .wrongError: tally.wrong += 1
            }
        }
        return tally
    }

    @Test func corpusIsValid() throws {
        #expect(Self.corpus.count == OpExamples.table.count + 1)
        for (i, text) in Self.corpus.enumerated() {
            #expect(Self.check(text, "corpus entry #\(i)") == .parsed)
        }
    }

    @Test func randomBytesAreRejectedWithLocatedDiagnostics() {
        let tally = Self.run(700, salt: 1, "random bytes", Self.randomBytes)
        #expect(tally.wrong == 0)
        // About one input in seven is empty (and so an empty module); nearly all others are rejected.
        #expect(tally.rejected > 500 && tally.parsed < 200, "seed \(Self.seed): \(tally)")
    }

    @Test func tokenSoupIsRejectedWithLocatedDiagnostics() {
        let tally = Self.run(400, salt: 2, "token soup", Self.tokenSoup)
        #expect(tally.wrong == 0)
        #expect(tally.rejected > 300, "seed \(Self.seed): \(tally)")
    }

    @Test func extremeInputsDoNotTrap() {
        let tally = Self.run(120, salt: 3, "extreme input", Self.extreme)
        #expect(tally.wrong == 0)
        #expect(tally.rejected > 0 && tally.parsed > 0, "seed \(Self.seed): \(tally)")
    }

    @Test func mutatedModulesParseOrAreRejectedWithLocatedDiagnostics() {
        let tally = Self.run(1800, salt: 4, "mutated module") { rng in
            var b = rng.pick(Self.corpus)
            for _ in 0..<(1 + rng.below(3)) { b = Self.mutate(b, &rng) }
            return b
        }
        #expect(tally.wrong == 0)
        // Both outcomes are common: the mutations are neither all harmless nor all fatal.
        #expect(tally.parsed > 30 && tally.rejected > 1200, "seed \(Self.seed): \(tally)")
    }

    // MARK: - Regressions: inputs that trapped (stack overflow, integer overflow) or broke the one-line form

    static func rejectionOf(_ text: String) -> String? {
        do {
            _ = try Parser.parseAndVerify(SourceText(name: "r.nmir", text: text))
            return nil
        } catch let d as Diagnostic {
            return d.description
        } catch {
            return "unexpected \(type(of: error)): \(error)"
        }
    }

    @Test func regressionDeeplyNestedArraysAreRejectedNotAStackOverflow() throws {
        let deepest = "module attributes {a = " + String(repeating: "[", count: Parser.maxNesting)
            + String(repeating: "]", count: Parser.maxNesting) + "} {\n}\n"
        let m = try Parser.parseAndVerify(SourceText(name: "r.nmir", text: deepest))
        #expect(Printer().print(m) == deepest)
        #expect(Self.rejectionOf("module attributes {a = " + String(repeating: "[", count: Parser.maxNesting + 1) + "} {}")
                == "r.nmir:1:88: error: arrays nest deeper than 64 levels")
        #expect(Self.rejectionOf("module attributes {a = " + String(repeating: "[", count: 1_000_000) + "} {}")
                == "r.nmir:1:88: error: arrays nest deeper than 64 levels")
        #expect(Self.rejectionOf("weights {\n  @w : tensor<1xf32> = dense<" + String(repeating: "[", count: 200_000) + ">\n}")
                == "r.nmir:2:95: error: arrays nest deeper than 64 levels")
    }

    @Test func regressionIntegerWeightValuesOutOfRangeAreRejected() {
        // These read as integers (inf == inf.rounded()) and then trapped in the printer's Int(…).
        #expect(Self.rejectionOf("weights {\n  @w : tensor<2xi32> = dense<[inf, 1]>\n}")
                == "r.nmir:2:24: error: tensor<2xi32> needs integers in [-2147483648, 2147483647], got inf")
        #expect(Self.rejectionOf("weights {\n  @w : tensor<2xindex> = dense<[1, 1e300]>\n}")
                == "r.nmir:2:26: error: tensor<2xindex> needs integers in [-9007199254740992, 9007199254740991], got 1e+300")
        #expect(Self.rejectionOf("weights {\n  @w : tensor<2xi4> = dense<[-8, 8]>\n}")
                == "r.nmir:2:23: error: tensor<2xi4> needs integers in [-8, 7], got 8.0")
    }

    @Test func regressionHugeGroupSizeIsRejected() {
        // (columns + group - 1) / group overflowed while checking the scales.
        let text = """
            func @f(%q: quant.packed<2x8xi4, group = 9223372036854775807, scale = f16>, %s: tensor<2x1xf16>) -> tensor<2x8xf32> {
              %d = quant.dequant %q, %s : tensor<2x8xf32>
              return %d
            }
            """
        #expect(Self.rejectionOf(text) == "r.nmir:1:34: error: invalid quant.packed parameter 'group = 9223372036854775807' (expected group = INT > 0, scale = DTYPE, zero_point = BOOL, nm = N:M)")
    }

    @Test func regressionUnknownEscapesAreNamedNotPrinted() {
        // The escaped byte used to be printed as is: a newline split the one-line form, and the
        // first byte of a UTF-8 sequence showed as a Latin-1 character.
        #expect(Self.rejectionOf("module attributes {a = \"\\\n\"} {}")
                == "r.nmir:2:1: error: unknown escape '\\' followed by byte 0xA in string, found '\"'")
        #expect(Self.rejectionOf("module attributes {a = \"\\é\"} {}")
                == "r.nmir:1:27: error: unknown escape '\\' followed by byte 0xC3 in string, found byte 0xA9")
        #expect(Self.rejectionOf("module attributes {a = \"\\q\"} {}")
                == "r.nmir:1:27: error: unknown escape '\\q' in string, found '\"'")
    }

    @Test func prngIsReproducible() {
        var a = SplitMix64(seed: 42), b = SplitMix64(seed: 42)
        let first = (0..<5).map { _ in a.next() }
        #expect(first == (0..<5).map { _ in b.next() })
        // The published first output of SplitMix64 seeded with 0.
        var zero = SplitMix64(seed: 0)
        #expect(zero.next() == 0xE220_A839_7B1D_CDAF)
    }
}
