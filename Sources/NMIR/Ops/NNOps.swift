/// The `nn` dialect: model-level operations of a LLaMA decoder.
enum NNOps {
    static let all: [OpDefinition] = [weight, embedding, rmsNorm, linear, matmul] + elementwise + [silu, softmax, rope, attention]

    static let weight = OpDefinition(
        "nn.weight", "reads a weight of the module's weight store",
        attributes: [AttributeSpec("name", .symbol, required: true, "the weight, `@name`")]
    ) { ctx throws(OpError) in
        guard let name = ctx.attribute("name")?.symbolValue else { throw OpError("missing attribute 'name'") }
        guard let weights = ctx.weights else { return nil }
        guard let entry = weights[name] else { throw OpError("unknown weight \(symbolText(name))") }
        return [entry.type]
    }

    static let embedding = OpDefinition(
        "nn.embedding", "looks up rows of a table by token id",
        operands: [OperandSpec("table", .tensor, .single, "[vocab, dim], float"),
                   OperandSpec("ids", .tensor, .single, "token ids, i32")]
    ) { ctx throws(OpError) in
        let table = try ctx.tensor(0), ids = try ctx.tensor(1)
        try ShapeRules.requireRank(table, 2, "table")
        try ShapeRules.requireFloat(table, "table")
        try ShapeRules.requireDType(ids, .i32, "ids")
        return [.tensor(TensorType(shape: ids.shape + [table.shape[1]], dtype: .f32))]
    }

    static let rmsNorm = OpDefinition(
        "nn.rms_norm", "x / sqrt(mean(x²) + eps) · weight over the last dimension",
        operands: [OperandSpec("x"), OperandSpec("weight", .tensor, .single, "[dim]")],
        attributes: [AttributeSpec("eps", .float, default: .float(1e-5), "added to the mean square")]
    ) { ctx throws(OpError) in
        let x = try ctx.tensor(0), w = try ctx.tensor(1)
        try ShapeRules.requireMinRank(x, 1, "x")
        try ShapeRules.requireFloat(x, "x")
        try ShapeRules.requireRank(w, 1, "weight")
        try ShapeRules.requireFloat(w, "weight")
        _ = try ShapeRules.match(x.shape[x.rank - 1], w.shape[0], "weight length against the last dim of x")
        guard let eps = ctx.float("eps"), eps >= 0 else { throw OpError("eps must be ≥ 0") }
        return [.tensor(TensorType(shape: x.shape, dtype: x.dtype))]
    }

    static let linear = OpDefinition(
        "nn.linear", "x · wᵀ: [..., in] × [out, in] → [..., out]",
        operands: [OperandSpec("x"), OperandSpec("w", .tensor, .single, "[out, in], possibly with an N:M encoding")]
    ) { ctx throws(OpError) in
        let x = try ctx.tensor(0), w = try ctx.tensor(1)
        try ShapeRules.requireMinRank(x, 1, "x")
        try ShapeRules.requireFloat(x, "x")
        try ShapeRules.requireRank(w, 2, "w")
        try ShapeRules.requireFloat(w, "w")
        _ = try ShapeRules.match(x.shape[x.rank - 1], w.shape[1], "input features of x against w")
        return [.tensor(TensorType(shape: x.shape.dropLast() + [w.shape[0]], dtype: x.dtype))]
    }

    static let matmul = OpDefinition(
        "nn.matmul", "batched matrix product: [..., m, k] × [..., k, n] → [..., m, n]",
        operands: [OperandSpec("a"), OperandSpec("b")]
    ) { ctx throws(OpError) in
        let a = try ctx.tensor(0), b = try ctx.tensor(1)
        try ShapeRules.requireMinRank(a, 2, "a")
        try ShapeRules.requireFloat(a, "a")
        guard b.rank == a.rank else { throw OpError("a and b must have the same rank, got \(a) and \(b)") }
        guard a.dtype == b.dtype else { throw OpError("a and b must have the same element type, got \(a) and \(b)") }
        var shape: [Dim] = []
        for i in 0..<(a.rank - 2) { shape.append(try ShapeRules.match(a.shape[i], b.shape[i], "batch dim \(i)")) }
        _ = try ShapeRules.match(a.shape[a.rank - 1], b.shape[b.rank - 2], "contracted dim")
        shape += [a.shape[a.rank - 2], b.shape[b.rank - 1]]
        return [.tensor(TensorType(shape: shape, dtype: a.dtype))]
    }

    static let elementwise: [OpDefinition] = [("add", "a + b"), ("sub", "a - b"), ("mul", "a · b"), ("div", "a / b")].map { name, formula in
        OpDefinition("nn.\(name)", "element-wise \(formula) with NumPy broadcasting",
                     operands: [OperandSpec("a"), OperandSpec("b")]) { ctx throws(OpError) in
            let a = try ctx.tensor(0), b = try ctx.tensor(1)
            guard a.dtype == b.dtype else { throw OpError("a and b must have the same element type, got \(a) and \(b)") }
            guard a.dtype != .i4 else { throw OpError("element-wise arithmetic on i4 is not defined") }
            return [.tensor(TensorType(shape: try ShapeRules.broadcast(a.shape, b.shape), dtype: a.dtype))]
        }
    }

    static let silu = OpDefinition(
        "nn.silu", "x · sigmoid(x), element-wise",
        operands: [OperandSpec("x")]
    ) { ctx throws(OpError) in
        let x = try ctx.tensor(0)
        try ShapeRules.requireFloat(x, "x")
        return [.tensor(TensorType(shape: x.shape, dtype: x.dtype))]
    }

    static let softmax = OpDefinition(
        "nn.softmax", "exp(x - max) / sum(exp(x - max)) along an axis",
        operands: [OperandSpec("x")],
        attributes: [AttributeSpec("axis", .int, default: .int(-1), "negative counts from the end")]
    ) { ctx throws(OpError) in
        let x = try ctx.tensor(0)
        try ShapeRules.requireFloat(x, "x")
        _ = try ShapeRules.normalizedAxis(ctx.int("axis") ?? -1, rank: x.rank)
        return [.tensor(TensorType(shape: x.shape, dtype: x.dtype))]
    }

    static let rope = OpDefinition(
        "nn.rope", "rotary position embedding of [tokens, heads, head_dim] at positions start, start+1, …",
        operands: [OperandSpec("x", .tensor, .single, "[tokens, heads, head_dim]"),
                   OperandSpec("start", .tensor, .single, "position of the first token, tensor<i32>")],
        attributes: [AttributeSpec("theta", .float, default: .float(10000.0), "frequency base"),
                     AttributeSpec("style", .string, default: .string("half"),
                                   "\"half\" rotates (x[i], x[i + d/2]); \"interleaved\" rotates (x[2i], x[2i+1])")]
    ) { ctx throws(OpError) in
        let x = try ctx.tensor(0), start = try ctx.tensor(1)
        try ShapeRules.requireRank(x, 3, "x")
        try ShapeRules.requireFloat(x, "x")
        try ShapeRules.scalar(start, "start")
        if let d = x.shape[2].value, d % 2 != 0 { throw OpError("head_dim must be even, got \(d)") }
        guard let theta = ctx.float("theta"), theta > 0 else { throw OpError("theta must be > 0") }
        guard let style = ctx.string("style"), style == "half" || style == "interleaved" else {
            throw OpError("style must be \"half\" or \"interleaved\"")
        }
        return [.tensor(TensorType(shape: x.shape, dtype: x.dtype))]
    }

    static let attention = OpDefinition(
        "nn.attention",
        "softmax(q·kᵀ·scale)·v per head; query heads share key/value heads in groups (GQA); causal masks keys after each query's position",
        operands: [OperandSpec("q", .tensor, .single, "[tokens, q_heads, head_dim]"),
                   OperandSpec("k", .tensor, .single, "[keys, kv_heads, head_dim]"),
                   OperandSpec("v", .tensor, .single, "[keys, kv_heads, head_dim]")],
        attributes: [AttributeSpec("causal", .bool, default: .bool(true),
                                   "query i (of T) sees keys 0 … keys - T + i"),
                     AttributeSpec("scale", .float, "default 1/sqrt(head_dim)")]
    ) { ctx throws(OpError) in
        let q = try ctx.tensor(0), k = try ctx.tensor(1), v = try ctx.tensor(2)
        for (t, n) in [(q, "q"), (k, "k"), (v, "v")] {
            try ShapeRules.requireRank(t, 3, n)
            try ShapeRules.requireFloat(t, n)
        }
        guard k.shape == v.shape || zip(k.shape, v.shape).allSatisfy({ $0.isCompatible(with: $1) }) else {
            throw OpError("k and v must have the same shape, got \(k) and \(v)")
        }
        guard k.dtype == q.dtype, v.dtype == q.dtype else {
            throw OpError("q, k and v must have the same element type, got \(q.dtype), \(k.dtype) and \(v.dtype)")
        }
        _ = try ShapeRules.match(q.shape[2], k.shape[2], "head_dim of q against k")
        if let hq = q.shape[1].value, let hk = k.shape[1].value, hk == 0 || hq % hk != 0 {
            throw OpError("q_heads (\(hq)) must be a multiple of kv_heads (\(hk))")
        }
        return [.tensor(TensorType(shape: q.shape, dtype: q.dtype))]
    }
}
