import NMIR

/// `test-fail{op=NAME}`: a testing aid that fails at the first op named NAME, after renaming the
/// op's first result to `%failed_here` so the dump of the failure shows the partial change.
/// It lets the tests exercise `--print-ir-after-failure` and pass-failure diagnostics.
///
/// Before (with `op=nn.silu`):
///
///     %a = nn.silu %x : tensor<4xf32>
///
/// After: the pipeline fails with `pass 'test-fail' failed: reached nn.silu in @f at 'nn.silu' (%a)`.
public struct TestFailPass: Pass {
    public static let info = PassInfo(
        name: "test-fail", summary: "testing aid: fail at the first op with the given name",
        options: [PassOptionSpec("op", .string, default: .string("nn.silu"), "the op name to fail at")])

    public init() {}

    public func run(on module: inout Module, context: PassContext) throws {
        let name = context.options.string("op")
        for fi in module.functions.indices {
            guard let i = module.functions[fi].body.firstIndex(where: { $0.name == name }) else { continue }
            let op = module.functions[fi].body[i]
            if let r = op.result {
                var renamed = r
                renamed.name = "failed_here"
                module.functions[fi].body[i].results[0] = renamed
                module.functions[fi].replaceAllUses(of: r.name, with: renamed)
            }
            throw PassError(function: module.functions[fi].name, op: op, "reached \(name)")
        }
    }
}
