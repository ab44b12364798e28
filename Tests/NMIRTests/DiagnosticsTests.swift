import Testing
@testable import NMIR

@Suite struct DiagnosticsTests {
    /// The diagnostic `Parser.parse` throws for `text`.
    static func parseError(_ source: SourceText) -> Diagnostic? {
        do {
            _ = try Parser.parse(source)
            return nil
        } catch let d as Diagnostic {
            return d
        } catch {
            Issue.record("unexpected \(error)")
            return nil
        }
    }

    @Test func renderedShowsTheLineAndACaretUnderTheColumn() throws {
        let source = SourceText(name: "d.nmir", text: "func @f() {\n  %0 = nn.bogus\n  return\n}\n")
        let d = try #require(Self.parseError(source))
        #expect(d.location == NMIR.SourceLocation(file: "d.nmir", line: 2, column: 8))
        #expect(d.rendered(source: source) == """
            d.nmir:2:8: error: unknown operation 'nn.bogus'
              %0 = nn.bogus
                   ^
            """)
        // Without the source, or at an unknown place, only the one-line form is left.
        #expect(d.rendered(source: nil) == "d.nmir:2:8: error: unknown operation 'nn.bogus'")
        let nowhere = Diagnostic(at: .unknown, "boom")
        #expect(nowhere.description == "<unknown>: error: boom")
        #expect(nowhere.rendered(source: source) == "<unknown>: error: boom")
        // A line past the end of the source shows nothing either.
        let far = Diagnostic(at: NMIR.SourceLocation(file: "d.nmir", line: 99, column: 1), "far")
        #expect(far.rendered(source: source) == "d.nmir:99:1: error: far")
    }

    @Test func caretAtTheFirstColumnAndAtTheEndOfInput() throws {
        let source = SourceText(name: "e.nmir", text: "bogus")
        let d = try #require(Self.parseError(source))
        #expect(d.rendered(source: source) == "e.nmir:1:1: error: expected 'func' or 'weights', found 'b'\nbogus\n^")
        let open = SourceText(name: "e.nmir", text: "func @f() {\n")
        let end = try #require(Self.parseError(open))
        #expect(end.description == "e.nmir:2:1: error: expected 'return' before the end of the function, found end of input")
        #expect(end.rendered(source: open) == end.description + "\n\n^")
    }

    @Test func tabsAreKeptSoTheCaretLinesUp() throws {
        let source = SourceText(name: "t.nmir", text: "func @f() {\n\t%0 =\tnn.bogus\n  return\n}\n")
        let d = try #require(Self.parseError(source))
        #expect(d.location.column == 7)
        #expect(d.rendered(source: source) == "t.nmir:2:7: error: unknown operation 'nn.bogus'\n\t%0 =\tnn.bogus\n\t    \t^")
    }

    @Test func caretCountsCharactersNotBytes() throws {
        // Columns are byte offsets; the caret goes under the character that starts at that byte.
        let text = "module attributes {s = \"héllo wörld\", t = bogus} {\n}\n"
        let source = SourceText(name: "u.nmir", text: text)
        let d = try #require(Self.parseError(source))
        #expect(d.location.column == 45)  // 42 characters before 'bogus', two of them 2 bytes long
        let lines = d.rendered(source: source).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 3)
        #expect(lines[1] == "module attributes {s = \"héllo wörld\", t = bogus} {")
        #expect(lines[2] == Substring(String(repeating: " ", count: 42) + "^"))
    }

    @Test func notesAreRenderedWithTheirOwnLines() throws {
        let source = SourceText(name: "n.nmir", text: "func @f(%x: tensor<f32>) {\n  %y = nn.silu %x : tensor<f32>\n    %y = nn.silu %x : tensor<f32>\n  return\n}\n")
        let d = try #require(Self.parseError(source))
        #expect(d.notes.count == 1)
        #expect(d.notes.first?.severity == .note)
        #expect(d.rendered(source: source) == """
            n.nmir:3:5: error: redefinition of value %y
                %y = nn.silu %x : tensor<f32>
                ^
            n.nmir:2:3: note: previously defined here
              %y = nn.silu %x : tensor<f32>
              ^
            """)
    }

    @Test func severitiesAndLists() {
        let at = NMIR.SourceLocation(file: "a.nmir", line: 3, column: 4)
        #expect(at.description == "a.nmir:3:4" && at.isKnown)
        #expect(!NMIR.SourceLocation.unknown.isKnown)
        #expect(Diagnostic(.warning, at: at, "careful").description == "a.nmir:3:4: warning: careful")
        #expect(Diagnostic(.note, at: at, "see").description == "a.nmir:3:4: note: see")
        let list = DiagnosticList([Diagnostic(at: at, "one"), Diagnostic(at: .unknown, "two")])
        #expect(list.description == "a.nmir:3:4: error: one\n<unknown>: error: two")
    }

    @Test func sourceTextLinesAndLocations() {
        let s = SourceText(name: "s", text: "ab\ncd\r\n\nlast")
        #expect(s.firstLine == 1)
        #expect(s.line(0) == nil)
        #expect(s.line(1) == "ab")
        #expect(s.line(2) == "cd")  // the \r of a CRLF is not part of the line
        #expect(s.line(3) == "")
        #expect(s.line(4) == "last")
        #expect(s.line(5) == nil)
        #expect(s.location(ofOffset: 0) == NMIR.SourceLocation(file: "s", line: 1, column: 1))
        #expect(s.location(ofOffset: 2) == NMIR.SourceLocation(file: "s", line: 1, column: 3))
        #expect(s.location(ofOffset: 3) == NMIR.SourceLocation(file: "s", line: 2, column: 1))
        #expect(s.location(ofOffset: 8) == NMIR.SourceLocation(file: "s", line: 4, column: 1))
        #expect(s.location(ofOffset: 12) == NMIR.SourceLocation(file: "s", line: 4, column: 5))
        // Bytes that are not UTF-8 still give a line (with replacement characters).
        let bad = SourceText(name: "b", bytes: [0x61, 0xFF, 0x0A, 0x62])
        #expect(bad.line(1) == "a\u{FFFD}")
        #expect(bad.line(2) == "b")
    }

    @Test func sourceTextWithAFirstLineOffset() throws {
        // A chunk cut out of a larger file at line 41 reports lines of that file.
        let chunk = SourceText(name: "big.nmir", text: "func @f() {\n  %0 = nn.bogus\n  return\n}\n", firstLine: 41)
        #expect(chunk.firstLine == 41)
        #expect(chunk.line(40) == nil)
        #expect(chunk.line(41) == "func @f() {")
        #expect(chunk.line(42) == "  %0 = nn.bogus")
        #expect(chunk.line(45) == "")
        #expect(chunk.line(46) == nil)
        #expect(chunk.location(ofOffset: 14) == NMIR.SourceLocation(file: "big.nmir", line: 42, column: 3))
        let d = try #require(Self.parseError(chunk))
        #expect(d.description == "big.nmir:42:8: error: unknown operation 'nn.bogus'")
        #expect(d.rendered(source: chunk) == "big.nmir:42:8: error: unknown operation 'nn.bogus'\n  %0 = nn.bogus\n       ^")
        // The verifier's locations follow the offset too.
        let verified = SourceText(name: "big.nmir", text: "func @f(%x: tensor<4xf32>) -> tensor<4xf16> {\n  %y = nn.silu %x : tensor<4xf16>\n  return %y\n}\n", firstLine: 100)
        do {
            _ = try Parser.parseAndVerify(verified)
            Issue.record("expected a verifier error")
        } catch let list as DiagnosticList {
            #expect(list.diagnostics.map(\.description) == ["big.nmir:101:3: error: 'nn.silu': result type tensor<4xf16> does not match the inferred tensor<4xf32>"])
            #expect(list.diagnostics.first?.rendered(source: verified).hasSuffix("\n  %y = nn.silu %x : tensor<4xf16>\n  ^") == true)
        }
    }

    @Test func parserErrorsNameWhatTheyFound() throws {
        let cases: [(String, String)] = [
            ("func @f(", "p.nmir:1:9: error: expected a value name '%name', found end of input"),
            ("func @f(%x tensor<f32>) {}", "p.nmir:1:12: error: expected ':', found 't'"),
            ("func @f(%x: tensor<4xq7>) {}", "p.nmir:1:22: error: unknown element type 'q7' (expected f32, f16, bf16, i32, i8, i4 or index)"),
            ("func @f(%x: tensor<4,f32>) {}", "p.nmir:1:21: error: expected 'x' after a dimension, found ','"),
            ("func @f(%x: blob<4xf32>) {}", "p.nmir:1:13: error: unknown type 'blob' (expected tensor, quant.packed or kv.cache)"),
            ("func @f(%x: tensor<1099511627777xf32>) {}", "p.nmir:1:20: error: dimension 1099511627777 is out of range"),
            ("func @f(%x: tensor<1048576x1048577xf32>) {}", "p.nmir:1:28: error: the shape has too many elements"),
            ("module attributes {a = 99999999999999999999} {}", "p.nmir:1:24: error: integer literal '99999999999999999999' is too large"),
            ("module attributes {a = \"x\\q\"} {}", "p.nmir:1:28: error: unknown escape '\\q' in string, found '\"'"),
            ("module attributes {a = \"x\n\"} {}", "p.nmir:1:24: error: unterminated string (strings do not span lines)"),
            ("module attributes {a = 1, a = 2} {}", "p.nmir:1:27: error: attribute 'a' is given twice"),
            ("\u{1}", "p.nmir:1:1: error: expected 'func' or 'weights', found byte 0x1"),
        ]
        for (text, expected) in cases {
            #expect(Self.parseError(SourceText(name: "p.nmir", text: text))?.description == expected, "\(text)")
        }
        // Invalid UTF-8 inside a string.
        let bytes = Array("module attributes {a = \"".utf8) + [0xC3, 0x28] + Array("\"} {}".utf8)
        #expect(Self.parseError(SourceText(name: "p.nmir", bytes: bytes))?.description == "p.nmir:1:24: error: string is not valid UTF-8")
    }
}
