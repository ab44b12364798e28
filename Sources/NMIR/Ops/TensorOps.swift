/// The `tensor` dialect (shapes and element types) and `arith.constant`.
enum TensorOps {
    static let all: [OpDefinition] = [reshape, transpose, concat, slice, cast, constant]

    static let reshape = OpDefinition(
        "tensor.reshape", "the same elements in a new shape; one dim may be -1 (inferred)",
        operands: [OperandSpec("x")],
        attributes: [AttributeSpec("shape", .intArray, required: true, "new dims, at most one -1")]
    ) { ctx throws(OpError) in
        let x = try ctx.tensor(0)
        guard let dims = ctx.ints("shape") else { throw OpError("missing attribute 'shape'") }
        guard dims.allSatisfy({ $0 >= -1 }), dims.filter({ $0 == -1 }).count <= 1 else {
            throw OpError("shape \(dims) may hold sizes ≥ 0 and at most one -1")
        }
        var knownProduct = 1
        for d in dims where d >= 0 {
            let (p, overflow) = knownProduct.multipliedReportingOverflow(by: d)
            guard !overflow, p <= Parser.maxDimension else { throw OpError("shape \(dims) has too many elements") }
            knownProduct = p
        }
        var shape = dims.map { $0 >= 0 ? Dim.known($0) : .dynamic }
        if let count = x.elementCount {
            if let i = dims.firstIndex(of: -1) {
                guard knownProduct > 0, count % knownProduct == 0 else {
                    throw OpError("cannot reshape \(count) elements into \(dims)")
                }
                shape[i] = .known(count / knownProduct)
            } else if count != knownProduct {
                throw OpError("cannot reshape \(count) elements into \(dims)")
            }
        } else if !dims.contains(-1) {
            throw OpError("reshaping a tensor of dynamic shape needs a -1 dim in \(dims)")
        }
        return [.tensor(TensorType(shape: shape, dtype: x.dtype, nm: nil))]
    }

    static let transpose = OpDefinition(
        "tensor.transpose", "permutes dims: result dim i is input dim perm[i]",
        operands: [OperandSpec("x")],
        attributes: [AttributeSpec("perm", .intArray, required: true, "a permutation of 0 ..< rank")]
    ) { ctx throws(OpError) in
        let x = try ctx.tensor(0)
        guard let perm = ctx.ints("perm") else { throw OpError("missing attribute 'perm'") }
        guard perm.count == x.rank, perm.sorted() == Array(0..<x.rank) else {
            throw OpError("perm \(perm) is not a permutation of 0..<\(x.rank)")
        }
        return [.tensor(TensorType(shape: perm.map { x.shape[$0] }, dtype: x.dtype))]
    }

    static let concat = OpDefinition(
        "tensor.concat", "joins tensors along an axis",
        operands: [OperandSpec("inputs", .tensor, .variadic, "one or more tensors of the same rank and type")],
        attributes: [AttributeSpec("axis", .int, required: true, "negative counts from the end")]
    ) { ctx throws(OpError) in
        guard ctx.operandCount >= 1 else { throw OpError("needs at least one input") }
        let first = try ctx.tensor(0)
        let axis = try ShapeRules.normalizedAxis(ctx.int("axis") ?? 0, rank: first.rank)
        var shape = first.shape
        for i in 1..<ctx.operandCount {
            let t = try ctx.tensor(i)
            guard t.rank == first.rank, t.dtype == first.dtype else {
                throw OpError("input \(i) (\(t)) does not match input 0 (\(first)) in rank and element type")
            }
            for d in 0..<t.rank where d != axis {
                shape[d] = try ShapeRules.match(shape[d], t.shape[d], "dim \(d) of input \(i)")
            }
            if let a = shape[axis].value, let b = t.shape[axis].value {
                shape[axis] = try ShapeRules.bounded(a + b, "concatenated dim")
            } else {
                shape[axis] = .dynamic
            }
        }
        return [.tensor(TensorType(shape: shape, dtype: first.dtype))]
    }

    static let slice = OpDefinition(
        "tensor.slice", "size elements along axis, from start (negative start counts from the end)",
        operands: [OperandSpec("x")],
        attributes: [AttributeSpec("axis", .int, required: true, ""),
                     AttributeSpec("start", .int, required: true, "negative counts from the end"),
                     AttributeSpec("size", .int, required: true, "≥ 1")]
    ) { ctx throws(OpError) in
        let x = try ctx.tensor(0)
        let axis = try ShapeRules.normalizedAxis(ctx.int("axis") ?? 0, rank: x.rank)
        guard let start = ctx.int("start"), let size = ctx.int("size") else { throw OpError("missing start or size") }
        guard size >= 1 else { throw OpError("size must be ≥ 1, got \(size)") }
        if let n = x.shape[axis].value {
            let s = start < 0 ? start + n : start
            guard s >= 0, s <= n - size else { throw OpError("slice [\(start), \(start)+\(size)) is out of bounds for dim of size \(n)") }
        }
        var shape = x.shape
        shape[axis] = try ShapeRules.bounded(size, "slice size")
        return [.tensor(TensorType(shape: shape, dtype: x.dtype))]
    }

    static let cast = OpDefinition(
        "tensor.cast", "converts elements to another element type (floats round to nearest even; to integers truncates toward zero)",
        operands: [OperandSpec("x")],
        attributes: [AttributeSpec("to", .dtype, required: true, "the new element type")]
    ) { ctx throws(OpError) in
        let x = try ctx.tensor(0)
        guard let to = ctx.attribute("to")?.dtypeValue else { throw OpError("missing attribute 'to'") }
        guard to != .i4, x.dtype != .i4 else { throw OpError("casts from or to i4 are not defined; use quant ops") }
        return [.tensor(TensorType(shape: x.shape, dtype: to))]
    }

    static let constant = OpDefinition(
        "arith.constant", "a tensor of constants: one value for every element, or all elements listed",
        attributes: [AttributeSpec("value", .numberOrArray, required: true,
                                   "a number (splat) or the elements in row-major order")]
    ) { ctx throws(OpError) in
        guard let result = ctx.op.results.first, let t = result.type.tensor else {
            throw OpError("result must be a tensor")
        }
        guard let count = t.elementCount else { throw OpError("result type \(t) must have a static shape") }
        guard let value = ctx.attribute("value") else { throw OpError("missing attribute 'value'") }
        let elements: [Attribute] = value.arrayValue ?? [value]
        if value.arrayValue != nil, elements.count != count {
            throw OpError("value has \(elements.count) elements but \(t) holds \(count)")
        }
        if t.dtype.isInteger {
            guard elements.allSatisfy({ $0.intValue != nil }) else { throw OpError("an integer constant needs integer values") }
            if t.dtype != .index {
                let bound = 1 << (t.dtype.bitWidth - 1)
                if let bad = elements.compactMap(\.intValue).first(where: { $0 < -bound || $0 >= bound }) {
                    throw OpError("\(bad) does not fit in \(t.dtype)")
                }
            }
        }
        return nil
    }
}
