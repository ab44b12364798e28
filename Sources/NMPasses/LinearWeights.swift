import NMIR

/// A store weight that some `nn.linear` reads as its weight operand: `%w = nn.weight {name = @W}`
/// then `nn.linear %x, %w`. The compression passes rewrite these.
public struct LinearWeight: Sendable {
    /// Where `nn.weight {name = @W}` defines a value.
    public struct Definition: Sendable {
        public var function: Int
        public var op: Int
        /// The defined value's name.
        public var value: String
    }

    public var name: String
    /// Every `nn.weight` op that reads the weight, in every function (also those whose value is
    /// not used by a linear layer).
    public var definitions: [Definition]
    /// Whether anything else reads the weight: another op (a tied embedding's `nn.embedding`),
    /// `nn.linear` as its input rather than its weight, or a `return`. Rewriting such a weight
    /// would change those readers too.
    public var isShared: Bool
}

public enum LinearWeights {
    /// The weights read as the weight operand of at least one `nn.linear`, in the store's order.
    public static func find(in module: Module) -> [LinearWeight] {
        var definitions: [String: [LinearWeight.Definition]] = [:]
        var linearUse = Set<String>()
        var otherUse = Set<String>()
        for (fi, f) in module.functions.enumerated() {
            var weightOf: [String: String] = [:]  // value name → weight name
            for (oi, op) in f.body.enumerated() {
                for (j, v) in op.operands.enumerated() {
                    guard let weight = weightOf[v.name] else { continue }
                    if op.name == "nn.linear" && j == 1 { linearUse.insert(weight) } else { otherUse.insert(weight) }
                }
                if op.name == "nn.weight", let weight = op.attributes["name"]?.symbolValue, let r = op.result {
                    weightOf[r.name] = weight
                    definitions[weight, default: []].append(.init(function: fi, op: oi, value: r.name))
                }
            }
            for v in f.returnValues { if let weight = weightOf[v.name] { otherUse.insert(weight) } }
        }
        var names = module.weights.names.filter { linearUse.contains($0) }
        // A weight read but not in the store is the verifier's business; keep it visible anyway.
        names += linearUse.subtracting(names).sorted()
        return names.map { LinearWeight(name: $0, definitions: definitions[$0] ?? [], isShared: otherUse.contains($0)) }
    }
}
