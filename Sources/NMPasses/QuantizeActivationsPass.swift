import NMIR

/// `quantize-activations{bits=8}`: makes every 4-bit `quant.linear` quantize its input per token
/// to `bits`-bit integers and sum integer products, the arithmetic of integer accelerators (the
/// HLS systolic array multiplies INT4 weights by INT8 activations).
///
/// Before:
///
///     %y = quant.linear %x, %q, %s {bits = 4, group = 128, nm = 2:4} : tensor<?x1536xf32>
///
/// After:
///
///     %y = quant.linear %x, %q, %s {bits = 4, group = 128, nm = 2:4, act_bits = 8} : tensor<?x1536xf32>
///
/// The semantics of `act_bits` (per-token symmetric scale, exact group sums, scales applied per
/// group) are in ir-specs/quant.md. Only the attribute changes; weights stay as they are.
/// `quant.linear` ops on 8-bit weights keep f32 activations.
public struct QuantizeActivationsPass: Pass {
    public static let info = PassInfo(
        name: "quantize-activations",
        summary: "quantize the inputs of 4-bit quant.linear ops per token to integers (act_bits), for integer accelerators",
        options: [PassOptionSpec("bits", .int, default: .int(8), "bits of the activation integers, 2 to 8")],
        statistics: [("quantized-linears", "quant.linear ops that now quantize their activations")])

    public init() {}

    public static func validate(_ options: PassOptions) throws(OptionError) {
        let bits = options.int("bits")
        if !(2...8).contains(bits) { throw OptionError(option: "bits", "must be from 2 to 8, got \(bits)") }
    }

    public func run(on module: inout Module, context: PassContext) throws {
        let bits = context.options.int("bits")
        for f in module.functions.indices {
            for i in module.functions[f].body.indices {
                let op = module.functions[f].body[i]
                guard op.name == "quant.linear", op.attributes["bits"]?.intValue == 4,
                      op.attributes["act_bits"]?.intValue != bits else { continue }
                module.functions[f].body[i].attributes["act_bits"] = .int(bits)
                context.count("quantized-linears")
            }
        }
    }
}
