#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NMIR

/// The semantics of every registered op, keyed by name. A test checks that every op in the
/// registry has an entry here.
enum OpSemantics {
    typealias Semantics = @Sendable (OpCall) throws -> [RuntimeValue]

    static let table: [String: Semantics] = [
        "nn.weight": { c in
            guard let name = c.op.attributes["name"]?.symbolValue else { throw InterpreterError("nn.weight without a name") }
            return [try c.interpreter.weight(name)]
        },
        "nn.embedding": { c in [.tensor(try NNKernels.embedding(c.tensor(0), c.tensor(1)))] },
        "nn.rms_norm": { c in [.tensor(NNKernels.rmsNorm(try c.tensor(0), try c.tensor(1), eps: c.float("eps") ?? 1e-5))] },
        "nn.linear": { c in [.tensor(NNKernels.linear(try c.tensor(0), try c.tensor(1)))] },
        "nn.matmul": { c in [.tensor(NNKernels.matmul(try c.tensor(0), try c.tensor(1)))] },
        "nn.add": { c in [.tensor(try Elementwise.binary(c.tensor(0), c.tensor(1), +, &+))] },
        "nn.sub": { c in [.tensor(try Elementwise.binary(c.tensor(0), c.tensor(1), -, &-))] },
        "nn.mul": { c in [.tensor(try Elementwise.binary(c.tensor(0), c.tensor(1), *, &*))] },
        "nn.div": { c in
            [.tensor(try Elementwise.binary(c.tensor(0), c.tensor(1), /, { a, b in
                // Integer division truncates toward zero; dividing by zero is reported below.
                b == 0 ? 0 : (a == Int32.min && b == -1 ? Int32.min : a / b)
            }, checkIntDivisor: true))]
        },
        "nn.silu": { c in
            let x = try c.tensor(0)
            return [.tensor(Tensor(shape: x.shape, floats: x.floats.map { $0 / (1 + expf(-$0)) }, dtype: x.dtype))]
        },
        "nn.softmax": { c in
            let x = try c.tensor(0)
            let axis = (c.int("axis") ?? -1) < 0 ? (c.int("axis") ?? -1) + x.shape.count : (c.int("axis") ?? 0)
            return [.tensor(NNKernels.softmax(x, axis: axis))]
        },
        "nn.rope": { c in
            let start = try c.tensor(1)
            guard let s = start.ints.first else { throw InterpreterError("start must hold one i32") }
            let style = c.attribute("style")?.stringValue ?? "half"
            return [.tensor(NNKernels.rope(try c.tensor(0), start: Int(s), theta: c.float("theta") ?? 10000,
                                           interleaved: style == "interleaved"))]
        },
        "nn.attention": { c in
            let q = try c.tensor(0)
            let scale = c.op.attributes["scale"]?.floatValue ?? 1 / Double(q.shape[2]).squareRoot()
            return [.tensor(try AttentionKernel.attention(q: q, k: c.tensor(1), v: c.tensor(2), scale: Float(scale),
                                                         causal: c.attribute("causal")?.boolValue ?? true))]
        },
        "tensor.reshape": { c in
            var x = try c.tensor(0)
            guard let resultType = c.op.results.first?.type.tensor else { throw InterpreterError("reshape without a result type") }
            x.shape = try ShapeKernels.reshapeDims(c.op.attributes["shape"]?.intArrayValue ?? [],
                                                   count: x.count, declared: resultType)
            return [.tensor(x)]
        },
        "tensor.transpose": { c in
            [.tensor(ShapeKernels.transpose(try c.tensor(0), perm: c.op.attributes["perm"]?.intArrayValue ?? []))]
        },
        "tensor.concat": { c in
            let inputs = try (0..<c.operands.count).map { try c.tensor($0) }
            return [.tensor(ShapeKernels.concat(inputs, axis: c.int("axis") ?? 0))]
        },
        "tensor.slice": { c in
            [.tensor(try ShapeKernels.slice(c.tensor(0), axis: c.int("axis") ?? 0, start: c.int("start") ?? 0, size: c.int("size") ?? 1))]
        },
        "tensor.cast": { c in
            [.tensor(try ShapeKernels.cast(c.tensor(0), to: c.attribute("to")?.dtypeValue ?? .f32))]
        },
        "arith.constant": { c in
            guard let type = c.op.results.first?.type.tensor, let count = type.elementCount,
                  let value = c.op.attributes["value"] else { throw InterpreterError("malformed constant") }
            let values = value.floatArrayValue ?? Array(repeating: value.floatValue ?? 0, count: count)
            let shape = type.shape.compactMap(\.value)
            if type.dtype.isFloat { return [.tensor(Tensor(shape: shape, floats: values.map(Float.init), dtype: type.dtype))] }
            return [.tensor(Tensor(shape: shape, ints: values.map { Int32($0) }, dtype: type.dtype))]
        },
        "quant.dequant": { c in [.tensor(try c.dequantized(from: 0))] },
        "quant.linear": { c in
            guard let actBits = c.op.attributes["act_bits"]?.intValue else {
                return [.tensor(NNKernels.linear(try c.tensor(0), try c.dequantized(from: 1)))]
            }
            guard case .packed(let w) = c.operands[1] else { throw InterpreterError("operand 1 is not a packed weight") }
            return [.tensor(QuantizedActivations.linear(try c.tensor(0), centered: try c.centered(from: 1), scales: try c.tensor(2),
                                                        group: w.type.group, bits: actBits))]
        },
        "kv.append": { c in
            guard case .kvCache(let cache) = c.operands[0] else { throw InterpreterError("operand 0 is not a kv.cache") }
            let x = try c.tensor(1), start = try c.tensor(2)
            guard let s = start.ints.first else { throw InterpreterError("start must hold one i32") }
            let contents = try KVKernels.append(cache, x, start: Int(s))
            return [.kvCache(cache), .tensor(contents)]
        },
    ]
}
