#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NMIR

/// The reference semantics of NMIR: runs a function op by op in plain Swift over f32 (integer
/// ops exact), with OpenBLAS for the matrix products. Slow, simple and exact: the oracle every
/// backend is tested against.
public final class Interpreter {
    public let module: Module
    /// Where the module's weights file is looked up.
    public let weightsDirectory: String?
    private var weightCache: [String: RuntimeValue] = [:]
    /// Dequantized packed weights, by the names of the weights they came from (the packed data,
    /// scales and zero points are weights, so the result never changes during a run).
    var dequantizedCache: [String: Tensor] = [:]
    /// The same for the integers q − zero (`quant.linear {act_bits}`), keyed the same way.
    var centeredCache: [String: Tensor] = [:]
    private var externalFile: Safetensors.Contents?
    /// Called before each op with the op and its operand values (calibration reads the inputs
    /// of linear layers through it).
    public var observer: ((Operation, [RuntimeValue]) throws -> Void)?

    public init(module: Module, weightsDirectory: String? = nil) {
        self.module = module
        self.weightsDirectory = weightsDirectory
    }

    /// Runs `function` on `arguments` and returns the values it returns.
    public func run(_ function: String, _ arguments: [RuntimeValue]) throws -> [RuntimeValue] {
        guard let f = module.function(named: function) else {
            throw InterpreterError("no function @\(function) in the module")
        }
        guard arguments.count == f.arguments.count else {
            throw InterpreterError(at: f.location, "@\(function) takes \(f.arguments.count) arguments, got \(arguments.count)")
        }
        var env: [String: RuntimeValue] = [:]
        /// Which weight each value was read from, for caching work on weights.
        var weightOf: [String: String] = [:]
        for (param, value) in zip(f.arguments, arguments) {
            try checkArgument(value, against: param, in: f)
            env[param.name] = value
        }
        for op in f.body {
            guard let semantics = OpSemantics.table[op.name] else {
                throw InterpreterError(at: op.location, "the interpreter has no semantics for '\(op.name)'")
            }
            let operands = try op.operands.map { v -> RuntimeValue in
                guard let value = env[v.name] else { throw InterpreterError(at: op.location, "%\(v.name) has no value") }
                return value
            }
            try observer?(op, operands)
            if op.name == "nn.weight", let name = op.attributes["name"]?.symbolValue, let r = op.results.first {
                weightOf[r.name] = name
            }
            let results: [RuntimeValue]
            do {
                let sources = op.operands.map { weightOf[$0.name] }
                results = try semantics(OpCall(op: op, operands: operands, interpreter: self, operandWeights: sources))
            } catch let e as InterpreterError {
                throw e.location.isKnown ? e : InterpreterError(at: op.location, "'\(op.name)': " + e.message)
            }
            for (r, value) in zip(op.results, results) { env[r.name] = value }
        }
        return try f.returnValues.map { v in
            guard let value = env[v.name] else { throw InterpreterError(at: f.returnLocation, "%\(v.name) has no value") }
            return value
        }
    }

    private func checkArgument(_ value: RuntimeValue, against param: Value, in f: Function) throws {
        switch (value, param.type) {
        case (.tensor(let t), .tensor(let type)):
            guard t.dtype == type.dtype, t.shape.count == type.rank,
                  zip(t.shape, type.shape).allSatisfy({ Dim.known($0).isCompatible(with: $1) }) else {
                throw InterpreterError(at: f.location, "argument %\(param.name) must be \(type), got shape \(t.shape) of \(t.dtype)")
            }
        case (.kvCache(let c), .kvCache(let type)):
            guard c.type == type else { throw InterpreterError(at: f.location, "argument %\(param.name) must be \(type)") }
        case (.packed(let p), .packed(let type)):
            guard p.type == type else { throw InterpreterError(at: f.location, "argument %\(param.name) must be \(type)") }
        default:
            throw InterpreterError(at: f.location, "argument %\(param.name) must be \(param.type)")
        }
    }

    /// The value of a weight, decoded once.
    func weight(_ name: String) throws -> RuntimeValue {
        if let cached = weightCache[name] { return cached }
        guard let entry = module.weights[name] else { throw InterpreterError("unknown weight @\(name)") }
        let bytes: [UInt8]
        switch entry.data {
        case .elided:
            throw InterpreterError(at: entry.location, "weight @\(name) was elided from this dump; it cannot be run")
        case .values, .bytes:
            bytes = entry.storageBytes ?? []
        case .external:
            bytes = try externalBytes(of: entry)
        }
        let value: RuntimeValue
        switch entry.type {
        case .tensor(let t):
            guard let count = t.elementCount else { throw InterpreterError("weight @\(name) has a dynamic shape") }
            value = .tensor(Self.decode(bytes, as: t.dtype, shape: t.shape.compactMap(\.value), count: count))
        case .packed(let p):
            value = .packed(PackedTensor(type: p, bytes: bytes))
        case .kvCache:
            throw InterpreterError("weight @\(name) cannot be a kv.cache")
        }
        weightCache[name] = value
        return value
    }

    private func externalBytes(of entry: WeightEntry) throws -> [UInt8] {
        if externalFile == nil {
            guard let file = module.weights.file else { throw InterpreterError("weight @\(entry.name) has no weights file") }
            let path = file.hasPrefix("/") || weightsDirectory == nil ? file : weightsDirectory! + "/" + file
            do { externalFile = try Safetensors.read(path: path) } catch {
                throw InterpreterError("cannot read weights file '\(path)': \(error)")
            }
        }
        guard let contents = externalFile, let info = contents.info(entry.name) else {
            throw InterpreterError("weight @\(entry.name) is not in the weights file")
        }
        return Array(contents.bytes(of: info))
    }

    /// Storage bytes to a tensor: f32 copied as is, other float types widened, integers exact.
    static func decode(_ bytes: [UInt8], as dtype: DType, shape: [Int], count: Int) -> Tensor {
        if dtype == .f32, bytes.count == count * 4 {
            var floats = [Float](repeating: 0, count: count)
            floats.withUnsafeMutableBytes { dst in bytes.withUnsafeBytes { src in dst.copyMemory(from: src) } }
            return Tensor(shape: shape, floats: floats)
        }
        let values = WeightEncoding.decode(bytes, as: dtype, count: count)
        if dtype.isFloat { return Tensor(shape: shape, floats: values.map(Float.init), dtype: dtype) }
        return Tensor(shape: shape, ints: values.map { Int32($0) }, dtype: dtype)
    }
}

/// One op being executed: the op, its operand values, and the interpreter (for weights).
struct OpCall {
    let op: Operation
    let operands: [RuntimeValue]
    let interpreter: Interpreter
    /// For each operand, the weight it was read from directly, if any.
    var operandWeights: [String?] = []

    /// A key naming the weights of operands `range` when all of them are weights.
    func weightKey(_ range: Range<Int>) -> String? {
        guard range.upperBound <= operandWeights.count else { return nil }
        let names = range.map { operandWeights[$0] }
        guard names.allSatisfy({ $0 != nil }) else { return nil }
        return names.map { $0! }.joined(separator: "|")
    }

    /// The dequantized matrix of the packed weight at operand `index` and its scales (and zero
    /// points), computed once per set of weights.
    func dequantized(from index: Int) throws -> Tensor {
        let hasZeros = operands.count > index + 2
        let compute = {
            try QuantKernels.dequantize(self.operands[index], scales: self.tensor(index + 1),
                                        zeroPoints: hasZeros ? self.tensor(index + 2) : nil)
        }
        guard let key = weightKey(index..<operands.count) else { return try compute() }
        if let cached = interpreter.dequantizedCache[key] { return cached }
        let w = try compute()
        interpreter.dequantizedCache[key] = w
        return w
    }

    /// The integers q − zero of the packed weight at operand `index` (0 where pruned), cached
    /// like `dequantized`.
    func centered(from index: Int) throws -> Tensor {
        let hasZeros = operands.count > index + 2
        let compute = { try QuantKernels.centered(self.operands[index], zeroPoints: hasZeros ? self.tensor(index + 2) : nil) }
        guard let key = weightKey(index..<operands.count) else { return try compute() }
        if let cached = interpreter.centeredCache[key] { return cached }
        let w = try compute()
        interpreter.centeredCache[key] = w
        return w
    }

    func tensor(_ i: Int) throws -> Tensor {
        guard i < operands.count, let t = operands[i].tensor else { throw InterpreterError("operand \(i) is not a tensor") }
        return t
    }

    func int(_ name: String) -> Int? { op.attributes[name]?.intValue ?? OpRegistry.standard[op.name]?.attributeSpec(name)?.defaultValue?.intValue }
    func float(_ name: String) -> Double? { op.attributes[name]?.floatValue ?? OpRegistry.standard[op.name]?.attributeSpec(name)?.defaultValue?.floatValue }
    func attribute(_ name: String) -> Attribute? { op.attributes[name] ?? OpRegistry.standard[op.name]?.attributeSpec(name)?.defaultValue }

    /// The declared result type's element type (for ops whose result dtype is not the operand's).
    var resultDType: DType { op.results.first?.type.tensor?.dtype ?? .f32 }
}
