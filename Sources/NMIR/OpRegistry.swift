/// Every op NMIR knows, each declared once. Passes, the verifier, the printer, the parser,
/// `nmc-opt --list-ops` and the spec test all read it.
public struct OpRegistry: Sendable {
    public let definitions: [OpDefinition]
    private let byName: [String: OpDefinition]

    public init(_ definitions: [OpDefinition]) {
        self.definitions = definitions.sorted { $0.name < $1.name }
        var map: [String: OpDefinition] = [:]
        for d in definitions { map[d.name] = d }
        self.byName = map
    }

    public static let standard = OpRegistry(NNOps.all + TensorOps.all + QuantOps.all + KVOps.all)

    public subscript(name: String) -> OpDefinition? { byName[name] }

    public var dialects: [String] { Array(Set(definitions.map(\.dialect))).sorted() }
}
