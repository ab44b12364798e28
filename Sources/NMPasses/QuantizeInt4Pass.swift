import NMIR

/// `quantize-int4{group=128 symmetric=true method=rtn|gptq damp=0.01 blocksize=128 act-order=true clip-search=false include=… exclude=…}`:
/// replaces the f32 weights of linear layers by 4-bit integers quantized in groups, each group of
/// `group` consecutive input columns with one f16 scale (and, asymmetric, an i8 zero point).
///
/// Before:
///
///     weights { @w : tensor<1536x576xf32, nm = 2:4> }
///     %w = nn.weight {name = @w} : tensor<1536x576xf32, nm = 2:4>
///     %y = nn.linear %x, %w : tensor<?x1536xf32>
///
/// After (`quantize-int4{group=128}`):
///
///     weights {
///       @w.q : quant.packed<1536x576xi4, group = 128, scale = f16, zero_point = false, nm = 2:4>
///       @w.scales : tensor<1536x5xf16>
///     }
///     %w.q = nn.weight {name = @w.q} : quant.packed<1536x576xi4, group = 128, scale = f16, zero_point = false, nm = 2:4>
///     %w.scales = nn.weight {name = @w.scales} : tensor<1536x5xf16>
///     %w = quant.dequant %w.q, %w.scales : tensor<1536x576xf32, nm = 2:4>
///     %y = nn.linear %x, %w : tensor<?x1536xf32>
///
/// A weight is quantized when it is an f32 matrix (with or without an `nm` encoding) whose every
/// read (`nn.weight`, in any function) is used only as the weight operand of `nn.linear` ops, and
/// its name matches `include` (empty: every name) and none of `exclude` (comma-separated globs,
/// as for `nm-prune`). The `nn.linear` ops
/// stay as they are; `fuse-dequant-matmul` turns them into `quant.linear`. The f32 weight leaves
/// the store; in its place come `@W.q` (bytes in the layout of ir-specs/README.md), `@W.scales`
/// and, asymmetric, `@W.zeros`. Groups count logical columns; the last one is shorter when
/// `group` does not divide the input dim (576 = 4.5 · 128 in SmolLM2).
///
/// N:M weights store only the kept values: the non-zeros of each group of M, filled up with the
/// lowest-index zeros; a group's scale comes from its kept values only. Rounding rules, the
/// asymmetric range and the all-zero group are described at `GroupQuantizer`.
///
/// `method=gptq` needs `@W.calib.hessian : tensor<CxCxf32>` (Σ x xᵀ over calibration inputs,
/// written by `calibrate{file=… hessian=true}`); see `GPTQ`. With `act-order=true` (the default)
/// GPTQ visits the columns by decreasing Hessian diagonal, with each group's scale fixed from the
/// original weights before the loop; the output has the same format and grid as without it (and
/// as RTN). `clip-search=true` chooses each group's range by the least rounding error (see
/// `GroupQuantizer`), for RTN and GPTQ alike. The calibration data stays in the store (`dce`
/// removes it).
public struct QuantizeInt4Pass: Pass {
    public static let info = PassInfo(
        name: "quantize-int4",
        summary: "quantize the f32 weights of linear layers to 4-bit integers in groups (RTN or GPTQ), with f16 scales",
        options: [
            PassOptionSpec("group", .int, default: .int(128), "input columns per scale group (the last group may be shorter)"),
            PassOptionSpec("symmetric", .bool, default: .bool(true), "scales only (true) or scales and i8 zero points (false)"),
            PassOptionSpec("method", .string, default: .string("rtn"), choices: ["rtn", "gptq"],
                           "round to nearest, or GPTQ with the Hessian @W.calib.hessian (run calibrate{hessian=true} first)"),
            PassOptionSpec("damp", .float, default: .float(0.01), "gptq: fraction of the mean Hessian diagonal added to its diagonal"),
            PassOptionSpec("blocksize", .int, default: .int(128), "gptq: columns per lazy-update block"),
            PassOptionSpec("act-order", .bool, default: .bool(true),
                           "gptq: visit columns by decreasing Hessian diagonal, group scales fixed before the loop (same format)"),
            PassOptionSpec("clip-search", .bool, default: .bool(false),
                           "choose each group's range (clipping) by the least rounding error instead of min and max (rtn and gptq)"),
            PassOptionSpec("include", .string, default: .string(""),
                           "comma-separated globs (* and ?) of the weights to quantize; empty: every linear weight"),
            PassOptionSpec("exclude", .string, default: .string("token_embd.weight,output.weight"),
                           "comma-separated globs of weights to leave in f32"),
        ],
        statistics: [("quantized-weights", "weights quantized to 4 bits"),
                     ("bytes-before", "f32 bytes of the quantized weights"),
                     ("bytes-after", "bytes of their packed values, N:M indices, scales and zero points"),
                     ("all-zero-groups", "groups with no non-zero (kept) value, stored as scale 1 and q = 0")])

    public init() {}

    public static func validate(_ options: PassOptions) throws(OptionError) {
        let group = options.int("group")
        if group < 1 { throw OptionError(option: "group", "must be ≥ 1, got \(group)") }
        let damp = options.float("damp")
        if !(damp >= 0) || !damp.isFinite { throw OptionError(option: "damp", "must be a finite number ≥ 0, got \(damp)") }
        let blocksize = options.int("blocksize")
        if blocksize < 1 { throw OptionError(option: "blocksize", "must be ≥ 1, got \(blocksize)") }
    }

    public func run(on module: inout Module, context: PassContext) throws {
        let options = context.options
        let quantizer = GroupQuantizer(group: options.int("group"), symmetric: options.bool("symmetric"),
                                       clipSearch: options.bool("clip-search"))
        let include = NameGlob.list(options.string("include")), exclude = NameGlob.list(options.string("exclude"))
        let useGPTQ = options.string("method") == "gptq"
        let candidates = Self.linearOnlyWeights(module)
        var replacements: [String: [WeightEntry]] = [:]
        // Consecutive weights often read the same input (q, k, v; gate, up): factor its Hessian once.
        var lastFactor: (hessian: [Float], factor: GPTQ.Factor)? = nil
        for (name, reader) in candidates where (include.isEmpty || include.anyMatches(name)) && !exclude.anyMatches(name) {
            func fail(_ message: String) -> PassError { PassError(function: reader.function, op: reader.op, message) }
            guard let entry = module.weights[name], case .tensor(let type) = entry.type,
                  let rows = type.shape[0].value, let columns = type.shape[1].value else { continue }
            if quantizer.group > columns {
                throw fail("group = \(quantizer.group) is larger than the input dim \(columns) of @\(name) (option 'group' of quantize-int4)")
            }
            for suffix in ["q", "scales", "zeros"] where module.weights["\(name).\(suffix)"] != nil {
                throw fail("cannot quantize @\(name): the store already has a weight @\(name).\(suffix)")
            }
            guard let floats = entry.floatValues else {
                throw fail("cannot quantize @\(name): its data is not in memory (\(entry.data == .elided ? "elided" : "external"))")
            }
            if let bad = floats.firstIndex(where: { !$0.isFinite }) {
                throw fail("cannot quantize @\(name): element [\(bad / columns), \(bad % columns)] is \(floats[bad])")
            }
            let weights = floats.map(Double.init)
            var kept: NMKeptPositions? = nil
            if let nm = type.nm {
                guard columns % nm.m == 0 else {
                    throw fail("cannot quantize @\(name): its input dim \(columns) is not a multiple of M = \(nm.m) of nm = \(nm)")
                }
                do {
                    kept = try NMKeptPositions(weights: weights, rows: rows, columns: columns, pattern: nm)
                } catch {
                    throw fail("@\(name) is declared nm = \(nm) but row \(error.row) has \(error.nonZeros) non-zeros in columns \(error.column) ..< \(error.column + nm.m)")
                }
            }
            let quantized: GroupQuantized
            if useGPTQ {
                let hessian = try Self.hessian(of: name, columns: columns, in: module, fail)
                let gptq = GPTQ(quantizer: quantizer, damp: options.float("damp"), blocksize: options.int("blocksize"),
                                actOrder: options.bool("act-order"))
                let factor: GPTQ.Factor
                if let cached = lastFactor, cached.hessian == hessian {
                    factor = cached.factor
                } else {
                    do {
                        factor = try gptq.factor(hessian: hessian, columns: columns)
                    } catch {
                        switch error {
                        case .notPositiveDefinite(let column):
                            throw fail("the Hessian of @\(name) is not positive definite after dampening (column \(column)): raise damp (now \(options.float("damp")))")
                        }
                    }
                    lastFactor = (hessian, factor)
                }
                quantized = gptq.quantize(weights, rows: rows, columns: columns, factor: factor, kept: kept?.mask)
            } else {
                quantized = quantizer.quantizeRTN(weights, rows: rows, columns: columns, kept: kept?.mask)
            }
            let packedType = PackedWeightType(rows: rows, columns: columns, storage: .i4, group: quantizer.group, scale: .f16,
                                              zeroPoint: !quantizer.symmetric, nm: type.nm)
            var entries = [
                WeightEntry(name: "\(name).q", type: .packed(packedType),
                            data: .bytes(PackedWeightWriter.bytes(of: quantized, type: packedType, kept: kept)), location: entry.location),
                WeightEntry(name: "\(name).scales", type: .tensor(packedType.scaleType),
                            data: .bytes(WeightEncoding.encode(quantized.scales.map(Double.init), as: .f16)), location: entry.location),
            ]
            if let zeros = quantized.zeros {
                entries.append(WeightEntry(name: "\(name).zeros", type: .tensor(packedType.zeroPointType),
                                           data: .bytes(zeros.map { UInt8(bitPattern: $0) }), location: entry.location))
            }
            replacements[name] = entries
            let zeroGroups = Self.allZeroGroups(weights, rows: rows, columns: columns, group: quantizer.group, kept: kept?.mask)
            if zeroGroups > 0 {
                context.count("all-zero-groups", by: zeroGroups)
                context.warn(at: reader.op.location, "@\(name): \(zeroGroups) of \(rows * quantizer.groups(columns: columns)) groups have no non-zero\(kept == nil ? "" : " kept") value; they are stored with scale 1 and q = 0 and dequantize to zeros")
            }
            context.count("quantized-weights")
            context.count("bytes-before", by: rows * columns * 4)
            context.count("bytes-after", by: entries.reduce(0) { $0 + (WeightStore.storageByteCount(of: $1.type) ?? 0) })
        }
        guard !replacements.isEmpty else { return }
        var store: [WeightEntry] = []
        for e in module.weights.entries { store += replacements[e.name] ?? [e] }
        module.weights = WeightStore(file: module.weights.file, entries: store)
        for i in module.functions.indices { Self.rewrite(&module.functions[i], replacements) }
    }

    /// Groups (of `group` columns, per row) whose values — the kept ones, under N:M — are all zero.
    static func allZeroGroups(_ weights: [Double], rows: Int, columns: Int, group: Int, kept: [Bool]?) -> Int {
        var count = 0
        for r in 0..<rows {
            for start in stride(from: 0, to: columns, by: group) {
                let range = r * columns + start ..< r * columns + min(start + group, columns)
                if range.allSatisfy({ weights[$0] == 0 || kept?[$0] == false }) { count += 1 }
            }
        }
        return count
    }

    /// Where a weight is read, for diagnostics.
    struct Reader {
        var function: String
        var op: Operation
    }

    /// The f32 matrices (with positive static dims) read only as `nn.linear` weights, in store
    /// order, each with its first read.
    static func linearOnlyWeights(_ module: Module) -> [(String, Reader)] {
        LinearWeights.find(in: module).compactMap { linear in
            guard !linear.isShared, let definition = linear.definitions.first,
                  case .tensor(let t)? = module.weights[linear.name]?.type, t.dtype == .f32, t.rank == 2,
                  let rows = t.shape[0].value, let columns = t.shape[1].value, rows > 0, columns > 0 else { return nil }
            let f = module.functions[definition.function]
            return (linear.name, Reader(function: f.name, op: f.body[definition.op]))
        }
    }

    /// The calibration Hessian of `name`.
    static func hessian(of name: String, columns: Int, in module: Module, _ fail: (String) -> PassError) throws -> [Float] {
        let hessianName = "\(name).calib.hessian"
        guard let entry = module.weights[hessianName] else {
            throw fail("method=gptq needs the Hessian @\(hessianName) of @\(name): run calibrate{file=… hessian=true} first")
        }
        let expected = TensorType([columns, columns], .f32)
        guard entry.type == .tensor(expected) else {
            throw fail("the Hessian @\(hessianName) is \(entry.type), expected \(expected)")
        }
        guard let values = entry.floatValues else {
            throw fail("the Hessian @\(hessianName) has no data in memory (\(entry.data == .elided ? "elided" : "external"))")
        }
        return values
    }

    /// Replaces each read of a quantized weight by reads of its parts and a `quant.dequant` that
    /// defines the same value, so its uses stay as they are.
    static func rewrite(_ f: inout Function, _ replacements: [String: [WeightEntry]]) {
        var used = f.definedNames
        func fresh(_ base: String) -> String {
            var name = base, n = 1
            while used.contains(name) {
                name = "\(base)_\(n)"
                n += 1
            }
            used.insert(name)
            return name
        }
        var body: [Operation] = []
        body.reserveCapacity(f.body.count)
        for op in f.body {
            guard op.name == "nn.weight", let name = op.attributes["name"]?.symbolValue, let parts = replacements[name],
                  let result = op.result else {
                body.append(op)
                continue
            }
            var operands: [Value] = []
            for (part, suffix) in zip(parts, ["q", "scales", "zeros"]) {
                let value = Value(name: fresh("\(result.name).\(suffix)"), type: part.type)
                body.append(Operation(name: "nn.weight", results: [value], attributes: ["name": .symbol(part.name)], location: op.location))
                operands.append(value)
            }
            body.append(Operation(name: "quant.dequant", operands: operands, results: [result], location: op.location))
        }
        f.body = body
    }
}
