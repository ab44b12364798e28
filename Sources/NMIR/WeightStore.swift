/// Where a weight's contents are.
public enum WeightData: Sendable, Equatable {
    /// Values written in the text, `= dense<[1.0, -2.0]>`; for small tests and examples.
    case values([Double])
    /// Raw little-endian storage in the layout of the weight's type (see `WeightStore.storageByteCount`).
    case bytes([UInt8])
    /// In the store's safetensors file, read when needed.
    case external
    /// Left out of a dump on purpose (`= elided`): the module can be read and verified but not run.
    case elided
}

/// A named weight: `@blk.0.attn_q.weight : tensor<576x576xf32>`.
public struct WeightEntry: Sendable, Equatable {
    public var name: String
    public var type: NMType
    public var data: WeightData
    public var location: SourceLocation

    public init(name: String, type: NMType, data: WeightData = .external, location: SourceLocation = .unknown) {
        self.name = name
        self.type = type
        self.data = data
        self.location = location
    }

    public static func == (a: WeightEntry, b: WeightEntry) -> Bool {
        a.name == b.name && a.type == b.type && a.data == b.data
    }
}

/// The weights of a module. Those not written in the text live in a safetensors file beside the
/// `.nmir` (`file`, a path relative to the `.nmir`'s directory); ops name them with `nn.weight {name = @…}`.
public struct WeightStore: Sendable, Equatable {
    public var file: String?
    public private(set) var entries: [WeightEntry]
    private var indexByName: [String: Int]

    public init(file: String? = nil, entries: [WeightEntry] = []) {
        self.file = file
        self.entries = []
        self.indexByName = [:]
        for e in entries { self[e.name] = e }
    }

    public static func == (a: WeightStore, b: WeightStore) -> Bool { a.file == b.file && a.entries == b.entries }

    public var isEmpty: Bool { entries.isEmpty }
    public var names: [String] { entries.map(\.name) }

    /// Reads, adds (at the end) or replaces an entry; assigning nil removes it.
    public subscript(name: String) -> WeightEntry? {
        get { indexByName[name].map { entries[$0] } }
        set {
            if let i = indexByName[name] {
                if let newValue { entries[i] = newValue } else {
                    entries.remove(at: i)
                    rebuildIndex()
                }
            } else if let newValue {
                indexByName[name] = entries.count
                entries.append(newValue)
            }
        }
    }

    private mutating func rebuildIndex() {
        indexByName = [:]
        for (i, e) in entries.enumerated() { indexByName[e.name] = i }
    }

    /// Bytes a weight of this type occupies in storage, or nil when its shape is not static.
    /// Packed weights: the kept values (`bits` each, two 4-bit values per byte, low nibble first),
    /// then, for N:M, one index of ⌈log2 M⌉ bits per kept value, packed the same way.
    /// Scales and zero points are separate tensors.
    public static func storageByteCount(of type: NMType) -> Int? {
        switch type {
        case .tensor(let t):
            guard let count = t.elementCount else { return nil }
            return (count * t.dtype.bitWidth + 7) / 8
        case .packed(let p):
            let kept = p.keptPerRow
            let values = (p.rows * kept * p.bits + 7) / 8
            guard let nm = p.nm else { return values }
            let indexBits = Int.bitWidth - (nm.m - 1).leadingZeroBitCount
            return values + (p.rows * kept * indexBits + 7) / 8
        case .kvCache:
            return nil
        }
    }
}
