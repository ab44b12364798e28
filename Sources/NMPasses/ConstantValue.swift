import NMIR

/// The value of an `arith.constant`, expanded for folding.
struct ConstantValue {
    var type: TensorType
    /// One value per element, row-major (a splat is expanded).
    var elements: [Double]
    var isSplat: Bool

    /// Larger constants are not folded: folding should shrink programs, not bloat them.
    static let maxFoldedElements = 1 << 16

    init?(_ op: Operation) {
        guard op.name == "arith.constant", let t = op.result?.type.tensor, let count = t.elementCount,
              count <= ConstantValue.maxFoldedElements, let value = op.attributes["value"] else { return nil }
        type = t
        if let array = value.floatArrayValue {
            guard array.count == count else { return nil }
            elements = array
            isSplat = false
        } else if let v = value.floatValue {
            elements = Array(repeating: v, count: count)
            isSplat = true
        } else {
            return nil
        }
    }

    init(type: TensorType, elements: [Double]) {
        self.type = type
        self.elements = elements
        self.isSplat = false
    }

    /// Whether every element equals `v`.
    func isAll(_ v: Double) -> Bool { elements.allSatisfy { $0 == v } }

    /// The attribute that stores these elements: one number when all are equal.
    var attribute: Attribute {
        let integer = type.dtype.isInteger
        func attr(_ v: Double) -> Attribute { integer ? .int(Int(v)) : .float(v) }
        // Bit patterns, not ==: -0.0 == 0.0, but 1 / -0.0 is -inf.
        if let first = elements.first, elements.allSatisfy({ $0.bitPattern == first.bitPattern || ($0.isNaN && first.isNaN) }) { return attr(first) }
        return .array(elements.map(attr))
    }

    /// Element `index` of `result` shape read from this constant under broadcasting.
    func broadcastElement(_ resultIndex: [Int]) -> Double {
        let rank = type.rank
        var offset = 0
        var step = 1
        for d in (0..<rank).reversed() {
            let size = type.shape[d].value ?? 1
            let i = size == 1 ? 0 : resultIndex[resultIndex.count - rank + d]
            offset += i * step
            step *= size
        }
        return elements[offset]
    }
}
