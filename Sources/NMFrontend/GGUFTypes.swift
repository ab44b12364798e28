/// The values, tensor types and errors of the GGUF format (ggml's model file format).

/// An error reading a GGUF file; its description is `<file>: error: <reason>`.
public struct GGUFError: Error, CustomStringConvertible, Sendable, Equatable {
    public var file: String
    public var reason: String
    public init(file: String, reason: String) {
        self.file = file
        self.reason = reason
    }
    public var description: String { "\(file): error: \(reason)" }
}

/// The type tag of a metadata value (`gguf_type`).
public enum GGUFValueType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7
    case string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    public var description: String {
        switch self {
        case .uint8: "uint8"
        case .int8: "int8"
        case .uint16: "uint16"
        case .int16: "int16"
        case .uint32: "uint32"
        case .int32: "int32"
        case .float32: "float32"
        case .bool: "bool"
        case .string: "string"
        case .array: "array"
        case .uint64: "uint64"
        case .int64: "int64"
        case .float64: "float64"
        }
    }

    /// The fewest bytes one value of this type takes in a file (a string's 8-byte length, an
    /// array's 4-byte type and 8-byte count); bounds array counts before anything is allocated.
    var minimumEncodedSize: Int {
        switch self {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64, .string: 8
        case .array: 12
        }
    }
}

/// A metadata value.
public enum GGUFValue: Sendable, Equatable, CustomStringConvertible {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case float32(Float), bool(Bool), string(String), array(GGUFArray)
    case uint64(UInt64), int64(Int64), float64(Double)

    public var type: GGUFValueType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .float32: .float32
        case .bool: .bool
        case .string: .string
        case .array: .array
        case .uint64: .uint64
        case .int64: .int64
        case .float64: .float64
        }
    }

    /// The value of an integer of any width, when it is one (as the widest signed/unsigned type).
    var integer: (signed: Int64?, unsigned: UInt64?)? {
        switch self {
        case .uint8(let v): (Int64(v), UInt64(v))
        case .int8(let v): (Int64(v), UInt64(exactly: v))
        case .uint16(let v): (Int64(v), UInt64(v))
        case .int16(let v): (Int64(v), UInt64(exactly: v))
        case .uint32(let v): (Int64(v), UInt64(v))
        case .int32(let v): (Int64(v), UInt64(exactly: v))
        case .uint64(let v): (Int64(exactly: v), v)
        case .int64(let v): (v, UInt64(exactly: v))
        default: nil
        }
    }

    public var description: String {
        switch self {
        case .uint8(let v): "\(v)"
        case .int8(let v): "\(v)"
        case .uint16(let v): "\(v)"
        case .int16(let v): "\(v)"
        case .uint32(let v): "\(v)"
        case .int32(let v): "\(v)"
        case .float32(let v): "\(v)"
        case .bool(let v): "\(v)"
        case .string(let v): "\"\(v)\""
        case .array(let a): a.description
        case .uint64(let v): "\(v)"
        case .int64(let v): "\(v)"
        case .float64(let v): "\(v)"
        }
    }
}

/// A metadata array: all elements share one type; arrays may nest (each inner array has its own
/// element type).
public enum GGUFArray: Sendable, Equatable, CustomStringConvertible {
    case uint8([UInt8]), int8([Int8]), uint16([UInt16]), int16([Int16]), uint32([UInt32]), int32([Int32])
    case float32([Float]), bool([Bool]), string([String]), array([GGUFArray])
    case uint64([UInt64]), int64([Int64]), float64([Double])

    public var elementType: GGUFValueType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .float32: .float32
        case .bool: .bool
        case .string: .string
        case .array: .array
        case .uint64: .uint64
        case .int64: .int64
        case .float64: .float64
        }
    }

    public var count: Int {
        switch self {
        case .uint8(let a): a.count
        case .int8(let a): a.count
        case .uint16(let a): a.count
        case .int16(let a): a.count
        case .uint32(let a): a.count
        case .int32(let a): a.count
        case .float32(let a): a.count
        case .bool(let a): a.count
        case .string(let a): a.count
        case .array(let a): a.count
        case .uint64(let a): a.count
        case .int64(let a): a.count
        case .float64(let a): a.count
        }
    }

    /// Every element as a value (for printing and generic walks; large arrays are better read
    /// through the typed cases).
    public var values: [GGUFValue] {
        switch self {
        case .uint8(let a): a.map(GGUFValue.uint8)
        case .int8(let a): a.map(GGUFValue.int8)
        case .uint16(let a): a.map(GGUFValue.uint16)
        case .int16(let a): a.map(GGUFValue.int16)
        case .uint32(let a): a.map(GGUFValue.uint32)
        case .int32(let a): a.map(GGUFValue.int32)
        case .float32(let a): a.map(GGUFValue.float32)
        case .bool(let a): a.map(GGUFValue.bool)
        case .string(let a): a.map(GGUFValue.string)
        case .array(let a): a.map(GGUFValue.array)
        case .uint64(let a): a.map(GGUFValue.uint64)
        case .int64(let a): a.map(GGUFValue.int64)
        case .float64(let a): a.map(GGUFValue.float64)
        }
    }

    /// `[a, b, c]`, eliding the middle of long arrays explicitly (`… 49146 more …`).
    public var description: String {
        let shown = 8
        let all = count
        if all <= shown { return "[" + values.map(\.description).joined(separator: ", ") + "]" }
        let head = GGUFArray.slice(self, 0..<4).values.map(\.description)
        let tail = GGUFArray.slice(self, (all - 2)..<all).values.map(\.description)
        return "[" + head.joined(separator: ", ") + ", … \(all - 6) more …, " + tail.joined(separator: ", ") + "] (\(all) \(elementType))"
    }

    private static func slice(_ a: GGUFArray, _ r: Range<Int>) -> GGUFArray {
        switch a {
        case .uint8(let v): .uint8(Array(v[r]))
        case .int8(let v): .int8(Array(v[r]))
        case .uint16(let v): .uint16(Array(v[r]))
        case .int16(let v): .int16(Array(v[r]))
        case .uint32(let v): .uint32(Array(v[r]))
        case .int32(let v): .int32(Array(v[r]))
        case .float32(let v): .float32(Array(v[r]))
        case .bool(let v): .bool(Array(v[r]))
        case .string(let v): .string(Array(v[r]))
        case .array(let v): .array(Array(v[r]))
        case .uint64(let v): .uint64(Array(v[r]))
        case .int64(let v): .int64(Array(v[r]))
        case .float64(let v): .float64(Array(v[r]))
        }
    }
}

/// A tensor element type of ggml (`ggml_type`), with its block layout: `blockSize` elements are
/// stored in `typeSize` bytes. Numbers that ggml retired (4, 5, 31–33, 36–38) are not cases, so a
/// file using them is rejected as having an unknown type.
public enum GGMLType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, q8_K = 15
    case iq2_xxs = 16, iq2_xs = 17, iq3_xxs = 18, iq1_s = 19, iq4_nl = 20, iq3_s = 21, iq2_s = 22, iq4_xs = 23
    case i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, iq1_m = 29, bf16 = 30
    case tq1_0 = 34, tq2_0 = 35, mxfp4 = 39

    /// The super-block size of the k-quants.
    static let qkK = 256

    /// Elements per block.
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16, .i8, .i16, .i32, .i64, .f64: 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1, .iq4_nl, .mxfp4: 32
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K, .iq2_xxs, .iq2_xs, .iq3_xxs, .iq1_s, .iq3_s,
             .iq2_s, .iq4_xs, .iq1_m, .tq1_0, .tq2_0: Self.qkK
        }
    }

    /// Bytes per block (ggml's `type_size`).
    public var typeSize: Int {
        let k = Self.qkK
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .i8: return 1
        case .i16: return 2
        case .i32: return 4
        case .i64, .f64: return 8
        case .q4_0: return 2 + 16
        case .q4_1: return 2 + 2 + 16
        case .q5_0: return 2 + 4 + 16
        case .q5_1: return 2 + 2 + 4 + 16
        case .q8_0: return 2 + 32
        case .q8_1: return 4 + 4 + 32
        case .q2_K: return 2 + 2 + k / 16 + k / 4
        case .q3_K: return 2 + k / 4 + k / 8 + 12
        case .q4_K: return 2 + 2 + 12 + k / 2
        case .q5_K: return 2 + 2 + 12 + k / 2 + k / 8
        case .q6_K: return 2 + k / 2 + k / 4 + k / 16
        case .q8_K: return 4 + k + k / 8
        case .iq2_xxs: return 2 + k / 4
        case .iq2_xs: return 2 + k / 4 + k / 32
        case .iq3_xxs: return 2 + k / 4 + k / 8
        case .iq1_s: return 2 + k / 8 + k / 16
        case .iq4_nl: return 2 + 16
        case .iq3_s: return 2 + k / 4 + k / 8 + k / 32 + 4
        case .iq2_s: return 2 + k / 4 + k / 16
        case .iq4_xs: return 2 + 2 + k / 2 + k / 64
        case .iq1_m: return k / 8 + k / 16 + k / 32
        case .tq1_0: return 2 + 4 * 13
        case .tq2_0: return 2 + 64
        case .mxfp4: return 1 + 16
        }
    }

    /// ggml's name for the type: `F32`, `Q4_1`, `Q6_K`, `IQ2_XXS` …
    public var name: String {
        switch self {
        case .f32: "F32"
        case .f16: "F16"
        case .bf16: "BF16"
        case .f64: "F64"
        case .i8: "I8"
        case .i16: "I16"
        case .i32: "I32"
        case .i64: "I64"
        case .q4_0: "Q4_0"
        case .q4_1: "Q4_1"
        case .q5_0: "Q5_0"
        case .q5_1: "Q5_1"
        case .q8_0: "Q8_0"
        case .q8_1: "Q8_1"
        case .q2_K: "Q2_K"
        case .q3_K: "Q3_K"
        case .q4_K: "Q4_K"
        case .q5_K: "Q5_K"
        case .q6_K: "Q6_K"
        case .q8_K: "Q8_K"
        case .iq2_xxs: "IQ2_XXS"
        case .iq2_xs: "IQ2_XS"
        case .iq3_xxs: "IQ3_XXS"
        case .iq1_s: "IQ1_S"
        case .iq4_nl: "IQ4_NL"
        case .iq3_s: "IQ3_S"
        case .iq2_s: "IQ2_S"
        case .iq4_xs: "IQ4_XS"
        case .iq1_m: "IQ1_M"
        case .tq1_0: "TQ1_0"
        case .tq2_0: "TQ2_0"
        case .mxfp4: "MXFP4"
        }
    }

    public var description: String { name }
}

/// One tensor of a GGUF file.
public struct GGUFTensorInfo: Sendable, Equatable {
    public var name: String
    /// Dimensions in GGUF (ggml) order: `dims[0]` (ne0) is the innermost, fastest-varying one.
    public var dims: [Int]
    public var type: GGMLType
    /// Byte offset inside the data section, as stored in the file.
    public var offset: Int
    /// Byte offset from the start of the file.
    public var fileOffset: Int
    /// Bytes of data: `elementCount / type.blockSize * type.typeSize`.
    public var byteCount: Int
    public var elementCount: Int

    /// The row-major logical shape (`dims` reversed): a `[576, 49152]` embedding in GGUF order is
    /// `[49152, 576]`, 49152 rows of 576 contiguous elements.
    public var shape: [Int] { dims.reversed() }

    public init(name: String, dims: [Int], type: GGMLType, offset: Int, fileOffset: Int, byteCount: Int, elementCount: Int) {
        self.name = name
        self.dims = dims
        self.type = type
        self.offset = offset
        self.fileOffset = fileOffset
        self.byteCount = byteCount
        self.elementCount = elementCount
    }
}
