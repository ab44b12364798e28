#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NMIR

/// `canonicalize`: folds ops whose operands are all constants, removes ops that return their
/// input unchanged, merges chains of reshapes, and erases ops whose results are unused.
///
/// Before:
///
///     %one = arith.constant {value = 1.0} : tensor<4xf32>
///     %two = arith.constant {value = 2.0} : tensor<4xf32>
///     %s = nn.add %one, %two : tensor<4xf32>
///     %y = nn.mul %x, %one : tensor<4xf32>
///     %r = tensor.reshape %y {shape = [4]} : tensor<4xf32>
///     return %r, %s
///
/// After:
///
///     %s = arith.constant {value = 3.0} : tensor<4xf32>
///     return %x, %s
///
/// Folding computes in f32 (or exact integers for i32) as the interpreter does; other element
/// types are left alone. `x + 0` and `x - 0` fold whichever sign the zero has.
public struct CanonicalizePass: Pass {
    public static let info = PassInfo(
        name: "canonicalize",
        summary: "fold constants, remove identity ops (x+0, x·1, same-shape reshape, identity transpose, same-type cast), merge reshape chains, erase dead ops",
        statistics: [("folded", "ops folded into constants"), ("identities", "identity ops removed"),
                     ("merged-reshapes", "reshape chains merged"), ("erased", "dead ops erased")])

    public init() {}

    public func run(on module: inout Module, context: PassContext) throws {
        for i in module.functions.indices { canonicalize(&module.functions[i], context) }
    }

    private func canonicalize(_ f: inout Function, _ context: PassContext) {
        var constants: [String: ConstantValue] = [:]
        var definingOp: [String: Operation] = [:]
        var index = 0
        while index < f.body.count {
            var op = f.body[index]
            if let replacement = identityReplacement(op, constants) {
                f.replaceAllUses(of: op.results[0].name, with: replacement)
                f.body.remove(at: index)
                context.count("identities")
                continue
            }
            if op.name == "tensor.reshape", let inner = definingOp[op.operands[0].name], inner.name == "tensor.reshape",
               // A dynamic input reshapes only to a shape with a -1 (the inner result may be declared static).
               (inner.operands[0].type.tensor?.isStatic ?? false) || (op.attributes["shape"]?.intArrayValue?.contains(-1) ?? false) {
                op.operands[0] = inner.operands[0]
                f.body[index] = op
                context.count("merged-reshapes")
                continue  // look at the merged reshape again: it may now be an identity
            }
            if let folded = fold(op, constants) {
                op = Operation(name: "arith.constant", results: op.results, attributes: ["value": folded.attribute],
                               location: op.location)
                f.body[index] = op
                context.count("folded")
            }
            if let c = ConstantValue(op) { constants[op.results[0].name] = c }
            for r in op.results { definingOp[r.name] = op }
            index += 1
        }
        context.count("erased", by: eraseDeadOps(&f))
    }

    /// The value an op can be replaced by when it returns its input unchanged.
    private func identityReplacement(_ op: Operation, _ constants: [String: ConstantValue]) -> Value? {
        guard op.results.count == 1 else { return nil }
        let result = op.results[0]
        func same(_ v: Value) -> Value? { v.type == result.type ? v : nil }
        func constant(_ v: Value, isAll x: Double) -> Bool { constants[v.name]?.isAll(x) ?? false }
        switch op.name {
        case "nn.add":
            if constant(op.operands[1], isAll: 0) { return same(op.operands[0]) }
            if constant(op.operands[0], isAll: 0) { return same(op.operands[1]) }
        case "nn.sub":
            if constant(op.operands[1], isAll: 0) { return same(op.operands[0]) }
        case "nn.mul":
            if constant(op.operands[1], isAll: 1) { return same(op.operands[0]) }
            if constant(op.operands[0], isAll: 1) { return same(op.operands[1]) }
        case "nn.div":
            if constant(op.operands[1], isAll: 1) { return same(op.operands[0]) }
        case "tensor.cast":
            return same(op.operands[0])
        case "tensor.reshape":
            // Equal types with at most one dynamic dim: the reshape keeps every dim as it was.
            if let t = op.operands[0].type.tensor, t.shape.filter({ $0 == .dynamic }).count <= 1 { return same(op.operands[0]) }
        case "tensor.transpose":
            if let perm = op.attributes["perm"]?.intArrayValue, perm == Array(0..<perm.count) { return same(op.operands[0]) }
        case "tensor.concat":
            if op.operands.count == 1 { return same(op.operands[0]) }
        case "tensor.slice":
            if let size = op.attributes["size"]?.intValue, let start = op.attributes["start"]?.intValue,
               let t = op.operands[0].type.tensor, let axis = op.attributes["axis"]?.intValue, t.rank > 0 {
                let a = axis < 0 ? axis + t.rank : axis
                if a >= 0, a < t.rank, let n = t.shape[a].value, size == n, start == 0 || start == -n { return same(op.operands[0]) }
            }
        default: break
        }
        return nil
    }

    /// The constant an op evaluates to when all its operands are constants.
    private func fold(_ op: Operation, _ constants: [String: ConstantValue]) -> ConstantValue? {
        guard op.results.count == 1, let result = op.results[0].type.tensor, let count = result.elementCount,
              count <= ConstantValue.maxFoldedElements, result.dtype == .f32 || result.dtype == .i32 else { return nil }
        let inputs = op.operands.compactMap { constants[$0.name] }
        guard !op.operands.isEmpty, inputs.count == op.operands.count else { return nil }
        let isInt = result.dtype == .i32
        func f32(_ v: Double) -> Double { Double(Float(v)) }
        switch op.name {
        case "nn.add", "nn.sub", "nn.mul", "nn.div":
            var out: [Double] = []
            out.reserveCapacity(count)
            for index in MultiIndex(shape: result.shape.compactMap(\.value)) {
                let a = inputs[0].broadcastElement(index), b = inputs[1].broadcastElement(index)
                let v: Double
                switch op.name {
                case "nn.add": v = isInt ? a + b : f32(Double(Float(a) + Float(b)))
                case "nn.sub": v = isInt ? a - b : f32(Double(Float(a) - Float(b)))
                case "nn.mul": v = isInt ? a * b : f32(Double(Float(a) * Float(b)))
                default:
                    if isInt {
                        guard b != 0 else { return nil }
                        v = (a / b).rounded(.towardZero)
                    } else {
                        v = Double(Float(a) / Float(b))
                    }
                }
                if isInt, v < Double(Int32.min) || v > Double(Int32.max) { return nil }
                out.append(v)
            }
            return ConstantValue(type: result, elements: out)
        case "nn.silu" where !isInt:
            return ConstantValue(type: result, elements: inputs[0].elements.map { x in
                let xf = Float(x)
                return Double(xf / (1 + expf(-xf)))
            })
        case "tensor.reshape":
            return ConstantValue(type: result, elements: inputs[0].elements)
        case "tensor.cast" where inputs[0].type.dtype == .f32 || inputs[0].type.dtype == .i32:
            if isInt, inputs[0].elements.contains(where: { !$0.isFinite || $0 <= -2147483649 || $0 >= 2147483648 }) {
                return nil  // out of i32's range: the conversion is not defined, so leave it to run time
            }
            return ConstantValue(type: result, elements: inputs[0].elements.map { isInt ? $0.rounded(.towardZero) : f32($0) })
        default:
            return nil
        }
    }
}

/// Erases ops none of whose results are used, repeatedly; returns how many. Every NMIR op is
/// free of side effects (`kv.append` returns the updated cache), so an unused op is dead.
func eraseDeadOps(_ f: inout Function) -> Int {
    var needed = Set(f.returnValues.map(\.name))
    var kept: [Operation] = []
    var erased = 0
    for op in f.body.reversed() {
        if op.results.contains(where: { needed.contains($0.name) }) {
            kept.append(op)
            for v in op.operands { needed.insert(v.name) }
        } else {
            erased += 1
        }
    }
    f.body = kept.reversed()
    return erased
}

/// Row-major iteration over every index of a static shape.
struct MultiIndex: Sequence, IteratorProtocol {
    let shape: [Int]
    var current: [Int]?

    init(shape: [Int]) {
        self.shape = shape
        current = shape.contains(0) ? nil : Array(repeating: 0, count: shape.count)
    }

    mutating func next() -> [Int]? {
        guard let index = current else { return nil }
        var n = index
        var d = shape.count - 1
        while d >= 0 {
            n[d] += 1
            if n[d] < shape[d] { break }
            n[d] = 0
            d -= 1
        }
        current = d < 0 ? nil : n
        return index
    }
}
