import NMIR

/// One pass of a pipeline with its options resolved.
public struct PipelineStep: @unchecked Sendable {
    public var pass: any Pass.Type
    public var options: PassOptions
    public var name: String { pass.info.name }

    /// `name{k=v …}` with only the options that differ from the defaults.
    public var description: String {
        let info = pass.info
        let changed = info.options.filter { options.values[$0.name] != $0.defaultValue }
        guard !changed.isEmpty else { return info.name }
        return info.name + "{" + changed.map { "\($0.name)=\(PipelineParser.optionText(options.values[$0.name]!))" }.joined(separator: " ") + "}"
    }
}

/// Parses `nm-prune{n=2 m=4 method=wanda},quantize-int4{group=128},canonicalize`: passes separated
/// by commas, options in braces separated by spaces, values quoted with `"` when they hold spaces,
/// commas or braces. Errors point at the column of the pipeline text.
public struct PipelineParser {
    public var registry: PassRegistry
    /// Where the text came from, for diagnostics (`--passes`).
    public var sourceName: String

    public init(registry: PassRegistry = .standard, sourceName: String = "<pipeline>") {
        self.registry = registry
        self.sourceName = sourceName
    }

    static func optionText(_ a: Attribute) -> String {
        switch a {
        case .string(let s):
            return s.contains(where: { " \t\n,{}\"".contains($0) }) || s.isEmpty ? quoteString(s) : s
        default: return a.description
        }
    }

    public func parse(_ text: String) throws -> [PipelineStep] {
        let chars = Array(text.unicodeScalars)
        var i = 0
        var steps: [PipelineStep] = []
        func fail(_ at: Int, _ message: String) -> Diagnostic {
            // Columns count UTF-8 bytes, as in every other diagnostic (and its caret).
            let column = chars[..<min(at, chars.count)].reduce(0) { $0 + UTF8.width($1) } + 1
            return Diagnostic(at: SourceLocation(file: sourceName, line: 1, column: column), message)
        }
        func skipSpaces() { while i < chars.count, chars[i] == " " || chars[i] == "\t" || chars[i] == "\n" { i += 1 } }
        func isNameChar(_ c: Unicode.Scalar) -> Bool {
            (c.value >= 97 && c.value <= 122) || (c.value >= 65 && c.value <= 90) || (c.value >= 48 && c.value <= 57)
                || c == "-" || c == "_" || c == "."
        }
        skipSpaces()
        if i == chars.count { return [] }
        while true {
            skipSpaces()
            let start = i
            while i < chars.count, isNameChar(chars[i]) { i += 1 }
            let name = String(String.UnicodeScalarView(chars[start..<i]))
            guard !name.isEmpty else {
                throw fail(i, i < chars.count ? "expected a pass name, found '\(chars[i])'" : "expected a pass name after ','")
            }
            // Report the whole token, not just its name-like prefix.
            var tokenEnd = i
            while tokenEnd < chars.count, !" \t\n,{}".unicodeScalars.contains(chars[tokenEnd]) { tokenEnd += 1 }
            let token = String(String.UnicodeScalarView(chars[start..<tokenEnd]))
            guard let pass = registry[name] else {
                throw fail(start, "unknown pass '\(token)' (known passes: \(registry.names.joined(separator: ", ")))")
            }
            var options = pass.info.defaultOptions
            var given = Set<String>()
            var valueColumns: [String: Int] = [:]
            skipSpaces()
            if i < chars.count, chars[i] == "{" {
                i += 1
                while true {
                    skipSpaces()
                    guard i < chars.count else { throw fail(i, "expected '}' to close the options of '\(name)'") }
                    if chars[i] == "}" { i += 1; break }
                    let keyStart = i
                    while i < chars.count, isNameChar(chars[i]) { i += 1 }
                    let key = String(String.UnicodeScalarView(chars[keyStart..<i]))
                    guard !key.isEmpty else { throw fail(i, "expected an option name in '\(name){…}', found '\(chars[i])'") }
                    guard let spec = pass.info.option(key) else {
                        let known = pass.info.options.map(\.name)
                        throw fail(keyStart, "unknown option '\(key)' for pass '\(name)'"
                                   + (known.isEmpty ? " (it takes no options)" : " (options: \(known.joined(separator: ", ")))"))
                    }
                    guard given.insert(key).inserted else { throw fail(keyStart, "option '\(key)' is given twice") }
                    guard i < chars.count, chars[i] == "=" else { throw fail(i, "expected '=' after option '\(key)'") }
                    i += 1
                    let valueStart = i
                    var value = ""
                    if i < chars.count, chars[i] == "\"" {
                        i += 1
                        while i < chars.count, chars[i] != "\"" {
                            if chars[i] == "\\", i + 1 < chars.count {
                                // The escapes `quoteString` writes: \n, \t, \u{hex}; any other character stands for itself.
                                i += 1
                                switch chars[i] {
                                case "n": value.unicodeScalars.append("\n")
                                case "t": value.unicodeScalars.append("\t")
                                case "u" where i + 1 < chars.count && chars[i + 1] == "{":
                                    var j = i + 2
                                    var code: UInt32 = 0
                                    while j < chars.count, j < i + 10, let digit = UInt32(String(chars[j]), radix: 16) { code = code << 4 | digit; j += 1 }
                                    if j > i + 2, j < chars.count, chars[j] == "}", let scalar = Unicode.Scalar(code) {
                                        value.unicodeScalars.append(scalar)
                                        i = j
                                    } else {
                                        value.unicodeScalars.append("u")
                                    }
                                default: value.unicodeScalars.append(chars[i])
                                }
                                i += 1
                                continue
                            }
                            value.unicodeScalars.append(chars[i])
                            i += 1
                        }
                        guard i < chars.count else { throw fail(valueStart, "unterminated quoted value for option '\(key)'") }
                        i += 1
                    } else {
                        while i < chars.count, !" \t\n}".unicodeScalars.contains(chars[i]) {
                            value.unicodeScalars.append(chars[i])
                            i += 1
                        }
                    }
                    guard let parsed = spec.parse(value) else {
                        throw fail(valueStart, "invalid value '\(value)' for option '\(key)' of pass '\(name)': expected \(spec.expectation)")
                    }
                    options.values[key] = parsed
                    valueColumns[key] = valueStart
                }
            }
            do {
                try pass.validate(options)
            } catch {
                throw fail(valueColumns[error.option] ?? start, "invalid option '\(error.option)' of pass '\(name)': \(error.message)")
            }
            steps.append(PipelineStep(pass: pass, options: options))
            skipSpaces()
            if i == chars.count { return steps }
            guard chars[i] == "," else { throw fail(i, "expected ',' between passes, found '\(chars[i])'") }
            i += 1
        }
    }
}
