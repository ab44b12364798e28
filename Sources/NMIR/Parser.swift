/// Reads NMIR text. Stops at the first error with a diagnostic that names the file, line and
/// column; never traps on any input, including bytes that are not UTF-8.
public struct Parser {
    private let source: SourceText
    private let bytes: [UInt8]
    private var pos = 0
    private let registry: OpRegistry
    /// Values defined so far in the current function.
    private var scope: [String: (value: Value, location: SourceLocation)] = [:]
    /// Nesting of attribute arrays, bounded so that hostile input cannot exhaust the stack.
    private var depth = 0
    public static let maxNesting = 64

    /// Dims and element counts above this are rejected as unreasonable.
    public static let maxDimension = 1 << 40

    public init(_ source: SourceText, registry: OpRegistry = .standard) {
        self.source = source
        self.bytes = source.bytes
        self.registry = registry
    }

    /// Parses a module (an explicit `module { … }` or bare top-level items).
    public static func parse(_ source: SourceText, registry: OpRegistry = .standard) throws -> Module {
        var p = Parser(source, registry: registry)
        return try p.parseModule()
    }

    public static func parse(_ text: String, name: String = "<string>") throws -> Module {
        try parse(SourceText(name: name, text: text))
    }

    // MARK: - Module structure

    mutating func parseModule() throws -> Module {
        skipTrivia()
        var module = Module(location: here)
        if peekKeyword("module") {
            consumeKeyword("module")
            skipTrivia()
            if peek == UInt8(ascii: "@") { module.name = try parseSymbol() }
            skipTrivia()
            if peekKeyword("attributes") {
                consumeKeyword("attributes")
                module.attributes = try parseAttributeDictionary()
            }
            try expect("{")
            try parseItems(into: &module, until: UInt8(ascii: "}"))
            try expect("}")
            skipTrivia()
            guard atEnd else { throw error("expected end of input after the module") }
        } else {
            try parseItems(into: &module, until: nil)
        }
        return module
    }

    private mutating func parseItems(into module: inout Module, until terminator: UInt8?) throws {
        var sawWeights = false
        while true {
            skipTrivia()
            if atEnd || peek == terminator { return }
            if peekKeyword("weights") {
                if sawWeights { throw error("a module has one weights block") }
                sawWeights = true
                module.weights = try parseWeights()
            } else if peekKeyword("func") {
                let f = try parseFunction()
                if module.functions.contains(where: { $0.name == f.name }) {
                    throw Diagnostic(at: f.location, "redefinition of function \(symbolText(f.name))")
                }
                module.functions.append(f)
            } else {
                throw error("expected 'func' or 'weights'" + (terminator != nil ? " or '}'" : ""))
            }
        }
    }

    private mutating func parseWeights() throws -> WeightStore {
        consumeKeyword("weights")
        skipTrivia()
        var store = WeightStore()
        if peek == UInt8(ascii: "\"") { store.file = try parseString() }
        try expect("{")
        while true {
            skipTrivia()
            if peek == UInt8(ascii: "}") { break }
            let location = here
            guard peek == UInt8(ascii: "@") else { throw error("expected a weight '@name' or '}'") }
            let name = try parseSymbol()
            if store[name] != nil { throw Diagnostic(at: location, "weight \(symbolText(name)) is declared twice") }
            try expect(":")
            let typeLocation = here
            let type = try parseType()
            if case .kvCache = type { throw Diagnostic(at: typeLocation, "a weight must be a tensor or a quant.packed type, not \(type)") }
            var data = WeightData.external
            skipTrivia()
            if peek == UInt8(ascii: "=") {
                pos += 1
                data = try parseWeightData(for: type)
            } else if store.file == nil {
                throw Diagnostic(at: location, "weight \(symbolText(name)) has no data: give '= dense<…>' or name a weights file")
            }
            store[name] = WeightEntry(name: name, type: type, data: data, location: location)
        }
        try expect("}")
        return store
    }

    private mutating func parseWeightData(for type: NMType) throws -> WeightData {
        skipTrivia()
        let location = here
        if peekKeyword("elided") {
            consumeKeyword("elided")
            return .elided
        }
        guard peekKeyword("dense") else { throw error("expected 'dense<…>' or 'elided'") }
        consumeKeyword("dense")
        try expect("<")
        skipTrivia()
        let data: WeightData
        if peek == UInt8(ascii: "\"") {
            let text = try parseString()
            guard text.hasPrefix("0x"), text.count % 2 == 0 else {
                throw Diagnostic(at: location, "hex data must be \"0x\" followed by an even number of hex digits")
            }
            var out: [UInt8] = []
            var high: UInt8? = nil
            for ch in text.utf8.dropFirst(2) {
                guard let nibble = hexValue(ch) else { throw Diagnostic(at: location, "invalid hex digit in dense data") }
                if let h = high { out.append(h << 4 | nibble); high = nil } else { high = nibble }
            }
            guard let expected = WeightStore.storageByteCount(of: type), expected == out.count else {
                throw Diagnostic(at: location, "dense data has \(out.count) bytes but \(type) stores \(WeightStore.storageByteCount(of: type).map(String.init) ?? "an unknown number of")")
            }
            data = .bytes(out)
        } else {
            try expect("[")
            var values: [Double] = []
            skipTrivia()
            if peek != UInt8(ascii: "]") {
                repeat {
                    skipTrivia()
                    guard let v = try parseAttributeValue().floatValue else { throw error("expected a number") }
                    values.append(v)
                    skipTrivia()
                } while consumeIf(",")
            }
            try expect("]")
            guard let t = type.tensor else { throw Diagnostic(at: location, "a list of values needs a tensor type, not \(type)") }
            guard let count = t.elementCount, count == values.count else {
                throw Diagnostic(at: location, "dense data has \(values.count) values but \(t) holds \(t.elementCount.map(String.init) ?? "a dynamic number of")")
            }
            if t.dtype.isInteger {
                let bound = t.dtype == .index ? 9007199254740992.0 : Double(1 << (t.dtype.bitWidth - 1))
                if let bad = values.first(where: { $0 != $0.rounded() || $0 < -bound || $0 >= bound }) {
                    throw Diagnostic(at: location, "\(t) needs integers in [\(Int(-bound)), \(Int(bound) - 1)], got \(formatFloat(bad))")
                }
            }
            data = .values(values)
        }
        try expect(">")
        return data
    }

    private mutating func parseFunction() throws -> Function {
        let location = here
        consumeKeyword("func")
        skipTrivia()
        guard peek == UInt8(ascii: "@") else { throw error("expected a function name '@name'") }
        let name = try parseSymbol()
        scope = [:]
        try expect("(")
        var arguments: [Value] = []
        skipTrivia()
        if peek != UInt8(ascii: ")") {
            repeat {
                skipTrivia()
                let argLocation = here
                let argName = try parseValueName()
                try expect(":")
                let value = Value(name: argName, type: try parseType())
                try define(value, at: argLocation)
                arguments.append(value)
                skipTrivia()
            } while consumeIf(",")
        }
        try expect(")")
        skipTrivia()
        var declaredResults: [NMType] = []
        let signatureLocation = here
        if consumeIf("->") {
            skipTrivia()
            if consumeIf("(") {
                skipTrivia()
                if peek != UInt8(ascii: ")") {
                    repeat { declaredResults.append(try parseType()); skipTrivia() } while consumeIf(",")
                }
                try expect(")")
            } else {
                declaredResults.append(try parseType())
            }
        }
        try expect("{")
        var body: [Operation] = []
        while true {
            skipTrivia()
            if atEnd { throw error("expected 'return' before the end of the function") }
            if peekKeyword("return") { break }
            body.append(try parseOperation())
        }
        let returnLocation = here
        consumeKeyword("return")
        var returns: [Value] = []
        skipTrivia()
        if peek == UInt8(ascii: "%") {
            repeat { skipTrivia(); returns.append(try parseUse()); skipTrivia() } while consumeIf(",")
        }
        let returned = returns.map(\.type)
        guard returned == declaredResults else {
            throw Diagnostic(at: returnLocation,
                             "returned types (\(returned.map(\.description).joined(separator: ", "))) do not match the signature (\(declaredResults.map(\.description).joined(separator: ", ")))",
                             notes: [Diagnostic(.note, at: signatureLocation, "signature declared here")])
        }
        try expect("}")
        return Function(name: name, arguments: arguments, body: body, returnValues: returns,
                        location: location, returnLocation: returnLocation)
    }

    private mutating func parseOperation() throws -> Operation {
        let location = here
        var resultNames: [(String, SourceLocation)] = []
        if peek == UInt8(ascii: "%") {
            repeat {
                skipTrivia()
                let l = here
                resultNames.append((try parseValueName(), l))
                skipTrivia()
            } while consumeIf(",")
            try expect("=")
        }
        skipTrivia()
        let nameLocation = here
        guard let opName = scanIdentifier() else { throw error("expected an operation name") }
        guard opName.contains(".") else {
            throw Diagnostic(at: nameLocation, "expected a dialect-qualified operation name (like nn.add), got '\(opName)'")
        }
        guard let definition = registry[opName] else { throw Diagnostic(at: nameLocation, "unknown operation '\(opName)'") }
        var operands: [Value] = []
        skipTrivia()
        if peek == UInt8(ascii: "%") {
            repeat { skipTrivia(); operands.append(try parseUse()); skipTrivia() } while consumeIf(",")
        }
        var attributes: [String: Attribute] = [:]
        skipTrivia()
        if peek == UInt8(ascii: "{") { attributes = try parseAttributeDictionary() }
        skipTrivia()
        var types: [NMType] = []
        if !resultNames.isEmpty {
            guard consumeIf(":") else { throw error("expected ':' and the result types of '\(opName)'") }
            repeat { types.append(try parseType()); skipTrivia() } while consumeIf(",")
            guard types.count == resultNames.count else {
                throw Diagnostic(at: location, "\(resultNames.count) result names but \(types.count) result types")
            }
        }
        guard resultNames.count == definition.results.count else {
            throw Diagnostic(at: location, "'\(opName)' has \(definition.results.count) result(s), but \(resultNames.count) \(resultNames.count == 1 ? "was" : "were") named")
        }
        var results: [Value] = []
        for ((name, l), type) in zip(resultNames, types) {
            let value = Value(name: name, type: type)
            try define(value, at: l)
            results.append(value)
        }
        return Operation(name: opName, operands: operands, results: results, attributes: attributes, location: location)
    }

    private mutating func define(_ value: Value, at location: SourceLocation) throws {
        if let previous = scope[value.name] {
            throw Diagnostic(at: location, "redefinition of value %\(value.name)",
                             notes: [Diagnostic(.note, at: previous.location, "previously defined here")])
        }
        scope[value.name] = (value, location)
    }

    private mutating func parseUse() throws -> Value {
        let location = here
        let name = try parseValueName()
        guard let v = scope[name] else { throw Diagnostic(at: location, "use of undefined value %\(name)") }
        return v.value
    }

    // MARK: - Types

    mutating func parseType() throws -> NMType {
        skipTrivia()
        let location = here
        guard let keyword = scanIdentifier() else { throw error("expected a type") }
        switch keyword {
        case "tensor":
            try expect("<")
            let (shape, dtype) = try parseShapeAndDType()
            var nm: NMPattern? = nil
            for (key, value, l) in try parseTypeParameters() {
                guard key == "nm", let p = value.patternValue else {
                    throw Diagnostic(at: l, "unknown tensor type parameter '\(key)' (expected nm = N:M)")
                }
                nm = p
            }
            let t = TensorType(shape: shape, dtype: dtype, nm: nm)
            if nm != nil {
                guard t.rank >= 1 else { throw Diagnostic(at: location, "an N:M encoding needs a tensor of rank ≥ 1") }
            }
            return .tensor(t)
        case "quant.packed":
            try expect("<")
            let (shape, storage) = try parseShapeAndDType()
            guard shape.count == 2, let rows = shape[0].value, let columns = shape[1].value else {
                throw Diagnostic(at: location, "a packed weight has a static 2-D shape [out, in]")
            }
            var group: Int? = nil, scale: DType? = nil, zeroPoint = false, nm: NMPattern? = nil
            for (key, value, l) in try parseTypeParameters() {
                switch (key, value) {
                case ("group", .int(let g)) where g > 0 && g <= Parser.maxDimension: group = g
                case ("scale", .dtype(let d)): scale = d
                case ("zero_point", .bool(let b)): zeroPoint = b
                case ("nm", .pattern(let p)): nm = p
                default:
                    throw Diagnostic(at: l, "invalid quant.packed parameter '\(key) = \(value)' (expected group = INT > 0, scale = DTYPE, zero_point = BOOL, nm = N:M)")
                }
            }
            guard let group, let scale else { throw Diagnostic(at: location, "quant.packed needs group and scale parameters") }
            let packed = PackedWeightType(rows: rows, columns: columns, storage: storage, group: group, scale: scale,
                                          zeroPoint: zeroPoint, nm: nm)
            if let reason = packed.invalidReason { throw Diagnostic(at: location, "invalid quant.packed type: \(reason)") }
            return .packed(packed)
        case "kv.cache":
            try expect("<")
            let (shape, dtype) = try parseShapeAndDType()
            guard shape.count == 3, let s = shape[0].value, let h = shape[1].value, let d = shape[2].value else {
                throw Diagnostic(at: location, "a kv.cache has a static shape capacity x heads x head_dim")
            }
            try expect(">")
            return .kvCache(KVCacheType(capacity: s, heads: h, headDim: d, dtype: dtype))
        default:
            throw Diagnostic(at: location, "unknown type '\(keyword)' (expected tensor, quant.packed or kv.cache)")
        }
    }

    /// `?x576xf32` up to the element type.
    private mutating func parseShapeAndDType() throws -> ([Dim], DType) {
        var shape: [Dim] = []
        var product = 1
        while true {
            skipTrivia()
            let l = here
            if peek == UInt8(ascii: "?") {
                pos += 1
                shape.append(.dynamic)
            } else if let p = peek, Lexing.isDigit(Unicode.Scalar(p)) {
                let v = try parseInteger()
                guard v >= 0, v <= Parser.maxDimension else { throw Diagnostic(at: l, "dimension \(v) is out of range") }
                let (next, overflow) = product.multipliedReportingOverflow(by: max(v, 1))
                guard !overflow, next <= Parser.maxDimension else { throw Diagnostic(at: l, "the shape has too many elements") }
                product = next
                shape.append(.known(v))
            } else {
                break
            }
            guard peek == UInt8(ascii: "x") else { throw error("expected 'x' after a dimension") }
            pos += 1
        }
        let l = here
        guard let name = scanIdentifier() else { throw error("expected an element type (f32, f16, bf16, i32, i8, i4, index)") }
        guard let dtype = DType(rawValue: name) else {
            throw Diagnostic(at: l, "unknown element type '\(name)' (expected f32, f16, bf16, i32, i8, i4 or index)")
        }
        return (shape, dtype)
    }

    /// `, key = value, …>` after a type's shape.
    private mutating func parseTypeParameters() throws -> [(String, Attribute, SourceLocation)] {
        var out: [(String, Attribute, SourceLocation)] = []
        skipTrivia()
        while consumeIf(",") {
            skipTrivia()
            let l = here
            guard let key = scanIdentifier() else { throw error("expected a type parameter name") }
            if out.contains(where: { $0.0 == key }) { throw Diagnostic(at: l, "type parameter '\(key)' is given twice") }
            try expect("=")
            skipTrivia()
            out.append((key, try parseAttributeValue(), l))
            skipTrivia()
        }
        try expect(">")
        return out
    }

    // MARK: - Attributes

    mutating func parseAttributeDictionary() throws -> [String: Attribute] {
        try expect("{")
        var out: [String: Attribute] = [:]
        skipTrivia()
        if consumeIf("}") { return out }
        repeat {
            skipTrivia()
            let l = here
            let key: String
            if peek == UInt8(ascii: "\"") { key = try parseString() } else {
                guard let k = scanIdentifier() else { throw error("expected an attribute name") }
                key = k
            }
            if out[key] != nil { throw Diagnostic(at: l, "attribute '\(key)' is given twice") }
            try expect("=")
            skipTrivia()
            out[key] = try parseAttributeValue()
            skipTrivia()
        } while consumeIf(",")
        try expect("}")
        return out
    }

    mutating func parseAttributeValue() throws -> Attribute {
        let l = here
        guard let c = peek else { throw error("expected an attribute value") }
        switch c {
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "@"): return .symbol(try parseSymbol())
        case UInt8(ascii: "["):
            guard depth < Parser.maxNesting else { throw Diagnostic(at: l, "arrays nest deeper than \(Parser.maxNesting) levels") }
            depth += 1
            defer { depth -= 1 }
            pos += 1
            var items: [Attribute] = []
            skipTrivia()
            if consumeIf("]") { return .array(items) }
            repeat { skipTrivia(); items.append(try parseAttributeValue()); skipTrivia() } while consumeIf(",")
            try expect("]")
            return .array(items)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            if peekKeyword("-inf") { pos += 4; return .float(-.infinity) }
            let number = try parseNumber()
            if case .int(let n) = number, peek == UInt8(ascii: ":"), let d = peek(at: 1), Lexing.isDigit(Unicode.Scalar(d)) {
                pos += 1
                let m = try parseInteger()
                guard let p = NMPattern(n: n, m: m) else {
                    throw Diagnostic(at: l, "invalid N:M pattern \(n):\(m): need 1 ≤ N < M ≤ 16")
                }
                return .pattern(p)
            }
            return number
        default:
            guard let word = scanIdentifier() else { throw error("expected an attribute value") }
            switch word {
            case "true": return .bool(true)
            case "false": return .bool(false)
            case "inf": return .float(.infinity)
            case "nan": return .float(.nan)
            default:
                if let d = DType(rawValue: word) { return .dtype(d) }
                throw Diagnostic(at: l, "expected an attribute value, got '\(word)'")
            }
        }
    }

    // MARK: - Tokens

    private mutating func parseNumber() throws -> Attribute {
        let l = here
        let start = pos
        if peek == UInt8(ascii: "-") { pos += 1 }
        var isFloat = false
        func digits(_ p: inout Parser) -> Int {
            var n = 0
            while let c = p.peek, Lexing.isDigit(Unicode.Scalar(c)) { p.pos += 1; n += 1 }
            return n
        }
        guard digits(&self) > 0 else { throw Diagnostic(at: l, "expected a number") }
        if peek == UInt8(ascii: "."), let d = peek(at: 1), Lexing.isDigit(Unicode.Scalar(d)) {
            pos += 1
            isFloat = true
            _ = digits(&self)
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            let save = pos
            pos += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { pos += 1 }
            if digits(&self) > 0 { isFloat = true } else { pos = save }
        }
        let text = String(decoding: bytes[start..<pos], as: UTF8.self)
        if isFloat {
            guard let v = Double(text) else { throw Diagnostic(at: l, "invalid float literal '\(text)'") }
            return .float(v)
        }
        guard let v = Int(text) else { throw Diagnostic(at: l, "integer literal '\(text)' is too large") }
        return .int(v)
    }

    private mutating func parseInteger() throws -> Int {
        let l = here
        guard case .int(let v) = try parseNumber() else { throw Diagnostic(at: l, "expected an integer") }
        return v
    }

    private mutating func parseString() throws -> String {
        let l = here
        guard consumeIf("\"") else { throw error("expected a string") }
        var raw: [UInt8] = []
        while true {
            guard let c = peek else { throw Diagnostic(at: l, "unterminated string") }
            pos += 1
            if c == UInt8(ascii: "\"") { break }
            if c == UInt8(ascii: "\n") { throw Diagnostic(at: l, "unterminated string (strings do not span lines)") }
            if c == UInt8(ascii: "\\") {
                guard let e = peek else { throw Diagnostic(at: l, "unterminated string") }
                pos += 1
                switch e {
                case UInt8(ascii: "n"): raw.append(10)
                case UInt8(ascii: "t"): raw.append(9)
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): raw.append(e)
                case UInt8(ascii: "u"):
                    guard consumeIf("{") else { throw error("expected '{' after \\u") }
                    var v: UInt32 = 0, n = 0
                    while let h = peek, let d = hexValue(h), n < 8 { v = v << 4 | UInt32(d); pos += 1; n += 1 }
                    guard n > 0, consumeIf("}"), let scalar = Unicode.Scalar(v) else { throw error("invalid \\u{…} escape") }
                    raw += Array(String(Character(scalar)).utf8)
                default:
                    // Name the byte rather than print it: it may be a newline or part of a UTF-8 sequence.
                    let shown = e >= 0x20 && e < 0x7f ? "'\\\(Character(Unicode.Scalar(e)))'"
                        : "'\\' followed by byte 0x" + String(e, radix: 16, uppercase: true)
                    throw error("unknown escape \(shown) in string")
                }
            } else {
                raw.append(c)
            }
        }
        guard let s = String(validating: raw, as: UTF8.self) else { throw Diagnostic(at: l, "string is not valid UTF-8") }
        return s
    }

    /// `@name` or `@"any name"`.
    private mutating func parseSymbol() throws -> String {
        guard consumeIf("@") else { throw error("expected '@'") }
        if peek == UInt8(ascii: "\"") { return try parseString() }
        guard let name = scanName() else { throw error("expected a name after '@'") }
        return name
    }

    private mutating func parseValueName() throws -> String {
        guard consumeIf("%") else { throw error("expected a value name '%name'") }
        guard let name = scanName() else { throw error("expected a name after '%'") }
        return name
    }

    /// A name after `%` or `@`: identifier characters, digits allowed first.
    private mutating func scanName() -> String? {
        let start = pos
        while let c = peek, c < 128, Lexing.isIdentifierBody(Unicode.Scalar(c)) { pos += 1 }
        return pos > start ? String(decoding: bytes[start..<pos], as: UTF8.self) : nil
    }

    /// A bare identifier: a letter or `_`, then identifier characters (`-` excluded so `->` stays apart).
    private mutating func scanIdentifier() -> String? {
        guard let c = peek, c < 128, Lexing.isLetter(Unicode.Scalar(c)) || c == UInt8(ascii: "_") else { return nil }
        let start = pos
        while let c = peek, c < 128, Lexing.isIdentifierBody(Unicode.Scalar(c)), c != UInt8(ascii: "-") { pos += 1 }
        return String(decoding: bytes[start..<pos], as: UTF8.self)
    }

    private func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    // MARK: - Cursor

    private var atEnd: Bool { pos >= bytes.count }
    private var peek: UInt8? { pos < bytes.count ? bytes[pos] : nil }
    private func peek(at offset: Int) -> UInt8? { pos + offset < bytes.count ? bytes[pos + offset] : nil }
    private var here: SourceLocation { source.location(ofOffset: pos) }

    private mutating func skipTrivia() {
        while let c = peek {
            if c == 32 || c == 9 || c == 10 || c == 13 {
                pos += 1
            } else if c == UInt8(ascii: "/"), peek(at: 1) == UInt8(ascii: "/") {
                while let d = peek, d != 10 { pos += 1 }
            } else {
                return
            }
        }
    }

    private func peekKeyword(_ word: String) -> Bool {
        let w = Array(word.utf8)
        guard pos + w.count <= bytes.count, Array(bytes[pos..<(pos + w.count)]) == w else { return false }
        if let next = peek(at: w.count), next < 128, Lexing.isIdentifierBody(Unicode.Scalar(next)) { return false }
        return true
    }

    private mutating func consumeKeyword(_ word: String) { pos += word.utf8.count }

    private mutating func consumeIf(_ token: String) -> Bool {
        let t = Array(token.utf8)
        guard pos + t.count <= bytes.count, Array(bytes[pos..<(pos + t.count)]) == t else { return false }
        pos += t.count
        return true
    }

    private mutating func expect(_ token: String) throws {
        skipTrivia()
        guard consumeIf(token) else { throw error("expected '\(token)'") }
    }

    /// An error at the cursor that says what was found there.
    private func error(_ message: String) -> Diagnostic {
        Diagnostic(at: here, message + ", found " + describeHere())
    }

    private func describeHere() -> String {
        guard let c = peek else { return "end of input" }
        if c >= 0x20 && c < 0x7f { return "'\(Character(Unicode.Scalar(c)))'" }
        if c == 10 { return "end of line" }
        return "byte 0x" + String(c, radix: 16, uppercase: true)
    }
}
