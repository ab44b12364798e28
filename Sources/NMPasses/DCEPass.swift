import NMIR

/// `dce`: erases ops whose results are never used and weights that no function reads.
///
/// Before:
///
///     weights { @used : tensor<4xf32> = dense<[…]>  @unused : tensor<4xf32> = dense<[…]> }
///     %w = nn.weight {name = @used} : tensor<4xf32>
///     %dead = nn.silu %x : tensor<4xf32>
///     %y = nn.mul %x, %w : tensor<4xf32>
///     return %y
///
/// After:
///
///     weights { @used : tensor<4xf32> = dense<[…]> }
///     %w = nn.weight {name = @used} : tensor<4xf32>
///     %y = nn.mul %x, %w : tensor<4xf32>
///     return %y
public struct DCEPass: Pass {
    public static let info = PassInfo(
        name: "dce", summary: "erase ops whose results are unused and weights no function reads",
        statistics: [("erased-ops", "dead ops erased"), ("erased-weights", "unreferenced weights removed from the store")])

    public init() {}

    public func run(on module: inout Module, context: PassContext) throws {
        var referenced = Set<String>()
        for i in module.functions.indices {
            context.count("erased-ops", by: eraseDeadOps(&module.functions[i]))
            for op in module.functions[i].body where op.name == "nn.weight" {
                if let name = op.attributes["name"]?.symbolValue { referenced.insert(name) }
            }
        }
        for name in module.weights.names where !referenced.contains(name) {
            module.weights[name] = nil
            context.count("erased-weights")
        }
    }
}
