/// The `quant` dialect: packed low-bit weights, their dequantization and the fused quantized linear.
enum QuantOps {
    static let all: [OpDefinition] = [dequant, linear]

    /// Checks scales (and zero points when the type has them) against a packed weight type.
    static func checkScales(_ ctx: OpContext, weight w: PackedWeightType, from index: Int) throws(OpError) {
        let scales = try ctx.tensor(index)
        guard scales.dtype == w.scale, scales.rank == 2,
              scales.shape[0].isCompatible(with: .known(w.rows)),
              scales.shape[1].isCompatible(with: .known(w.groupsPerRow)) else {
            throw OpError("scales must be \(w.scaleType) for \(w), got \(scales)")
        }
        let hasZeroPoints = ctx.operandCount > index + 1
        guard hasZeroPoints == w.zeroPoint else {
            throw OpError(w.zeroPoint ? "\(w) needs a zero_points operand" : "\(w) has no zero points, but a zero_points operand was given")
        }
        if hasZeroPoints {
            let z = try ctx.tensor(index + 1)
            guard NMType.tensor(z).isCompatible(with: .tensor(w.zeroPointType)) else {
                throw OpError("zero_points must be \(w.zeroPointType), got \(z)")
            }
        }
    }

    static func checkPacked(_ w: PackedWeightType) throws(OpError) {
        if let reason = w.invalidReason { throw OpError(reason) }
    }

    static let dequant = OpDefinition(
        "quant.dequant", "expands a packed weight to f32: (q - zero) · scale per group, zeros where N:M pruned",
        operands: [OperandSpec("w", .packed), OperandSpec("scales", .tensor, .single, "[out, groups]"),
                   OperandSpec("zero_points", .tensor, .optional, "[out, groups] i8, when the type has zero points")]
    ) { ctx throws(OpError) in
        let w = try ctx.packed(0)
        try checkPacked(w)
        try checkScales(ctx, weight: w, from: 1)
        return [.tensor(w.dequantizedType)]
    }

    static let linear = OpDefinition(
        "quant.linear", "x · dequant(w)ᵀ computed directly on the packed weight",
        operands: [OperandSpec("x"), OperandSpec("w", .packed), OperandSpec("scales", .tensor, .single, "[out, groups]"),
                   OperandSpec("zero_points", .tensor, .optional, "[out, groups] i8, when the type has zero points")],
        attributes: [AttributeSpec("bits", .int, required: true, "must equal the weight type's bits"),
                     AttributeSpec("group", .int, required: true, "must equal the weight type's group"),
                     AttributeSpec("nm", .pattern, "must equal the weight type's N:M; absent for dense"),
                     AttributeSpec("act_bits", .int, "activations quantized per token to this many bits (2 to 8), integer sums; absent: f32")]
    ) { ctx throws(OpError) in
        let x = try ctx.tensor(0), w = try ctx.packed(1)
        if let a = ctx.attribute("act_bits") {
            guard let bits = a.intValue, (2...8).contains(bits) else { throw OpError("act_bits must be an integer from 2 to 8, got \(a)") }
        }
        try checkPacked(w)
        try ShapeRules.requireMinRank(x, 1, "x")
        try ShapeRules.requireFloat(x, "x")
        _ = try ShapeRules.match(x.shape[x.rank - 1], .known(w.columns), "input features of x against w")
        try checkScales(ctx, weight: w, from: 2)
        guard ctx.int("bits") == w.bits else { throw OpError("bits = \(ctx.int("bits") ?? 0) does not match \(w)") }
        guard ctx.int("group") == w.group else { throw OpError("group = \(ctx.int("group") ?? 0) does not match \(w)") }
        guard ctx.attribute("nm")?.patternValue == w.nm else {
            throw OpError("nm = \(ctx.attribute("nm")?.description ?? "none") does not match \(w)")
        }
        return [.tensor(TensorType(shape: x.shape.dropLast() + [.known(w.rows)], dtype: .f32))]
    }
}

/// The `kv` dialect: the attention key/value cache.
enum KVOps {
    static let all: [OpDefinition] = [append]

    static let append = OpDefinition(
        "kv.append", "writes x at positions start ..< start+T of the cache; returns the cache and its contents 0 ..< start+T",
        operands: [OperandSpec("cache", .kvCache, .single, "taken over: updated in place, not usable afterwards", consumed: true),
                   OperandSpec("x", .tensor, .single, "[tokens, heads, head_dim]"),
                   OperandSpec("start", .tensor, .single, "tensor<i32>")],
        results: ["cache", "contents"]
    ) { ctx throws(OpError) in
        let cache = try ctx.kvCache(0), x = try ctx.tensor(1), start = try ctx.tensor(2)
        try ShapeRules.requireRank(x, 3, "x")
        try ShapeRules.scalar(start, "start")
        guard x.dtype == cache.dtype else { throw OpError("x has element type \(x.dtype) but the cache holds \(cache.dtype)") }
        _ = try ShapeRules.match(x.shape[1], .known(cache.heads), "heads of x against the cache")
        _ = try ShapeRules.match(x.shape[2], .known(cache.headDim), "head_dim of x against the cache")
        if let t = x.shape[0].value, t > cache.capacity { throw OpError("\(t) tokens exceed the cache capacity \(cache.capacity)") }
        return [.kvCache(cache), .tensor(TensorType([nil, cache.heads, cache.headDim], cache.dtype))]
    }
}
