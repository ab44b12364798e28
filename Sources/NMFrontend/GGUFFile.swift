/// A GGUF file (versions 2 and 3, little-endian), memory-mapped.
///
/// Layout: the magic `GGUF`, a `uint32` version, a `uint64` tensor count and a `uint64` metadata
/// count; the metadata (`string key`, `uint32 type`, value); one info per tensor (`string name`,
/// `uint32 n_dims`, `uint64 ne[n_dims]`, `uint32 ggml_type`, `uint64 offset`); padding to
/// `general.alignment` (default 32); the data section, which the tensor offsets index. Strings are
/// a `uint64` length and UTF-8 bytes; arrays a `uint32` element type, a `uint64` count and the
/// elements.
///
/// Every size read from the file is checked against the bytes left in it before anything is
/// allocated, so a damaged or hostile file throws a `GGUFError` naming the file and the problem;
/// it never traps. Tensor data stays in the mapping: `rawBytes(of:)` / `withRawBytes(of:_:)` give
/// it without copying, `dequantize(_:)` converts it to f32.
public final class GGUFFile: @unchecked Sendable {
    public let path: String
    public let version: UInt32
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    public let metadata: [String: GGUFValue]
    /// Tensors in file order.
    public let tensors: [GGUFTensorInfo]
    /// `general.alignment`, or 32.
    public let alignment: Int
    /// File offset of the data section (a multiple of `alignment`).
    public let dataOffset: Int
    /// The file size in bytes.
    public var fileSize: Int { file.count }

    private let file: MappedFile
    private let tensorIndex: [String: Int]

    /// The versions this reader understands (version 1 used 32-bit counts and is long gone).
    public static let supportedVersions: ClosedRange<UInt32> = 2...3
    public static let defaultAlignment = 32
    /// ggml's GGML_MAX_DIMS.
    public static let maxDimensions = 4
    /// The largest single dimension accepted (2^40).
    public static let maxDimension = 1 << 40
    /// Metadata arrays may nest; deeper than this is taken for a damaged file.
    public static let maxArrayNesting = 16

    /// Maps and parses the file at `path`.
    public static func open(path: String) throws -> GGUFFile {
        let file = try MappedFile(path: path) { GGUFError(file: path, reason: $0) }
        return try GGUFFile(file: file)
    }

    private init(file: MappedFile) throws {
        self.file = file
        path = file.path
        var r = GGUFCursor(bytes: file.bytes, file: file.path)
        let magic = try r.read(UInt32.self, "magic")
        guard magic == 0x4655_4747 else {  // "GGUF" little-endian
            let shown = withUnsafeBytes(of: magic.littleEndian) { Array($0) }.map { b in
                (0x20..<0x7F).contains(b) ? String(UnicodeScalar(b)) : "\\x" + String(b, radix: 16)
            }.joined()
            throw GGUFError(file: file.path, reason: "not a GGUF file (magic is \"\(shown)\", expected \"GGUF\")")
        }
        let version = try r.read(UInt32.self, "version")
        guard Self.supportedVersions.contains(version) else {
            if Self.supportedVersions.contains(version.byteSwapped) {
                throw GGUFError(file: file.path, reason: "big-endian GGUF (version \(version.byteSwapped)) is not supported")
            }
            throw GGUFError(file: file.path, reason: "unsupported GGUF version \(version) (supported: 2 and 3)")
        }
        self.version = version
        let tensorCount = try r.read(UInt64.self, "tensor count")
        let metadataCount = try r.read(UInt64.self, "metadata count")
        // Each metadata entry takes at least 13 bytes (key length, type, one byte of value), each
        // tensor info at least 24 (name length, n_dims, type, offset).
        try r.checkCount(metadataCount, minimumSize: 13, what: "metadata count")
        try r.checkCount(tensorCount, minimumSize: 24, what: "tensor count")

        var keys: [String] = []
        var values: [String: GGUFValue] = [:]
        keys.reserveCapacity(Int(metadataCount))
        for i in 0..<Int(metadataCount) {
            let key = try r.string("key of metadata entry \(i)")
            guard values[key] == nil else { throw r.error("duplicate metadata key '\(key)'") }
            let rawType = try r.read(UInt32.self, "type of metadata '\(key)'")
            guard let type = GGUFValueType(rawValue: rawType) else {
                throw r.error("metadata '\(key)' has unknown value type \(rawType)")
            }
            values[key] = try r.value(of: type, what: "metadata '\(key)'", depth: 0)
            keys.append(key)
        }
        metadataKeys = keys
        metadata = values

        var alignment = Self.defaultAlignment
        if let a = values["general.alignment"] {
            guard let n = a.integer?.signed, n > 0, n <= 1 << 30, n & (n - 1) == 0 else {
                throw r.error("general.alignment \(a) (\(a.type)) is not a power of two")
            }
            alignment = Int(n)
        }
        self.alignment = alignment

        var infos: [(name: String, dims: [Int], type: GGMLType, offset: UInt64, count: Int, bytes: Int)] = []
        infos.reserveCapacity(Int(tensorCount))
        var index: [String: Int] = [:]
        for i in 0..<Int(tensorCount) {
            let name = try r.string("name of tensor \(i)")
            guard index[name] == nil else { throw r.error("duplicate tensor name '\(name)'") }
            let nDims = try r.read(UInt32.self, "dimension count of tensor '\(name)'")
            guard nDims <= Self.maxDimensions else {
                throw r.error("tensor '\(name)' has \(nDims) dimensions; at most \(Self.maxDimensions) are allowed")
            }
            var dims: [Int] = []
            var count = 1
            for d in 0..<Int(nDims) {
                let n = try r.read(UInt64.self, "dimension \(d) of tensor '\(name)'")
                guard n <= UInt64(Self.maxDimension) else {
                    throw r.error("tensor '\(name)' dimension \(d) is \(n), more than the limit 2^40")
                }
                dims.append(Int(n))
                let (p, overflow) = count.multipliedReportingOverflow(by: Int(n))
                guard !overflow else {
                    throw r.error("tensor '\(name)' dimensions \(dims) have more elements than fit in 64 bits")
                }
                count = p
            }
            let rawType = try r.read(UInt32.self, "type of tensor '\(name)'")
            guard let type = GGMLType(rawValue: rawType) else {
                throw r.error("tensor '\(name)' has unknown ggml type \(rawType)")
            }
            let offset = try r.read(UInt64.self, "offset of tensor '\(name)'")
            let rowLength = dims.first ?? 1
            guard rowLength % type.blockSize == 0 else {
                throw r.error("tensor '\(name)' rows of \(rowLength) elements are not a multiple of the \(type) block size \(type.blockSize)")
            }
            let (bytes, overflow) = (count / type.blockSize).multipliedReportingOverflow(by: type.typeSize)
            guard !overflow else { throw r.error("tensor '\(name)' of \(count) elements has a byte size that overflows") }
            guard offset % UInt64(alignment) == 0 else {
                throw r.error("tensor '\(name)' offset \(offset) is not a multiple of the alignment \(alignment)")
            }
            index[name] = infos.count
            infos.append((name, dims, type, offset, count, bytes))
        }
        tensorIndex = index

        // The data section starts at the next multiple of the alignment.
        let headerEnd = r.offset
        let dataOffset = (headerEnd + alignment - 1) / alignment * alignment
        self.dataOffset = dataOffset
        let fileSize = file.count
        tensors = try infos.map { t in
            let start = UInt64(dataOffset).addingReportingOverflow(t.offset)
            let end = start.partialValue.addingReportingOverflow(UInt64(t.bytes))
            guard !start.overflow, !end.overflow, end.partialValue <= UInt64(fileSize) else {
                throw GGUFError(file: file.path, reason: "tensor '\(t.name)' data (\(t.bytes) bytes at data offset \(t.offset), file offset \(dataOffset) + \(t.offset)) runs past the end of the file (\(fileSize) bytes)")
            }
            return GGUFTensorInfo(name: t.name, dims: t.dims, type: t.type, offset: Int(t.offset),
                                  fileOffset: Int(start.partialValue), byteCount: t.bytes, elementCount: t.count)
        }
    }

    // MARK: Tensors

    public func tensor(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The tensor's bytes inside the mapping, valid only while this object is alive: prefer
    /// `withRawBytes(of:_:)`, or keep the file alive with `withExtendedLifetime`.
    public func rawBytes(of tensor: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: file.bytes[checkedRange(tensor)])
    }

    /// `body` with the tensor's bytes, keeping the mapping alive meanwhile.
    public func withRawBytes<R>(of tensor: GGUFTensorInfo, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try file.withBytes(in: checkedRange(tensor), body)
    }

    /// The tensor as f32 values in row-major order of `shape` (GGUF `ne0` fastest). Throws for
    /// types that `GGMLQuants` cannot dequantize, naming the tensor and the type.
    public func dequantize(_ tensor: GGUFTensorInfo) throws -> [Float] {
        try withRawBytes(of: tensor) { bytes in
            do {
                return try GGMLQuants.dequantize(bytes, type: tensor.type, count: tensor.elementCount)
            } catch let e as GGMLQuants.UnsupportedType {
                throw GGUFError(file: path, reason: "tensor '\(tensor.name)': \(e.reason)")
            }
        }
    }

    /// The byte range of a tensor; one from another file, or altered, falls back to an empty range
    /// rather than reaching outside the mapping.
    private func checkedRange(_ t: GGUFTensorInfo) -> Range<Int> {
        guard t.fileOffset >= 0, t.byteCount >= 0, t.fileOffset <= file.count, t.byteCount <= file.count - t.fileOffset else {
            return 0..<0
        }
        return t.fileOffset..<(t.fileOffset + t.byteCount)
    }

    // MARK: Metadata

    public func value(_ key: String) -> GGUFValue? { metadata[key] }

    /// An integer of any width whose value fits `UInt32`.
    public func uint32(_ key: String) -> UInt32? { metadata[key]?.integer?.unsigned.flatMap { UInt32(exactly: $0) } }
    public func uint64(_ key: String) -> UInt64? { metadata[key]?.integer?.unsigned }
    public func int32(_ key: String) -> Int32? { metadata[key]?.integer?.signed.flatMap { Int32(exactly: $0) } }
    public func int64(_ key: String) -> Int64? { metadata[key]?.integer?.signed }
    /// An integer of any width whose value fits `Int`.
    public func int(_ key: String) -> Int? { metadata[key]?.integer?.signed.flatMap { Int(exactly: $0) } }

    /// A float32 value (a float64 one is rounded to Float).
    public func float(_ key: String) -> Float? {
        switch metadata[key] {
        case .float32(let v): v
        case .float64(let v): Float(v)
        default: nil
        }
    }

    /// A float32 or float64 value.
    public func double(_ key: String) -> Double? {
        switch metadata[key] {
        case .float32(let v): Double(v)
        case .float64(let v): v
        default: nil
        }
    }

    public func bool(_ key: String) -> Bool? {
        if case .bool(let v) = metadata[key] { return v }
        return nil
    }

    public func string(_ key: String) -> String? {
        if case .string(let v) = metadata[key] { return v }
        return nil
    }

    public func array(_ key: String) -> GGUFArray? {
        if case .array(let a) = metadata[key] { return a }
        return nil
    }

    public func stringArray(_ key: String) -> [String]? {
        if case .string(let a) = array(key) { return a }
        return nil
    }

    /// An int32 array, or an array of another integer type whose every value fits Int32.
    public func int32Array(_ key: String) -> [Int32]? {
        switch array(key) {
        case .int32(let a): return a
        case .uint8(let a): return a.map(Int32.init)
        case .int8(let a): return a.map(Int32.init)
        case .uint16(let a): return a.map(Int32.init)
        case .int16(let a): return a.map(Int32.init)
        case .uint32(let a): return a.allSatisfy { $0 <= UInt32(Int32.max) } ? a.map { Int32($0) } : nil
        case .int64(let a): return a.allSatisfy { Int32(exactly: $0) != nil } ? a.map { Int32($0) } : nil
        case .uint64(let a): return a.allSatisfy { $0 <= UInt64(Int32.max) } ? a.map { Int32($0) } : nil
        default: return nil
        }
    }

    /// A float32 array (float64 arrays are rounded to Float).
    public func floatArray(_ key: String) -> [Float]? {
        switch array(key) {
        case .float32(let a): a
        case .float64(let a): a.map { Float($0) }
        default: nil
        }
    }

    /// The error for a missing or mistyped metadata value: `metadata 'k' is missing` or
    /// `metadata 'k' is a string, expected uint32`.
    public func metadataError(_ key: String, expected: String) -> GGUFError {
        guard let v = metadata[key] else { return GGUFError(file: path, reason: "metadata '\(key)' is missing") }
        return GGUFError(file: path, reason: "metadata '\(key)' is \(v.type) \(v), expected \(expected)")
    }
}

/// Reads little-endian values from the mapped file, checking every size against the bytes left.
struct GGUFCursor {
    let bytes: UnsafeRawBufferPointer
    let file: String
    var offset = 0

    init(bytes: UnsafeRawBufferPointer, file: String) {
        self.bytes = bytes
        self.file = file
    }

    var remaining: Int { bytes.count - offset }

    func error(_ reason: String) -> GGUFError { GGUFError(file: file, reason: reason) }

    func truncated(_ what: String, needs: UInt64) -> GGUFError {
        error("truncated file: \(what) at offset \(offset) needs \(needs) bytes, but the file has \(bytes.count)")
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw truncated(what(), needs: UInt64(size)) }
        let v = bytes.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += size
        return T(littleEndian: v)
    }

    /// Checks that `count` items of at least `minimumSize` bytes each could fit in the rest of the
    /// file, so that `count` can be trusted for loops and allocations.
    func checkCount(_ count: UInt64, minimumSize: Int, what: @autoclosure () -> String) throws {
        guard count <= UInt64(remaining / minimumSize) else {
            throw error("\(what()) \(count) at offset \(offset) needs at least \(minimumSize) bytes each, more than the \(remaining) left in the file (\(bytes.count) bytes): truncated or corrupt")
        }
    }

    mutating func string(_ what: @autoclosure () -> String) throws -> String {
        let start = offset
        let length = try read(UInt64.self, "length of \(what())")
        guard length <= UInt64(remaining) else {
            throw error("string length \(length) of \(what()) at offset \(start) runs past the end of the file (\(bytes.count) bytes)")
        }
        let n = Int(length)
        // GGUF strings are UTF-8; invalid sequences decode to U+FFFD rather than failing the file.
        let s = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)]), as: UTF8.self)
        offset += n
        return s
    }

    mutating func value(of type: GGUFValueType, what: String, depth: Int) throws -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try read(UInt8.self, what))
        case .int8: return .int8(try read(Int8.self, what))
        case .uint16: return .uint16(try read(UInt16.self, what))
        case .int16: return .int16(try read(Int16.self, what))
        case .uint32: return .uint32(try read(UInt32.self, what))
        case .int32: return .int32(try read(Int32.self, what))
        case .float32: return .float32(Float(bitPattern: try read(UInt32.self, what)))
        case .bool: return .bool(try boolean(what))
        case .string: return .string(try string(what))
        case .array: return .array(try array(what, depth: depth))
        case .uint64: return .uint64(try read(UInt64.self, what))
        case .int64: return .int64(try read(Int64.self, what))
        case .float64: return .float64(Double(bitPattern: try read(UInt64.self, what)))
        }
    }

    mutating func boolean(_ what: @autoclosure () -> String) throws -> Bool {
        let start = offset
        let b = try read(UInt8.self, what())
        guard b <= 1 else { throw error("\(what()) at offset \(start): bool byte is \(b), not 0 or 1") }
        return b == 1
    }

    mutating func array(_ what: String, depth: Int) throws -> GGUFArray {
        guard depth < GGUFFile.maxArrayNesting else {
            throw error("\(what): arrays nested deeper than \(GGUFFile.maxArrayNesting) at offset \(offset)")
        }
        let rawType = try read(UInt32.self, "element type of \(what)")
        guard let type = GGUFValueType(rawValue: rawType) else {
            throw error("\(what): array has unknown element type \(rawType) at offset \(offset - 4)")
        }
        let count = try read(UInt64.self, "element count of \(what)")
        try checkCount(count, minimumSize: type.minimumEncodedSize, what: "\(what): array element count")
        let n = Int(count)
        switch type {
        case .uint8: return .uint8(try scalars(UInt8.self, n, what))
        case .int8: return .int8(try scalars(Int8.self, n, what))
        case .uint16: return .uint16(try scalars(UInt16.self, n, what))
        case .int16: return .int16(try scalars(Int16.self, n, what))
        case .uint32: return .uint32(try scalars(UInt32.self, n, what))
        case .int32: return .int32(try scalars(Int32.self, n, what))
        case .float32: return .float32(try scalars(UInt32.self, n, what).map { Float(bitPattern: $0) })
        case .uint64: return .uint64(try scalars(UInt64.self, n, what))
        case .int64: return .int64(try scalars(Int64.self, n, what))
        case .float64: return .float64(try scalars(UInt64.self, n, what).map { Double(bitPattern: $0) })
        case .bool:
            var out: [Bool] = []
            out.reserveCapacity(n)
            for i in 0..<n { out.append(try boolean("element \(i) of \(what)")) }
            return .bool(out)
        case .string:
            var out: [String] = []
            out.reserveCapacity(n)
            for i in 0..<n { out.append(try string("element \(i) of \(what)")) }
            return .string(out)
        case .array:
            var out: [GGUFArray] = []
            out.reserveCapacity(n)
            for i in 0..<n { out.append(try array("element \(i) of \(what)", depth: depth + 1)) }
            return .array(out)
        }
    }

    /// `n` fixed-width values; `checkCount` has already bounded `n` by the bytes left.
    mutating func scalars<T: FixedWidthInteger>(_: T.Type, _ n: Int, _ what: @autoclosure () -> String) throws -> [T] {
        let size = MemoryLayout<T>.size
        guard n <= remaining / size else { throw truncated("elements of \(what())", needs: UInt64(n) * UInt64(size)) }
        let start = offset
        let out = [T](unsafeUninitializedCapacity: n) { buffer, initialized in
            for i in 0..<n { buffer[i] = T(littleEndian: bytes.loadUnaligned(fromByteOffset: start + i * size, as: T.self)) }
            initialized = n
        }
        offset += n * size
        return out
    }
}
