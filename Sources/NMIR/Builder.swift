/// Builds functions op by op, naming results `%0`, `%1`, … (or as asked) and inferring their
/// types from the op registry.
public struct Builder {
    public private(set) var function: Function
    public var registry: OpRegistry
    public var weights: WeightStore?
    private var counter = 0

    public init(function: Function, weights: WeightStore? = nil, registry: OpRegistry = .standard) {
        self.function = function
        self.weights = weights
        self.registry = registry
        // Continue numbering past names already used.
        for name in function.definedNames { if let n = Int(name) { counter = max(counter, n + 1) } }
    }

    public init(name: String, arguments: [(String, NMType)], weights: WeightStore? = nil) {
        self.init(function: Function(name: name, arguments: arguments.map { Value(name: $0.0, type: $0.1) }),
                  weights: weights)
    }

    public var arguments: [Value] { function.arguments }

    /// A name not used yet in the function.
    public mutating func freshName() -> String {
        let used = function.definedNames
        while used.contains(String(counter)) { counter += 1 }
        defer { counter += 1 }
        return String(counter)
    }

    /// Appends an op; result types come from the op's type rule unless given.
    @discardableResult
    public mutating func create(_ name: String, _ operands: [Value] = [], attributes: [String: Attribute] = [:],
                                resultTypes: [NMType]? = nil, resultNames: [String]? = nil,
                                location: SourceLocation = .unknown) throws -> [Value] {
        guard let def = registry[name] else { throw Diagnostic(at: location, "unknown operation '\(name)'") }
        var op = Operation(name: name, operands: operands, attributes: attributes, location: location)
        let types: [NMType]
        if let resultTypes {
            types = resultTypes
        } else {
            do {
                guard let inferred = try def.typeRule(OpContext(op: op, definition: def, weights: weights)) else {
                    throw Diagnostic(at: location, "'\(name)': result types must be given")
                }
                types = inferred
            } catch let e as OpError {
                throw Diagnostic(at: location, "'\(name)': \(e.message)")
            }
        }
        let names = resultNames ?? types.map { _ in freshName() }
        op.results = zip(names, types).map { Value(name: $0, type: $1) }
        function.body.append(op)
        return op.results
    }

    /// Appends a single-result op and returns its result.
    public mutating func add(_ name: String, _ operands: [Value] = [], attributes: [String: Attribute] = [:],
                             resultType: NMType? = nil, resultName: String? = nil) throws -> Value {
        let results = try create(name, operands, attributes: attributes, resultTypes: resultType.map { [$0] },
                                 resultNames: resultName.map { [$0] })
        guard let first = results.first else { throw Diagnostic(at: .unknown, "'\(name)' has no result") }
        return first
    }

    public mutating func ret(_ values: [Value]) { function.returnValues = values }
}
