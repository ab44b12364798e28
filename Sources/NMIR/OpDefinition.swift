/// What kind of value an operand must be.
public enum OperandKind: String, Sendable {
    case tensor, packed = "quant.packed weight", kvCache = "kv.cache"

    func matches(_ type: NMType) -> Bool {
        switch (self, type) {
        case (.tensor, .tensor), (.packed, .packed), (.kvCache, .kvCache): return true
        default: return false
        }
    }
}

public struct OperandSpec: Sendable {
    public enum Arity: Sendable { case single, optional, variadic }
    public var name: String
    public var kind: OperandKind
    public var arity: Arity
    public var summary: String
    /// The op takes this value over (it updates it in place): no later op may use it.
    public var consumed: Bool

    public init(_ name: String, _ kind: OperandKind = .tensor, _ arity: Arity = .single, _ summary: String = "",
                consumed: Bool = false) {
        self.name = name
        self.kind = kind
        self.arity = arity
        self.summary = summary
        self.consumed = consumed
    }
}

/// The type an attribute's value must have.
public enum AttributeKind: String, Sendable {
    case int, float, string, bool, intArray = "int array", pattern = "N:M pattern", dtype, symbol
    /// An int, a float, or an array of them (constant values).
    case numberOrArray = "number or array of numbers"

    func matches(_ a: Attribute) -> Bool {
        switch (self, a) {
        case (.int, .int), (.string, .string), (.bool, .bool), (.pattern, .pattern), (.dtype, .dtype),
             (.symbol, .symbol):
            return true
        case (.float, .float), (.float, .int): return true
        case (.intArray, .array): return a.intArrayValue != nil
        case (.numberOrArray, .int), (.numberOrArray, .float): return true
        case (.numberOrArray, .array): return a.floatArrayValue != nil
        default: return false
        }
    }
}

public struct AttributeSpec: Sendable {
    public var name: String
    public var kind: AttributeKind
    /// Used when the attribute is absent; nil with `required` means it must be written.
    public var defaultValue: Attribute?
    public var required: Bool
    public var summary: String

    public init(_ name: String, _ kind: AttributeKind, default defaultValue: Attribute? = nil,
                required: Bool = false, _ summary: String = "") {
        self.name = name
        self.kind = kind
        self.defaultValue = defaultValue
        self.required = required
        self.summary = summary
    }
}

/// The message of a rule an op breaks; the verifier adds the op's location.
public struct OpError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// An op declared once: its name, operands, attributes, results and the rule that checks its
/// operands and attributes and computes its result types.
public struct OpDefinition: Sendable {
    public typealias TypeRule = @Sendable (OpContext) throws(OpError) -> [NMType]?

    public var name: String
    public var summary: String
    public var operands: [OperandSpec]
    public var attributes: [AttributeSpec]
    public var results: [String]
    /// Checks the op beyond the structural rules and returns its result types, or nil when the
    /// types written in the text are the definition (as for `arith.constant`).
    public var typeRule: TypeRule

    public init(_ name: String, _ summary: String, operands: [OperandSpec] = [], attributes: [AttributeSpec] = [],
                results: [String] = ["result"], typeRule: @escaping TypeRule) {
        self.name = name
        self.summary = summary
        self.operands = operands
        self.attributes = attributes
        self.results = results
        self.typeRule = typeRule
    }

    public var dialect: String { String(name.prefix { $0 != "." }) }

    public func attributeSpec(_ name: String) -> AttributeSpec? { attributes.first { $0.name == name } }

    /// The allowed operand counts.
    public var operandCountRange: ClosedRange<Int> {
        var low = 0, high = 0
        for o in operands {
            switch o.arity {
            case .single: low += 1; high += 1
            case .optional: high += 1
            case .variadic: low += 1; high = Int.max / 2
            }
        }
        return low...high
    }

    /// Which spec each operand position falls under (for `count` operands).
    public func operandSpecs(forCount count: Int) -> [OperandSpec] {
        let fixed = operands.filter { $0.arity != .optional }.count
        var extra = count - fixed
        var out: [OperandSpec] = []
        for o in operands {
            switch o.arity {
            case .single: out.append(o)
            case .optional:
                if extra > 0 { out.append(o); extra -= 1 }
            case .variadic:
                out += Array(repeating: o, count: 1 + max(0, extra))
                extra = 0
            }
        }
        return out
    }
}

/// What a type rule sees: the op, its definition and the module's weights.
public struct OpContext: Sendable {
    public let op: Operation
    public let definition: OpDefinition
    public let weights: WeightStore?

    public init(op: Operation, definition: OpDefinition, weights: WeightStore?) {
        self.op = op
        self.definition = definition
        self.weights = weights
    }

    public var operandCount: Int { op.operands.count }

    /// The name the definition gives operand `i`.
    public func operandName(_ i: Int) -> String {
        let specs = definition.operandSpecs(forCount: op.operands.count)
        return i < specs.count ? specs[i].name : "#\(i)"
    }

    public func tensor(_ i: Int) throws(OpError) -> TensorType {
        guard i < op.operands.count, let t = op.operands[i].type.tensor else {
            throw OpError("operand '\(operandName(i))' must be a tensor")
        }
        return t
    }

    public func packed(_ i: Int) throws(OpError) -> PackedWeightType {
        guard i < op.operands.count, let p = op.operands[i].type.packed else {
            throw OpError("operand '\(operandName(i))' must be a quant.packed weight")
        }
        return p
    }

    public func kvCache(_ i: Int) throws(OpError) -> KVCacheType {
        guard i < op.operands.count, let k = op.operands[i].type.kvCache else {
            throw OpError("operand '\(operandName(i))' must be a kv.cache")
        }
        return k
    }

    /// The attribute as written, or its default.
    public func attribute(_ name: String) -> Attribute? {
        op.attributes[name] ?? definition.attributeSpec(name)?.defaultValue
    }
    public func int(_ name: String) -> Int? { attribute(name)?.intValue }
    public func float(_ name: String) -> Double? { attribute(name)?.floatValue }
    public func string(_ name: String) -> String? { attribute(name)?.stringValue }
    public func bool(_ name: String) -> Bool? { attribute(name)?.boolValue }
    public func ints(_ name: String) -> [Int]? { attribute(name)?.intArrayValue }
}
