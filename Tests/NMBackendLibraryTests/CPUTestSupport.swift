import Testing
import NMIR
import NMInterpreter
import NMRuntime
import NMTargetCPU

/// Runs a function through the interpreter and through the CPU backend on the same arguments and
/// checks that every result has the same shape and values within `tolerance` (absolute, plus
/// relative to the largest expected magnitude).
func expectCPUMatchesInterpreter(_ text: String, function: String = "example", arguments: [Tensor], bound: Int = 64,
                                 tolerance: Float = 1e-4, context: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
    let module = try Parser.parseAndVerify(SourceText(name: "cpu-test.nmir", text: text))
    let expected = try Interpreter(module: module).run(function, arguments.map { .tensor($0) }).map { $0.tensor! }
    let actual = try runOnCPU(module, function: function, arguments: arguments, bound: bound)
    #expect(actual.count == expected.count, "\(context)", sourceLocation: sourceLocation)
    for (i, (a, e)) in zip(actual, expected).enumerated() {
        #expect(a.shape == e.shape, "\(context): result \(i) shape \(a.shape) vs \(e.shape)", sourceLocation: sourceLocation)
        guard a.shape == e.shape else { continue }
        if e.isFloat {
            let scale = max(1, e.floats.map { abs($0) }.max() ?? 1)
            let worst = zip(a.floats, e.floats).map { abs($0 - $1) }.max() ?? 0
            #expect(worst <= tolerance * scale, "\(context): result \(i) differs by \(worst) (scale \(scale))", sourceLocation: sourceLocation)
        } else {
            #expect(a.ints == e.ints, "\(context): result \(i) integers differ", sourceLocation: sourceLocation)
        }
    }
}

/// Calls `function` of `module` compiled by the CPU backend (JIT) on tensors.
func runOnCPU(_ module: Module, function: String, arguments: [Tensor], bound: Int, threads: Int = 2) throws -> [Tensor] {
    let program = try CPUProgram.jit(module: module, weightsDirectory: nil, threads: threads,
                                     options: CPUCompileOptions(dynamicDimBound: bound))
    guard let f = module.function(named: function) else { throw CPURuntimeError("no @\(function)") }
    var buffers: [AlignedBuffer] = []
    var dynamic: [Int] = []
    for (t, arg) in zip(arguments, f.arguments) {
        let buffer = AlignedBuffer(byteCount: max(t.count, 1) * 4)
        if t.isFloat {
            for (i, v) in t.floats.enumerated() { buffer.pointer.storeBytes(of: v, toByteOffset: 4 * i, as: Float.self) }
        } else {
            for (i, v) in t.ints.enumerated() { buffer.pointer.storeBytes(of: v, toByteOffset: 4 * i, as: Int32.self) }
        }
        buffers.append(buffer)
        if let type = arg.type.tensor {
            for (d, size) in zip(type.shape, t.shape) where d.value == nil { dynamic.append(size) }
        }
    }
    let result = try program.call(function, arguments: buffers.map(\.pointer), dynamicDims: dynamic)
    return zip(result.tensors, f.returnValues).map { r, v in
        let count = r.dims.reduce(1, *)
        let dtype = v.type.tensor?.dtype ?? .f32
        if dtype.isFloat {
            return Tensor(shape: r.dims, floats: (0..<count).map { r.pointer.load(fromByteOffset: 4 * $0, as: Float.self) }, dtype: dtype)
        }
        return Tensor(shape: r.dims, ints: (0..<count).map { r.pointer.load(fromByteOffset: 4 * $0, as: Int32.self) }, dtype: dtype)
    }
}

func randomFloats(_ count: Int, _ rng: inout SplitMix64, range: ClosedRange<Float> = -1...1) -> [Float] {
    (0..<count).map { _ in Float.random(in: range, using: &rng) }
}

/// `dense<[…]>` text for a weight.
func denseText(_ values: [Float]) -> String { "dense<[" + values.map { "\($0)" }.joined(separator: ", ") + "]>" }
