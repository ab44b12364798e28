import NMIR
import NMPasses

/// The text of `--list-ops`, `--list-passes` and the pass section of `nmc-opt --help`.
public enum RegistryListing {
    public static func ops(_ registry: OpRegistry = .standard) -> String {
        var out = ""
        for dialect in registry.dialects {
            out += "\(dialect) dialect:\n"
            for def in registry.definitions where def.dialect == dialect {
                out += "  \(def.name) - \(def.summary)\n"
                if !def.operands.isEmpty {
                    let operands = def.operands.map { o -> String in
                        let arity = o.arity == .optional ? "?" : o.arity == .variadic ? "..." : ""
                        return "\(o.name)\(arity): \(o.kind == .packed ? "quant.packed" : o.kind.rawValue)"
                    }
                    out += "      operands: " + operands.joined(separator: ", ") + "\n"
                }
                if !def.attributes.isEmpty {
                    let attrs = def.attributes.map { a -> String in
                        var s = "\(a.name): \(a.kind.rawValue)"
                        if let d = a.defaultValue { s += " = \(d)" } else if a.required { s += " (required)" } else { s += " (optional)" }
                        return s
                    }
                    out += "      attributes: " + attrs.joined(separator: ", ") + "\n"
                }
                out += "      results: " + def.results.joined(separator: ", ") + "\n"
            }
        }
        return out
    }

    public static func passes(_ registry: PassRegistry = DriverPasses.registry) -> String {
        var out = ""
        for pass in registry.passes {
            let info = pass.info
            out += "  \(info.name) - \(info.summary)\n"
            for o in info.options {
                out += "      \(o.name)=<\(o.kind.rawValue)> (default \(optionDefault(o.defaultValue))): \(o.help)"
                if !o.choices.isEmpty { out += " [\(o.choices.joined(separator: "|"))]" }
                out += "\n"
            }
            for s in info.statistics { out += "      statistic \(s.name): \(s.help)\n" }
        }
        return out
    }

    private static func optionDefault(_ a: Attribute) -> String {
        if case .string(let s) = a { return s.isEmpty ? "\"\"" : s }
        return a.description
    }
}
