/// Prints NMIR as text. The output is deterministic and reads back to an equal module.
public struct Printer: Sendable {
    /// Weights written in the text whose storage exceeds this many bytes print as `= elided`.
    public var elideWeightsLargerThan: Int?
    public var registry: OpRegistry

    public init(elideWeightsLargerThan: Int? = nil, registry: OpRegistry = .standard) {
        self.elideWeightsLargerThan = elideWeightsLargerThan
        self.registry = registry
    }

    public func print(_ module: Module) -> String {
        var out = "module"
        if let name = module.name { out += " " + symbolText(name) }
        if !module.attributes.isEmpty { out += " attributes " + printAttributes(module.attributes, order: []) }
        out += " {\n"
        var sections: [String] = []
        if !module.weights.isEmpty || module.weights.file != nil { sections.append(print(module.weights)) }
        for f in module.functions { sections.append(print(f, indent: "  ")) }
        out += sections.joined(separator: "\n")
        return out + "}\n"
    }

    public func print(_ store: WeightStore) -> String {
        var out = "  weights" + (store.file.map { " " + quoteString($0) } ?? "") + " {\n"
        for e in store.entries { out += "    " + symbolText(e.name) + " : " + e.type.description + printData(e) + "\n" }
        return out + "  }\n"
    }

    private func printData(_ e: WeightEntry) -> String {
        switch e.data {
        case .external: return ""
        case .elided: return " = elided"
        case .values(let values):
            if let limit = elideWeightsLargerThan, (WeightStore.storageByteCount(of: e.type) ?? 0) > limit { return " = elided" }
            let isInteger = e.type.tensor?.dtype.isInteger ?? false
            let items = values.map { isInteger ? String(Int($0)) : formatFloat($0) }
            return " = dense<[" + items.joined(separator: ", ") + "]>"
        case .bytes(let bytes):
            if let limit = elideWeightsLargerThan, bytes.count > limit { return " = elided" }
            let digits: [Character] = Array("0123456789ABCDEF")
            var hex = ""
            hex.reserveCapacity(bytes.count * 2)
            for b in bytes {
                hex.append(digits[Int(b >> 4)])
                hex.append(digits[Int(b & 15)])
            }
            return " = dense<\"0x" + hex + "\">"
        }
    }

    public func print(_ f: Function, indent: String = "") -> String {
        let args = f.arguments.map { "%\($0.name): \($0.type)" }.joined(separator: ", ")
        var out = indent + "func " + symbolText(f.name) + "(" + args + ")"
        let results = f.resultTypes
        if results.count == 1 { out += " -> \(results[0])" }
        if results.count > 1 { out += " -> (" + results.map(\.description).joined(separator: ", ") + ")" }
        out += " {\n"
        for op in f.body { out += indent + "  " + print(op) + "\n" }
        out += indent + "  return"
        if !f.returnValues.isEmpty { out += " " + f.returnValues.map(\.description).joined(separator: ", ") }
        return out + "\n" + indent + "}\n"
    }

    public func print(_ op: Operation) -> String {
        var out = ""
        if !op.results.isEmpty { out += op.results.map(\.description).joined(separator: ", ") + " = " }
        out += op.name
        if !op.operands.isEmpty { out += " " + op.operands.map(\.description).joined(separator: ", ") }
        if !op.attributes.isEmpty {
            out += " " + printAttributes(op.attributes, order: registry[op.name]?.attributes.map(\.name) ?? [])
        }
        if !op.results.isEmpty { out += " : " + op.results.map(\.type.description).joined(separator: ", ") }
        return out
    }

    /// `{a = 1, b = "x"}`: declared attributes in declaration order, any others after, sorted.
    func printAttributes(_ attributes: [String: Attribute], order: [String]) -> String {
        let declared = order.filter { attributes[$0] != nil }
        let others = attributes.keys.filter { !order.contains($0) }.sorted()
        let items = (declared + others).map { "\(printKey($0)) = \(attributes[$0]!)" }
        return "{" + items.joined(separator: ", ") + "}"
    }

    private func printKey(_ key: String) -> String {
        // Bare keys are read by `scanIdentifier`: a letter or `_` first, and no `-`.
        let isBare = key.unicodeScalars.first.map { Lexing.isLetter($0) || $0 == "_" } ?? false
            && key.unicodeScalars.allSatisfy { Lexing.isIdentifierBody($0) && $0 != "-" }
        return isBare ? key : quoteString(key)
    }
}

/// Character classes shared by the printer and the parser.
enum Lexing {
    static func isDigit(_ s: Unicode.Scalar) -> Bool { s.value >= 48 && s.value <= 57 }
    static func isLetter(_ s: Unicode.Scalar) -> Bool {
        (s.value >= 65 && s.value <= 90) || (s.value >= 97 && s.value <= 122)
    }
    /// Characters allowed in identifiers, value names and symbols after the first.
    static func isIdentifierBody(_ s: Unicode.Scalar) -> Bool {
        isLetter(s) || isDigit(s) || s == "_" || s == "." || s == "$" || s == "-"
    }
}
