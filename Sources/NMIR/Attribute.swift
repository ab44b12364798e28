/// Attribute values: `{eps = 1.0e-05, causal = true, perm = [1, 0, 2], nm = 2:4, scale = f16, name = @w}`.
public enum Attribute: Hashable, Sendable, CustomStringConvertible {
    case int(Int)
    case float(Double)
    case string(String)
    case bool(Bool)
    case array([Attribute])
    case pattern(NMPattern)
    case dtype(DType)
    /// A reference to a weight of the module's weight store: `@blk.0.attn_q.weight`.
    case symbol(String)

    public var description: String {
        switch self {
        case .int(let v): return String(v)
        case .float(let v): return formatFloat(v)
        case .string(let s): return quoteString(s)
        case .bool(let b): return b ? "true" : "false"
        case .array(let a): return "[" + a.map(\.description).joined(separator: ", ") + "]"
        case .pattern(let p): return p.description
        case .dtype(let d): return d.rawValue
        case .symbol(let s): return symbolText(s)
        }
    }

    public var intValue: Int? { if case .int(let v) = self { return v } else { return nil } }
    /// A float attribute, or an int one read as a float.
    public var floatValue: Double? {
        switch self {
        case .float(let v): return v
        case .int(let v): return Double(v)
        default: return nil
        }
    }
    public var stringValue: String? { if case .string(let v) = self { return v } else { return nil } }
    public var boolValue: Bool? { if case .bool(let v) = self { return v } else { return nil } }
    public var arrayValue: [Attribute]? { if case .array(let v) = self { return v } else { return nil } }
    public var intArrayValue: [Int]? {
        guard let a = arrayValue else { return nil }
        let ints = a.compactMap(\.intValue)
        return ints.count == a.count ? ints : nil
    }
    public var floatArrayValue: [Double]? {
        guard let a = arrayValue else { return nil }
        let values = a.compactMap(\.floatValue)
        return values.count == a.count ? values : nil
    }
    public var patternValue: NMPattern? { if case .pattern(let v) = self { return v } else { return nil } }
    public var dtypeValue: DType? { if case .dtype(let v) = self { return v } else { return nil } }
    public var symbolValue: String? { if case .symbol(let v) = self { return v } else { return nil } }
}

/// Floats print in Swift's shortest round-tripping form, always with a `.` or an
/// exponent so that they never read back as integers.
public func formatFloat(_ v: Double) -> String {
    if v.isNaN { return "nan" }
    if v.isInfinite { return v < 0 ? "-inf" : "inf" }
    let s = "\(v)"
    return s.contains(".") || s.contains("e") ? s : s + ".0"
}

/// A double-quoted string with `\"`, `\\`, `\n`, `\t` and `\u{…}` escapes.
public func quoteString(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7f {
                out += "\\u{" + String(scalar.value, radix: 16) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}

/// `@name`, quoting the name when it holds characters an identifier cannot.
public func symbolText(_ name: String) -> String {
    let bare = !name.isEmpty && name.unicodeScalars.allSatisfy { Lexing.isIdentifierBody($0) }
    return "@" + (bare ? name : quoteString(name))
}
