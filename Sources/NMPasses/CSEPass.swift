import NMIR

/// `cse`: replaces an op by an earlier identical one (same name, operands, attributes and
/// result types). Every NMIR op is a pure function of its operands, so the two compute the same.
///
/// Before:
///
///     %a = nn.silu %x : tensor<?x8xf32>
///     %b = nn.silu %x : tensor<?x8xf32>
///     %c = nn.add %a, %b : tensor<?x8xf32>
///
/// After:
///
///     %a = nn.silu %x : tensor<?x8xf32>
///     %c = nn.add %a, %a : tensor<?x8xf32>
public struct CSEPass: Pass {
    public static let info = PassInfo(
        name: "cse", summary: "eliminate common subexpressions: an op identical to an earlier one reuses its results",
        statistics: [("eliminated", "ops replaced by an earlier identical op")])

    public init() {}

    private struct Key: Hashable {
        var name: String
        var operands: [String]
        /// Attributes as printed: `Attribute`'s == takes -0.0 for 0.0, which 1 / x tells apart.
        var attributes: [String: String]
        var resultTypes: [NMType]
    }

    public func run(on module: inout Module, context: PassContext) throws {
        for fi in module.functions.indices {
            var f = module.functions[fi]
            var seen: [Key: [Value]] = [:]
            var body: [Operation] = []
            var renamed: [String: Value] = [:]
            for var op in f.body {
                op.operands = op.operands.map { renamed[$0.name] ?? $0 }
                let key = Key(name: op.name, operands: op.operands.map(\.name), attributes: op.attributes.mapValues(\.description),
                              resultTypes: op.results.map(\.type))
                if let earlier = seen[key] {
                    for (r, e) in zip(op.results, earlier) { renamed[r.name] = e }
                    context.count("eliminated")
                } else {
                    seen[key] = op.results
                    body.append(op)
                }
            }
            f.body = body
            f.returnValues = f.returnValues.map { renamed[$0.name] ?? $0 }
            module.functions[fi] = f
        }
    }
}
