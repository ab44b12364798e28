/// An SSA value: a name unique within its function (`%x`, `%12`) and a type.
public struct Value: Hashable, Sendable, CustomStringConvertible {
    public var name: String
    public var type: NMType

    public init(name: String, type: NMType) {
        self.name = name
        self.type = type
    }

    public var description: String { "%" + name }
}
