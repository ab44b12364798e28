import NMIR

/// `--verify-diagnostics`: the diagnostics a test input expects, written as comments
/// `// expected-error {{text}}` (this line), `// expected-error@+1 {{text}}` (the next line),
/// `@-2`, `@above`, `@below`, for `error`, `warning` and `note`. A produced diagnostic matches an
/// expectation on the same line whose text it contains.
public struct ExpectedDiagnostics {
    public struct Expectation {
        public var severity: Severity
        public var line: Int
        public var text: String
        public var location: SourceLocation
        var matched = false
    }

    public private(set) var expectations: [Expectation] = []

    public init(source: SourceText) throws {
        var lineNumber = source.firstLine
        var lineText = source.line(lineNumber)
        while let text = lineText {
            try scan(text, line: lineNumber, file: source.name)
            lineNumber += 1
            lineText = source.line(lineNumber)
        }
    }

    private mutating func scan(_ text: String, line: Int, file: String) throws {
        var rest = Substring(text)
        while let range = rest.range(of: "expected-") {
            let column = text.utf8.distance(from: text.startIndex, to: range.lowerBound) + 1  // in bytes, like every column
            let location = SourceLocation(file: file, line: line, column: column)
            var s = rest[range.upperBound...]
            var severity: Severity? = nil
            for candidate in [Severity.error, .warning, .note] where s.hasPrefix(candidate.rawValue) {
                severity = candidate
                s = s.dropFirst(candidate.rawValue.count)
            }
            guard let severity else { rest = s; continue }
            var target = line
            if s.hasPrefix("@") {
                s = s.dropFirst()
                if s.hasPrefix("above") { target = line - 1; s = s.dropFirst(5) }
                else if s.hasPrefix("below") { target = line + 1; s = s.dropFirst(5) }
                else {
                    let sign = s.first
                    guard sign == "+" || sign == "-" else {
                        throw Diagnostic(at: location, "expected '+N', '-N', 'above' or 'below' after '@'")
                    }
                    s = s.dropFirst()
                    let digits = s.prefix { $0.isNumber }
                    guard let n = Int(digits) else { throw Diagnostic(at: location, "expected a line offset after '@\(sign!)'") }
                    target = sign == "+" ? line + n : line - n
                    s = s.dropFirst(digits.count)
                }
            }
            s = s.drop { $0 == " " }
            guard s.hasPrefix("{{"), let close = s.range(of: "}}") else {
                throw Diagnostic(at: location, "expected '{{text}}' after 'expected-\(severity.rawValue)'")
            }
            let message = String(s[s.index(s.startIndex, offsetBy: 2)..<close.lowerBound])
            expectations.append(Expectation(severity: severity, line: target, text: message, location: location))
            rest = s[close.upperBound...]
        }
    }

    /// Matches produced diagnostics (and their notes) against the expectations; returns the
    /// problems: diagnostics nobody expected and expectations nothing produced.
    public mutating func check(_ produced: [Diagnostic]) -> [Diagnostic] {
        var problems: [Diagnostic] = []
        let all = produced.flatMap { [$0] + $0.notes }
        for d in all {
            if let i = expectations.firstIndex(where: {
                !$0.matched && $0.severity == d.severity && $0.line == d.location.line && d.message.contains($0.text)
            }) {
                expectations[i].matched = true
            } else {
                problems.append(Diagnostic(at: d.location, "unexpected \(d.severity.rawValue): \(d.message)"))
            }
        }
        for e in expectations where !e.matched {
            problems.append(Diagnostic(at: e.location, "expected \(e.severity.rawValue) \"\(e.text)\" on line \(e.line) was not produced"))
        }
        return problems
    }
}
