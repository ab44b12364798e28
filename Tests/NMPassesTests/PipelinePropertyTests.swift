#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
import NMIR
@testable import NMPasses
import NMRuntime

// The property test of the cleanup pipeline on random element-wise modules (the per-pass
// tests are in PassTests.swift).


/// Random small functions of element-wise ops over constants and arguments, and a reference
/// evaluation of the f32 ones (broadcasting, computed in f32 as the folder does).
enum RandomElementwise {
    static let shapes: [[Int?]] = [[4], [2, 4], [1, 4], [2, 1], [], [nil, 4]]
    /// Dims written `?` have this size when evaluated; 2 broadcasts against every static shape above.
    static let dynamicSize = 2

    static func makeModule(seed: UInt64) throws -> Module {
        var rng = SplitMix64(seed: seed)
        let isInt = Int.random(in: 0..<5, using: &rng) == 0
        let dtype: DType = isInt ? .i32 : .f32
        func type(_ shape: [Int?]) -> NMType { .tensor(TensorType(shape, dtype)) }
        // Zeros and ones often, so identities turn up.
        let specials: [Double] = isInt ? [0, 0, 1, 1, -1, 2, 3, -7] : [0, 0, 1, 1, -1, 2, 0.5, -0.0, 3, -1.5]
        let nonzero = specials.filter { $0 != 0 }
        let argCount = Int.random(in: 1...3, using: &rng)
        var b = Builder(name: "f", arguments: (0..<argCount).map { ("x\($0)", type(shapes.randomElement(using: &rng)!)) })
        var pool = b.arguments
        var counter = 0
        func constant(from values: [Double]) throws -> Value {
            let shape = shapes.filter { !$0.contains(nil) }.randomElement(using: &rng)!
            let count = shape.reduce(1) { $0 * ($1 ?? 1) }
            let attr: (Double) -> Attribute = { isInt ? .int(Int($0)) : .float($0) }
            let value: Attribute = Bool.random(using: &rng) || count == 1
                ? attr(values.randomElement(using: &rng)!)
                : .array((0..<count).map { _ in attr(values.randomElement(using: &rng)!) })
            counter += 1
            return try b.add("arith.constant", attributes: ["value": value], resultType: type(shape), resultName: "c\(counter)")
        }
        for _ in 0..<Int.random(in: 2...9, using: &rng) {
            counter += 1
            let name = "v\(counter)"
            switch Int.random(in: 0..<10, using: &rng) {
            case 0..<3:
                pool.append(try constant(from: specials))
            case 3 where !isInt:
                pool.append(try b.add("nn.silu", [pool.randomElement(using: &rng)!], resultName: name))
            case 4...5 where !b.function.body.isEmpty:
                // A copy of an earlier op, for cse.
                let earlier = b.function.body.randomElement(using: &rng)!
                pool.append(try b.add(earlier.name, earlier.operands, attributes: earlier.attributes,
                                      resultType: earlier.results[0].type, resultName: name))
            default:
                let op = ["nn.add", "nn.sub", "nn.mul", "nn.div"].randomElement(using: &rng)!
                let lhs = pool.randomElement(using: &rng)!
                // f32 divisors are nonzero constants: the sign of a zero (which `x + 0 → x` may
                // change, by design) then never shows in a result.
                let rhs = op == "nn.div" && !isInt ? try constant(from: nonzero) : pool.randomElement(using: &rng)!
                pool.append(try b.add(op, [lhs, rhs], resultName: name))
            }
        }
        // The last value and a few others, so that not everything is dead.
        let returned = [pool[pool.count - 1]] + (0..<Int.random(in: 0...2, using: &rng)).map { _ in pool[Int.random(in: argCount..<pool.count, using: &rng)] }
        b.ret(returned)
        let text = Printer().print(Module(functions: [b.function]))
        return try Parser.parseAndVerify(SourceText(name: "seed-\(seed).nmir", text: text))
    }

    struct Tensor: Equatable {
        var shape: [Int]
        var data: [Float]
        static func == (a: Tensor, b: Tensor) -> Bool {
            a.shape == b.shape && zip(a.data, b.data).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }
        }
    }

    static func randomInputs(for f: Function, seed: UInt64) -> [Tensor] {
        var rng = SplitMix64(seed: seed ^ 0xA5A5)
        return f.arguments.map { a in
            let shape = a.type.tensor!.shape.map { $0.value ?? dynamicSize }
            let values: [Float] = [-2, -1.5, -1, -0.5, 0.5, 1, 1.5, 2, 3]
            return Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in values.randomElement(using: &rng)! })
        }
    }

    static func evaluate(_ f: Function, _ inputs: [Tensor]) -> [Tensor] {
        var env: [String: Tensor] = [:]
        for (a, t) in zip(f.arguments, inputs) { env[a.name] = t }
        for op in f.body {
            let result: Tensor
            switch op.name {
            case "arith.constant":
                let shape = op.results[0].type.tensor!.shape.map { $0.value! }
                let count = shape.reduce(1, *)
                let value = op.attributes["value"]!
                let data = value.floatArrayValue.map { $0.map { Float($0) } } ?? Array(repeating: Float(value.floatValue!), count: count)
                result = Tensor(shape: shape, data: data)
            case "nn.silu":
                let x = env[op.operands[0].name]!
                result = Tensor(shape: x.shape, data: x.data.map { $0 / (1 + expf(-$0)) })
            default:
                let fn: (Float, Float) -> Float
                switch op.name {
                case "nn.add": fn = { $0 + $1 }
                case "nn.sub": fn = { $0 - $1 }
                case "nn.mul": fn = { $0 * $1 }
                default: fn = { $0 / $1 }
                }
                result = broadcast(env[op.operands[0].name]!, env[op.operands[1].name]!, fn)
            }
            env[op.results[0].name] = result
        }
        return f.returnValues.map { env[$0.name]! }
    }

    static func broadcast(_ a: Tensor, _ b: Tensor, _ fn: (Float, Float) -> Float) -> Tensor {
        let rank = max(a.shape.count, b.shape.count)
        let sa = Array(repeating: 1, count: rank - a.shape.count) + a.shape
        let sb = Array(repeating: 1, count: rank - b.shape.count) + b.shape
        let shape = zip(sa, sb).map { max($0, $1) }
        var out: [Float] = []
        for flat in 0..<shape.reduce(1, *) {
            var rest = flat, ia = 0, ib = 0, strideA = 1, strideB = 1
            for d in (0..<rank).reversed() {
                let i = rest % shape[d]
                rest /= shape[d]
                if sa[d] != 1 { ia += i * strideA }
                if sb[d] != 1 { ib += i * strideB }
                strideA *= sa[d]
                strideB *= sb[d]
            }
            out.append(fn(a.data[ia], b.data[ib]))
        }
        return Tensor(shape: shape, data: out)
    }
}

@Suite struct CleanupPipelineProperties {
    static let pipeline = "canonicalize,cse,dce,infer-shapes"

    @Test func evaluatorAgreesWithHandComputedValues() throws {
        let m = try module("""
        func @f(%x: tensor<2x1xf32>) -> tensor<2x3xf32> {
          %c = arith.constant {value = [1.0, 2.0, 3.0]} : tensor<3xf32>
          %y = nn.mul %x, %c : tensor<2x3xf32>
          return %y
        }
        """)
        let out = RandomElementwise.evaluate(m.functions[0], [.init(shape: [2, 1], data: [10, -1])])
        #expect(out == [.init(shape: [2, 3], data: [10, 20, 30, -1, -2, -3])])
    }

    @Test func randomModulesStayValidKeepTheirValuesAndReachAFixpoint() throws {
        var totals: [String: Int] = [:]
        var changed = 0
        for seed in UInt64(1)...200 {
            do {
                let original = try RandomElementwise.makeModule(seed: seed)
                var once = original
                let recorder = StatisticsRecorder()
                try runPipeline(Self.pipeline, on: &once, instruments: [recorder])
                for (pass, stats) in recorder.rows { for (k, v) in stats { totals[pass + "." + k, default: 0] += v } }
                if once != original { changed += 1 }
                #expect(Verifier().diagnose(once).isEmpty, "seed \(seed)")
                var twice = once
                try runPipeline(Self.pipeline, on: &twice)
                let printedOnce = Printer().print(once)
                #expect(Printer().print(twice) == printedOnce, "seed \(seed): not idempotent\n\(printedOnce)")
                let reread = try Parser.parseAndVerify(SourceText(name: "reread", text: printedOnce))
                #expect(reread == once, "seed \(seed): the result does not read back equal")
                let f = original.functions[0]
                if f.arguments[0].type.tensor?.dtype == .f32 {
                    let inputs = RandomElementwise.randomInputs(for: f, seed: seed)
                    let expected = RandomElementwise.evaluate(f, inputs)
                    let actual = RandomElementwise.evaluate(once.functions[0], inputs)
                    #expect(actual == expected, "seed \(seed): values changed\n\(Printer().print(original))\n\(printedOnce)")
                }
            } catch {
                Issue.record("seed \(seed): \(error)")
            }
        }
        // The generator must exercise the passes, not only hand them modules they leave alone.
        #expect(changed > 150, "only \(changed) of 200 modules changed")
        for key in ["canonicalize.folded", "canonicalize.identities", "canonicalize.erased", "cse.eliminated"] {
            #expect(totals[key, default: 0] > 20, "\(key): \(totals)")
        }
    }
}
