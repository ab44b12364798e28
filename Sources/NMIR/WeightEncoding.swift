/// Converts between the numbers of a weight and its little-endian storage bytes.
public enum WeightEncoding {
    /// Storage bytes of `values` as elements of `dtype` (floats round to nearest even; i4 packs
    /// two per byte, low nibble first, two's complement).
    public static func encode(_ values: [Double], as dtype: DType) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity((values.count * dtype.bitWidth + 7) / 8)
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        switch dtype {
        case .f32: for v in values { put(Float(v).bitPattern) }
        case .f16: for v in values { put(Float16(Float(v)).bitPattern) }
        case .bf16: for v in values { put(bfloat16Bits(Float(v))) }
        case .i32: for v in values { put(Int32(clamping: Int(v))) }
        case .i8: for v in values { put(Int8(clamping: Int(v))) }
        case .index: for v in values { put(Int64(v)) }
        case .i4:
            var i = 0
            while i < values.count {
                let lo = UInt8(bitPattern: Int8(clamping: Int(values[i]))) & 0xF
                let hi = i + 1 < values.count ? UInt8(bitPattern: Int8(clamping: Int(values[i + 1]))) & 0xF : 0
                out.append(lo | hi << 4)
                i += 2
            }
        }
        return out
    }

    /// The numbers stored in `bytes` as `count` elements of `dtype`.
    public static func decode(_ bytes: some Collection<UInt8>, as dtype: DType, count: Int) -> [Double] {
        let b = Array(bytes)
        var out: [Double] = []
        out.reserveCapacity(count)
        func load<T: FixedWidthInteger>(_: T.Type, _ i: Int) -> T {
            var v: T = 0
            for k in 0..<MemoryLayout<T>.size { v |= T(truncatingIfNeeded: b[i * MemoryLayout<T>.size + k]) << (8 * k) }
            return v
        }
        switch dtype {
        case .f32: for i in 0..<count { out.append(Double(Float(bitPattern: load(UInt32.self, i)))) }
        case .f16: for i in 0..<count { out.append(Double(Float(Float16(bitPattern: load(UInt16.self, i))))) }
        case .bf16: for i in 0..<count { out.append(Double(Float(bitPattern: UInt32(load(UInt16.self, i)) << 16))) }
        case .i32: for i in 0..<count { out.append(Double(load(Int32.self, i))) }
        case .i8: for i in 0..<count { out.append(Double(Int8(bitPattern: b[i]))) }
        case .index: for i in 0..<count { out.append(Double(load(Int64.self, i))) }
        case .i4:
            for i in 0..<count {
                let nibble = (i % 2 == 0 ? b[i / 2] : b[i / 2] >> 4) & 0xF
                out.append(Double(Int8(bitPattern: nibble << 4) >> 4))
            }
        }
        return out
    }

    /// bfloat16: the upper half of an f32, rounded to nearest even (NaN stays NaN).
    public static func bfloat16Bits(_ f: Float) -> UInt16 {
        if f.isNaN { return 0x7FC0 }
        let bits = f.bitPattern
        let rounding = 0x7FFF + ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
    }
}

extension WeightEntry {
    /// The entry's storage bytes when its data is in memory.
    public var storageBytes: [UInt8]? {
        switch data {
        case .bytes(let b): return b
        case .values(let v):
            guard let t = type.tensor else { return nil }
            return WeightEncoding.encode(v, as: t.dtype)
        case .external, .elided: return nil
        }
    }
}

extension WeightEntry {
    /// The values of an in-memory tensor weight as f32 (f32 storage is copied as is).
    public var floatValues: [Float]? {
        guard case .tensor(let t) = type, let count = t.elementCount, let bytes = storageBytes else { return nil }
        if t.dtype == .f32, bytes.count == count * 4 {
            var out = [Float](repeating: 0, count: count)
            out.withUnsafeMutableBytes { dst in bytes.withUnsafeBytes { dst.copyMemory(from: $0) } }
            return out
        }
        return WeightEncoding.decode(bytes, as: t.dtype, count: count).map(Float.init)
    }

    /// An f32 tensor weight held in memory.
    public init(name: String, floats: [Float], type: TensorType) {
        self.init(name: name, type: .tensor(type), data: .bytes(floats.withUnsafeBytes { [UInt8]($0) }))
    }
}
