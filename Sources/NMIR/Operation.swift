/// One operation: `%r = nn.linear %x, %w {…} : tensor<?x1536xf32>`.
/// Its name is dialect-qualified (`nn.linear`); its semantics come from the op registry.
public struct Operation: Sendable, CustomStringConvertible {
    public var name: String
    public var operands: [Value]
    public var results: [Value]
    public var attributes: [String: Attribute]
    public var location: SourceLocation

    public init(name: String, operands: [Value] = [], results: [Value] = [],
                attributes: [String: Attribute] = [:], location: SourceLocation = .unknown) {
        self.name = name
        self.operands = operands
        self.results = results
        self.attributes = attributes
        self.location = location
    }

    public var dialect: Substring { name.prefix { $0 != "." } }

    /// The first result, for the many ops that have exactly one.
    public var result: Value? { results.first }

    public subscript(attribute key: String) -> Attribute? {
        get { attributes[key] }
        set { attributes[key] = newValue }
    }

    public var description: String { Printer().print(self) }
}

extension Operation: Equatable {
    /// Equality ignores source locations: a module read back from its printed form equals the original.
    public static func == (a: Operation, b: Operation) -> Bool {
        a.name == b.name && a.operands == b.operands && a.results == b.results && a.attributes == b.attributes
    }
}

/// `func @decode(%ids: tensor<?xi32>) -> tensor<?x49152xf32> { … return %logits : … }`
public struct Function: Sendable {
    public var name: String
    public var arguments: [Value]
    public var body: [Operation]
    /// The values `return` hands back.
    public var returnValues: [Value]
    public var location: SourceLocation
    public var returnLocation: SourceLocation

    public init(name: String, arguments: [Value] = [], body: [Operation] = [], returnValues: [Value] = [],
                location: SourceLocation = .unknown, returnLocation: SourceLocation = .unknown) {
        self.name = name
        self.arguments = arguments
        self.body = body
        self.returnValues = returnValues
        self.location = location
        self.returnLocation = returnLocation
    }

    public var resultTypes: [NMType] { returnValues.map(\.type) }

    /// Every value name defined in the function: arguments and op results.
    public var definedNames: Set<String> {
        var names = Set(arguments.map(\.name))
        for op in body { for r in op.results { names.insert(r.name) } }
        return names
    }

    /// Replaces every use of `old` (by name) with `new` in operands and returns.
    public mutating func replaceAllUses(of old: String, with new: Value) {
        for i in body.indices {
            for j in body[i].operands.indices where body[i].operands[j].name == old {
                body[i].operands[j] = new
            }
        }
        for j in returnValues.indices where returnValues[j].name == old { returnValues[j] = new }
    }

    /// Gives value `name` a new type at its definition and at every use (operands carry their
    /// value's type). Arguments are not retyped.
    public mutating func retype(_ name: String, to type: NMType) {
        for i in body.indices {
            for j in body[i].results.indices where body[i].results[j].name == name { body[i].results[j].type = type }
            for j in body[i].operands.indices where body[i].operands[j].name == name { body[i].operands[j].type = type }
        }
        for j in returnValues.indices where returnValues[j].name == name { returnValues[j].type = type }
    }

    /// How many times each value name is used (as an operand or returned).
    public func useCounts() -> [String: Int] {
        var counts: [String: Int] = [:]
        for op in body { for v in op.operands { counts[v.name, default: 0] += 1 } }
        for v in returnValues { counts[v.name, default: 0] += 1 }
        return counts
    }
}

extension Function: Equatable {
    public static func == (a: Function, b: Function) -> Bool {
        a.name == b.name && a.arguments == b.arguments && a.body == b.body && a.returnValues == b.returnValues
    }
}

/// A module: functions and the weight store they read from.
public struct Module: Sendable, CustomStringConvertible {
    public var name: String?
    public var attributes: [String: Attribute]
    public var weights: WeightStore
    public var functions: [Function]
    public var location: SourceLocation

    public init(name: String? = nil, attributes: [String: Attribute] = [:], weights: WeightStore = WeightStore(),
                functions: [Function] = [], location: SourceLocation = .unknown) {
        self.name = name
        self.attributes = attributes
        self.weights = weights
        self.functions = functions
        self.location = location
    }

    public func function(named name: String) -> Function? { functions.first { $0.name == name } }

    public var description: String { Printer().print(self) }
}

extension Module: Equatable {
    public static func == (a: Module, b: Module) -> Bool {
        a.name == b.name && a.attributes == b.attributes && a.weights == b.weights && a.functions == b.functions
    }
}
