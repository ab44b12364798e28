import NMIR

/// `fuse-dequant-matmul`: computes linear layers directly on packed weights instead of
/// expanding them to f32 first.
///
/// Before:
///
///     %q = nn.weight {name = @w.q} : quant.packed<1536x576xi4, group = 128, scale = f16, zero_point = false, nm = 2:4>
///     %s = nn.weight {name = @w.scales} : tensor<1536x5xf16>
///     %w = quant.dequant %q, %s : tensor<1536x576xf32, nm = 2:4>
///     %y = nn.linear %x, %w : tensor<?x1536xf32>
///
/// After:
///
///     %q = nn.weight {name = @w.q} : quant.packed<1536x576xi4, group = 128, scale = f16, zero_point = false, nm = 2:4>
///     %s = nn.weight {name = @w.scales} : tensor<1536x5xf16>
///     %y = quant.linear %x, %q, %s {bits = 4, group = 128, nm = 2:4} : tensor<?x1536xf32>
///
/// Every `nn.linear` whose weight operand is a `quant.dequant` result becomes a `quant.linear`
/// on the dequant's operands (zero points too), with `bits`, `group` and `nm` from the packed
/// type; the dequant goes once nothing else uses it. A dequant with another use (an
/// `nn.matmul`, an `nn.linear` that takes it as its input, a return) stays for that use; so does
/// an `nn.linear` whose result is not f32 (`quant.linear` always yields f32).
public struct FuseDequantMatmulPass: Pass {
    public static let info = PassInfo(
        name: "fuse-dequant-matmul",
        summary: "turn nn.linear over quant.dequant into quant.linear on the packed weight",
        statistics: [("fused", "nn.linear ops rewritten to quant.linear"),
                     ("not-fused", "quant.dequant ops kept because some use is not an nn.linear weight operand")])

    public init() {}

    public func run(on module: inout Module, context: PassContext) throws {
        for i in module.functions.indices { fuse(&module.functions[i], context) }
    }

    private func fuse(_ f: inout Function, _ context: PassContext) {
        var dequants: [String: Operation] = [:]
        var fusedFrom = Set<String>()
        for i in f.body.indices {
            let op = f.body[i]
            if op.name == "quant.dequant", let r = op.result, op.operands.count >= 2 {
                dequants[r.name] = op
                continue
            }
            guard op.name == "nn.linear", op.operands.count == 2, let dequant = dequants[op.operands[1].name],
                  let packed = dequant.operands[0].type.packed, op.results.count == 1,
                  op.results[0].type.tensor?.dtype == .f32 else { continue }
            var attributes: [String: Attribute] = ["bits": .int(packed.bits), "group": .int(packed.group)]
            if let nm = packed.nm { attributes["nm"] = .pattern(nm) }
            f.body[i] = Operation(name: "quant.linear", operands: [op.operands[0]] + dequant.operands, results: op.results,
                                  attributes: attributes, location: op.location)
            fusedFrom.insert(op.operands[1].name)
            context.count("fused")
        }
        let uses = f.useCounts()
        f.body.removeAll { op in
            guard op.name == "quant.dequant", let r = op.result, fusedFrom.contains(r.name) else { return false }
            return uses[r.name, default: 0] == 0
        }
        for op in f.body where op.name == "quant.dequant" {
            if let r = op.result, uses[r.name, default: 0] > 0 { context.count("not-fused") }
        }
    }
}
