import Foundation
import NMFrontend
import NMInterpreter
import NMIR
import NMPasses

/// `calibrate{file=… samples=64 seq=512 hessian=false}`: runs `@prefill` through the reference
/// interpreter over calibration text and records, for the input x of every `nn.linear` whose
/// weight is `nn.weight {name = @W}`, what the compression methods need:
///
/// - `@W.calib.sqnorm : tensor<Kxf32>`: Σ x_k² over the calibration tokens (Wanda's ‖x_k‖²),
/// - `@W.calib.hessian : tensor<KxKxf32>`: Σ x xᵀ (SparseGPT's and GPTQ's Hessian), with `hessian=true`.
///
/// Before: `%y = nn.linear %x, %w` with `%w = nn.weight {name = @blk.0.attn_q.weight}`.
/// After: the same function; the weight store gains `@blk.0.attn_q.weight.calib.sqnorm` (and
/// `.calib.hessian`). They are plain weights, so dumps show them (elided) and `dce` removes them
/// once no pass needs them.
///
/// The text is tokenized with the model's tokenizer (found through the `tokenizer` or
/// `module-directory` environment entry) and cut into `samples` windows of `seq` tokens spread
/// evenly over it; each window runs from an empty KV cache. Statistics come from the model as it
/// is when the pass runs (one pass over the data, not layer by layer). Use only
/// `wikitext2-valid.txt` (never the test split) for calibration.
public struct CalibratePass: Pass {
    public static let info = PassInfo(
        name: "calibrate",
        summary: "run the model over calibration text and record per-linear input statistics (squared norms, Hessians)",
        options: [PassOptionSpec("file", .string, default: .string(""), "calibration text (use wikitext2-valid.txt)"),
                  PassOptionSpec("samples", .int, default: .int(64), "windows of text"),
                  PassOptionSpec("seq", .int, default: .int(512), "tokens per window"),
                  PassOptionSpec("hessian", .bool, default: .bool(false), "also record Σ x xᵀ (for sparsegpt and gptq)")],
        statistics: [("linears", "linear weights given statistics"), ("tokens", "calibration tokens run")])

    public init() {}

    public static func validate(_ options: PassOptions) throws(OptionError) {
        if options.string("file").isEmpty { throw OptionError(option: "file", "give the calibration text: calibrate{file=PATH}") }
        if options.int("samples") < 1 { throw OptionError(option: "samples", "must be ≥ 1, got \(options.int("samples"))") }
        if options.int("seq") < 1 { throw OptionError(option: "seq", "must be ≥ 1, got \(options.int("seq"))") }
    }

    public func run(on module: inout Module, context: PassContext) throws {
        let file = context.options.string("file"), samples = context.options.int("samples"), seq = context.options.int("seq")
        let wantHessian = context.options.bool("hessian")
        guard let prefill = module.function(named: "prefill") else {
            throw PassError("calibration runs @prefill, which the module does not have")
        }
        guard let tokenizerPath = context.environment["tokenizer"] ?? context.environment["module-directory"] else {
            throw PassError("no tokenizer: calibration needs the model's folder (tokenizer.nmc.json or tokenizer.json)")
        }
        let tokenizer = try TokenizerLoader.load(from: tokenizerPath)
        guard let data = FileManager.default.contents(atPath: file) else {
            throw PassError("cannot read the calibration text '\(file)'")
        }
        let tokens = tokenizer.encode(String(decoding: data, as: UTF8.self))
        guard tokens.count >= samples * seq else {
            throw PassError("calibration text '\(file)' has \(tokens.count) tokens; samples=\(samples) × seq=\(seq) needs \(samples * seq)")
        }

        // The weight behind each linear's weight operand, and the linears sharing an input value.
        var weightOf: [String: String] = [:]
        var linearsByInput: [String: [String]] = [:]
        for op in prefill.body {
            if op.name == "nn.weight", let name = op.attributes["name"]?.symbolValue, let r = op.result { weightOf[r.name] = name }
            if op.name == "nn.linear", op.operands.count == 2, let w = weightOf[op.operands[1].name],
               case .tensor(let t)? = module.weights[w]?.type, t.dtype == .f32 {
                linearsByInput[op.operands[0].name, default: []].append(w)
            }
        }
        var sqnorm: [String: [Double]] = [:]
        var hessian: [String: [Float]] = [:]
        let interpreter = Interpreter(module: module, weightsDirectory: context.environment["module-directory"])
        interpreter.observer = { op, operands in
            guard op.name == "nn.linear", linearsByInput[op.operands[0].name] != nil, let x = operands[0].tensor else { return }
            let key = op.operands[0].name
            let k = x.shape.last ?? 0, rows = k == 0 ? 0 : x.count / k
            var s = sqnorm[key] ?? [Double](repeating: 0, count: k)
            for r in 0..<rows { for j in 0..<k { let v = Double(x.floats[r * k + j]); s[j] += v * v } }
            sqnorm[key] = s
            if wantHessian {
                var h = hessian[key] ?? [Float](repeating: 0, count: k * k)
                BLAS.addGramUpper(x.floats, rows: rows, cols: k, into: &h)
                hessian[key] = h
            }
        }
        let caches = try prefill.arguments.dropFirst(2).map { arg -> RuntimeValue in
            guard case .kvCache(let type) = arg.type else { throw PassError("@prefill argument %\(arg.name) is not a kv.cache") }
            return .kvCache(KVCache(type: type))
        }
        let stride = samples > 1 ? (tokens.count - seq) / (samples - 1) : 0
        let progress = ProgressLine("calibrate", total: samples)
        for s in 0..<samples {
            let window = Array(tokens[(s * stride)..<(s * stride + seq)])
            _ = try interpreter.run("prefill", [.tensor(Tensor(shape: [seq], ints: window)), .tensor(.scalar(0))] + caches)
            progress.update(s + 1)
        }
        progress.finish()
        context.count("tokens", by: samples * seq)

        for (input, weights) in linearsByInput {
            guard let s = sqnorm[input] else { continue }
            if s.contains(where: { !$0.isFinite }) || (hessian[input]?.contains(where: { !$0.isFinite }) ?? false) {
                throw PassError("the inputs of @\(weights[0]) reached NaN or Inf during calibration; the model's weights or the text give non-finite activations")
            }
            var h = hessian[input]
            if h != nil { BLAS.symmetrize(&h!, size: s.count) }
            for w in weights {
                module.weights[w + ".calib.sqnorm"] = WeightEntry(name: w + ".calib.sqnorm", floats: s.map(Float.init),
                                                                  type: TensorType([s.count], .f32))
                if let h {
                    module.weights[w + ".calib.hessian"] = WeightEntry(name: w + ".calib.hessian", floats: h,
                                                                       type: TensorType([s.count, s.count], .f32))
                }
                context.count("linears")
            }
        }
    }
}
