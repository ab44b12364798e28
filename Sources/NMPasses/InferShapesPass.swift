import NMIR

/// `infer-shapes`: replaces `?` dims of op results by the sizes the op type rules infer from
/// the operands, in program order so refinements flow to later ops and the function's results.
///
/// Before:
///
///     func @f(%x: tensor<8x576xf32>, %w: tensor<1536x576xf32>) -> tensor<?x1536xf32> {
///       %y = nn.linear %x, %w : tensor<?x1536xf32>
///       return %y
///     }
///
/// After:
///
///     func @f(%x: tensor<8x576xf32>, %w: tensor<1536x576xf32>) -> tensor<8x1536xf32> {
///       %y = nn.linear %x, %w : tensor<8x1536xf32>
///       return %y
///     }
public struct InferShapesPass: Pass {
    public static let info = PassInfo(
        name: "infer-shapes", summary: "refine dynamic result dims from operand shapes, in program order",
        statistics: [("refined", "result types made more precise")])

    public init() {}

    public func run(on module: inout Module, context: PassContext) throws {
        let registry = OpRegistry.standard
        for fi in module.functions.indices {
            var f = module.functions[fi]
            var current: [String: Value] = [:]
            for i in f.body.indices {
                var op = f.body[i]
                op.operands = op.operands.map { current[$0.name] ?? $0 }
                if let def = registry[op.name] {
                    let inferred: [NMType]?
                    do {
                        inferred = try def.typeRule(OpContext(op: op, definition: def, weights: module.weights))
                    } catch {
                        throw PassError(function: f.name, op: op, "cannot infer result types: \(error.message)")
                    }
                    for (j, type) in (inferred ?? []).enumerated() where j < op.results.count {
                        let declared = op.results[j].type
                        guard declared.isCompatible(with: type) else {
                            throw PassError(function: f.name, op: op, "declared \(declared) conflicts with inferred \(type)")
                        }
                        let refined = declared.refined(by: type)
                        if refined != declared {
                            op.results[j].type = refined
                            current[op.results[j].name] = op.results[j]
                            context.count("refined")
                        }
                    }
                }
                f.body[i] = op
            }
            f.returnValues = f.returnValues.map { current[$0.name] ?? $0 }
            module.functions[fi] = f
        }
    }
}
