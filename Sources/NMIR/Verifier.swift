/// Checks a module: SSA (every use after its definition, one definition per name, uses typed
/// as defined), each op against its definition (operands, attributes, result count) and its type
/// rule, weights against their types, and returns against the signature.
public struct Verifier: Sendable {
    public var registry: OpRegistry

    public init(registry: OpRegistry = .standard) { self.registry = registry }

    /// Throws a `DiagnosticList` with every problem found.
    public func verify(_ module: Module) throws {
        let problems = diagnose(module)
        if !problems.isEmpty { throw DiagnosticList(problems) }
    }

    public func diagnose(_ module: Module) -> [Diagnostic] {
        var problems: [Diagnostic] = []
        for e in module.weights.entries {
            if case .values(let v) = e.data, e.type.tensor?.elementCount != v.count {
                problems.append(Diagnostic(at: e.location, "weight \(symbolText(e.name)) has \(v.count) values but type \(e.type)"))
            }
            if case .bytes(let b) = e.data, WeightStore.storageByteCount(of: e.type) != b.count {
                problems.append(Diagnostic(at: e.location, "weight \(symbolText(e.name)) has \(b.count) bytes but type \(e.type)"))
            }
        }
        var seen = Set<String>()
        for f in module.functions {
            if !seen.insert(f.name).inserted {
                problems.append(Diagnostic(at: f.location, "redefinition of function \(symbolText(f.name))"))
            }
            problems += diagnose(f, weights: module.weights)
        }
        return problems
    }

    public func diagnose(_ f: Function, weights: WeightStore?) -> [Diagnostic] {
        var problems: [Diagnostic] = []
        var defined: [String: NMType] = [:]
        for a in f.arguments {
            if defined[a.name] != nil { problems.append(Diagnostic(at: f.location, "argument %\(a.name) is declared twice")) }
            defined[a.name] = a.type
        }
        /// Values an op took over (`kv.append`'s cache) and where.
        var consumedBy: [String: (String, SourceLocation)] = [:]
        func checkUse(_ v: Value, at location: SourceLocation) -> Bool {
            if let (op, place) = consumedBy[v.name] {
                problems.append(Diagnostic(at: location, "%\(v.name) is used after '\(op)' took it over",
                                           notes: [Diagnostic(.note, at: place, "taken over here")]))
                return false
            }
            guard let type = defined[v.name] else {
                problems.append(Diagnostic(at: location, "use of %\(v.name) before its definition (or it is never defined)"))
                return false
            }
            guard type == v.type else {
                problems.append(Diagnostic(at: location, "%\(v.name) is used as \(v.type) but defined as \(type)"))
                return false
            }
            return true
        }
        for op in f.body {
            var usesOK = true
            for v in op.operands where !checkUse(v, at: op.location) { usesOK = false }
            if usesOK {
                do { try verify(op, weights: weights) } catch let d as Diagnostic { problems.append(d) } catch {
                    problems.append(Diagnostic(at: op.location, "\(error)"))
                }
            }
            if let def = registry[op.name] {
                for (v, spec) in zip(op.operands, def.operandSpecs(forCount: op.operands.count)) where spec.consumed {
                    consumedBy[v.name] = (op.name, op.location)
                }
            }
            for r in op.results {
                if defined[r.name] != nil {
                    problems.append(Diagnostic(at: op.location, "redefinition of value %\(r.name)"))
                }
                defined[r.name] = r.type
            }
        }
        for v in f.returnValues { _ = checkUse(v, at: f.returnLocation) }
        return problems
    }

    /// Checks one op whose operands are known to be defined.
    public func verify(_ op: Operation, weights: WeightStore?) throws {
        func fail(_ message: String) -> Diagnostic { Diagnostic(at: op.location, "'\(op.name)': " + message) }
        guard let def = registry[op.name] else { throw fail("unknown operation") }
        let range = def.operandCountRange
        guard range.contains(op.operands.count) else {
            let expected = range.lowerBound == range.upperBound ? "\(range.lowerBound)"
                : range.upperBound > 1000 ? "at least \(range.lowerBound)" : "\(range.lowerBound) to \(range.upperBound)"
            throw fail("expected \(expected) operand(s), got \(op.operands.count)")
        }
        for (value, spec) in zip(op.operands, def.operandSpecs(forCount: op.operands.count)) where !spec.kind.matches(value.type) {
            throw fail("operand '\(spec.name)' (%\(value.name)) must be a \(spec.kind.rawValue), got \(value.type)")
        }
        for key in op.attributes.keys.sorted() {
            guard let spec = def.attributeSpec(key) else {
                let known = def.attributes.map(\.name)
                throw fail("unknown attribute '\(key)'" + (known.isEmpty ? " (the op takes none)" : " (expected one of: \(known.joined(separator: ", ")))"))
            }
            if let value = op.attributes[key], !spec.kind.matches(value) {
                throw fail("attribute '\(key)' must be \(article(spec.kind.rawValue)) \(spec.kind.rawValue), got \(value)")
            }
        }
        for spec in def.attributes where spec.required && op.attributes[spec.name] == nil {
            throw fail("missing required attribute '\(spec.name)'")
        }
        guard op.results.count == def.results.count else {
            throw fail("expected \(def.results.count) result(s), got \(op.results.count)")
        }
        let inferred: [NMType]?
        do {
            inferred = try def.typeRule(OpContext(op: op, definition: def, weights: weights))
        } catch {
            throw fail(error.message)
        }
        guard let inferred else { return }
        for (i, (declared, expected)) in zip(op.results, inferred).enumerated() where !declared.type.isCompatible(with: expected) {
            let which = def.results.count > 1 ? "result '\(def.results[i])'" : "result"
            throw fail("\(which) type \(declared.type) does not match the inferred \(expected)")
        }
    }

    private func article(_ word: String) -> String {
        guard let first = word.first else { return "a" }
        // "an N:M pattern": N reads with a vowel sound.
        return "aeiouAEIOUN".contains(first) ? "an" : "a"
    }
}

extension Parser {
    /// Parses and verifies: what every tool does with text it reads.
    public static func parseAndVerify(_ source: SourceText, registry: OpRegistry = .standard) throws -> Module {
        let module = try parse(source, registry: registry)
        try Verifier(registry: registry).verify(module)
        return module
    }
}
