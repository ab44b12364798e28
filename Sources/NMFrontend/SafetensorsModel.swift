#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NMIR

/// A Hugging Face checkpoint: a folder with `config.json` and either `model.safetensors` or a
/// sharded `model.safetensors.index.json` whose `weight_map` names the shard of every tensor.
/// Shards are memory-mapped; their headers are validated by `Safetensors.parseHeader` (ranges
/// inside the data section and matching shape and dtype) and here (no two tensors overlap, no
/// name in two shards, the weight map agrees with the shards).
///
/// Errors are `Safetensors.FormatError`s naming the file at fault (the index, a shard, the
/// folder); `config()` throws `ModelConfigError`s naming `config.json`.
public final class SafetensorsModel: @unchecked Sendable {
    public struct Tensor: Sendable, Equatable {
        public var name: String
        /// The safetensors dtype: F32, F16, BF16, I8, I32 …
        public var dtype: String
        /// Row-major shape.
        public var shape: [Int]
        /// The shard holding the tensor, relative to the folder.
        public var file: String
        /// Byte range from the start of that file.
        public var fileRange: Range<Int>
        public var elementCount: Int { shape.reduce(1, *) }
        public var byteCount: Int { fileRange.count }
    }

    /// The folder (for a single file opened directly, the folder holding it).
    public let directory: String
    /// Shard file names, relative to `directory`, in the order they were read.
    public let shardFiles: [String]
    /// Tensors by shard, then by offset.
    public let tensors: [Tensor]
    /// The `__metadata__` of all shards, merged.
    public let metadata: [String: String]

    private let mappings: [String: MappedFile]
    private let tensorIndex: [String: Int]

    public static let singleFileName = "model.safetensors"
    public static let indexFileName = "model.safetensors.index.json"
    public static let configFileName = "config.json"
    /// The dtypes `floats(of:)` converts.
    public static let convertibleDTypes: Set<String> = ["F32", "F16", "BF16", "I8", "I32"]

    /// Opens a checkpoint folder (`model.safetensors` if present, else the sharded index), or a
    /// single `.safetensors` file given directly.
    public static func open(path: String) throws -> SafetensorsModel {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw Safetensors.FormatError(file: path, reason: "cannot open (\(MappedFile.errnoText()))")
        }
        if (info.st_mode & S_IFMT) != S_IFDIR {
            let slash = path.lastIndex(of: "/")
            let folder = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
            let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
            return try SafetensorsModel(directory: folder, shards: [name], weightMap: nil)
        }
        let dir = path.hasSuffix("/") && path.count > 1 ? String(path.dropLast()) : path
        if FileManager.default.fileExists(atPath: dir + "/" + singleFileName) {
            return try SafetensorsModel(directory: dir, shards: [singleFileName], weightMap: nil)
        }
        let indexPath = dir + "/" + indexFileName
        guard FileManager.default.fileExists(atPath: indexPath) else {
            throw Safetensors.FormatError(file: dir, reason: "neither \(singleFileName) nor \(indexFileName) is in the folder")
        }
        let weightMap = try readWeightMap(indexPath)
        var shards: [String] = []
        for shard in weightMap.values.sorted() where shards.last != shard { shards.append(shard) }
        return try SafetensorsModel(directory: dir, shards: shards, weightMap: (indexPath, weightMap))
    }

    /// The `weight_map` of an index file, with shard names checked to stay inside the folder.
    static func readWeightMap(_ indexPath: String) throws -> [String: String] {
        func fail(_ reason: String) -> Safetensors.FormatError { Safetensors.FormatError(file: indexPath, reason: reason) }
        guard let data = FileManager.default.contents(atPath: indexPath) else { throw fail("cannot read file") }
        let root: ConfigJSON
        do { root = try JSONDecoder().decode(ConfigJSON.self, from: data) } catch { throw fail("not valid JSON (\(error))") }
        guard case .object(let object) = root else { throw fail("index is not a JSON object") }
        guard let mapValue = object["weight_map"] else { throw fail("missing field 'weight_map'") }
        guard case .object(let map) = mapValue else { throw fail("field 'weight_map' is \(mapValue.kind), expected an object") }
        var weightMap: [String: String] = [:]
        for (name, value) in map {
            guard case .string(let shard) = value else { throw fail("weight_map entry '\(name)' is \(value.kind), expected a file name") }
            let parts = shard.split(separator: "/", omittingEmptySubsequences: false)
            guard !shard.isEmpty, !shard.hasPrefix("/"), !parts.contains(".."), !parts.contains("") else {
                throw fail("weight_map entry '\(name)' names '\(shard)', which is not a file inside the folder")
            }
            weightMap[name] = shard
        }
        guard !weightMap.isEmpty else { throw fail("weight_map is empty") }
        return weightMap
    }

    private init(directory: String, shards: [String], weightMap: (path: String, entries: [String: String])?) throws {
        self.directory = directory
        shardFiles = shards
        var mappings: [String: MappedFile] = [:]
        var tensors: [Tensor] = []
        var index: [String: Int] = [:]
        var metadata: [String: String] = [:]
        for shard in shards {
            let path = directory + "/" + shard
            func fail(_ reason: String) -> Safetensors.FormatError { Safetensors.FormatError(file: path, reason: reason) }
            let file = try MappedFile(path: path) { Safetensors.FormatError(file: path, reason: $0) }
            let header = try Safetensors.parseHeader(file: file.bytes, name: path)
            // parseHeader sorts by offset; a lying header can still make two tensors share bytes.
            var previous: Safetensors.TensorInfo?
            for t in header.tensors where !t.range.isEmpty {
                if let p = previous, t.range.lowerBound < p.range.upperBound {
                    throw fail("tensor '\(t.name)' bytes \(t.range.lowerBound)..<\(t.range.upperBound) overlap tensor '\(p.name)' bytes \(p.range.lowerBound)..<\(p.range.upperBound)")
                }
                previous = t
            }
            for t in header.tensors {
                if let other = index[t.name] {
                    throw fail("tensor '\(t.name)' is also in \(tensors[other].file)")
                }
                if let map = weightMap, let listed = map.entries[t.name], listed != shard {
                    throw Safetensors.FormatError(file: map.path, reason: "weight_map puts tensor '\(t.name)' in \(listed), but it is in \(shard)")
                }
                index[t.name] = tensors.count
                tensors.append(Tensor(name: t.name, dtype: t.dtype, shape: t.shape, file: shard,
                                      fileRange: (header.dataStart + t.range.lowerBound)..<(header.dataStart + t.range.upperBound)))
            }
            metadata.merge(header.metadata) { first, _ in first }
            mappings[shard] = file
        }
        if let map = weightMap {
            for name in map.entries.keys.sorted() where index[name] == nil {
                throw Safetensors.FormatError(file: map.path, reason: "weight_map lists tensor '\(name)', but \(map.entries[name] ?? "its shard") does not hold it")
            }
        }
        self.mappings = mappings
        self.tensors = tensors
        self.tensorIndex = index
        self.metadata = metadata
    }

    /// The folder's `config.json` as a LLaMA configuration.
    public func config() throws -> LlamaConfig {
        try LlamaConfig(configJSON: directory + "/" + Self.configFileName)
    }

    public func tensor(named name: String) -> Tensor? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The tensor's bytes inside the mapping, valid only while this object is alive: prefer
    /// `withRawBytes(of:_:)`, or keep the model alive with `withExtendedLifetime`.
    public func rawBytes(of tensor: Tensor) -> UnsafeRawBufferPointer {
        guard let file = mappings[tensor.file], tensor.fileRange.upperBound <= file.count, tensor.fileRange.lowerBound >= 0 else {
            return UnsafeRawBufferPointer(start: nil, count: 0)
        }
        return UnsafeRawBufferPointer(rebasing: file.bytes[tensor.fileRange])
    }

    /// `body` with the tensor's bytes, keeping the mapping alive meanwhile.
    public func withRawBytes<R>(of tensor: Tensor, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) { try body(rawBytes(of: tensor)) }
    }

    /// The tensor's values as f32 (F32, F16, BF16 exactly; I8, I32 converted, I32 rounding above
    /// 2^24), row-major.
    public func floats(of tensor: Tensor) throws -> [Float] {
        try withRawBytes(of: tensor) { bytes in
            guard let values = Self.floats(bytes, dtype: tensor.dtype) else {
                throw Safetensors.FormatError(file: directory + "/" + tensor.file,
                                              reason: "tensor '\(tensor.name)': cannot convert dtype \(tensor.dtype) to f32 (supported: \(Self.convertibleDTypes.sorted().joined(separator: ", ")))")
            }
            return values
        }
    }

    /// Little-endian `bytes` of `dtype` as f32, or nil for a dtype outside `convertibleDTypes`.
    public static func floats(_ bytes: UnsafeRawBufferPointer, dtype: String) -> [Float]? {
        let width: Int
        switch dtype {
        case "F32", "I32": width = 4
        case "F16", "BF16": width = 2
        case "I8": width = 1
        default: return nil
        }
        let n = bytes.count / width
        guard n > 0, let base = bytes.baseAddress else { return [] }
        let p = base.assumingMemoryBound(to: UInt8.self)
        return [Float](unsafeUninitializedCapacity: n) { out, initialized in
            switch dtype {
            case "F32":
                for i in 0..<n { out[i] = Float(bitPattern: GGMLQuants.u32(p, 4 * i)) }
            case "I32":
                for i in 0..<n { out[i] = Float(Int32(bitPattern: GGMLQuants.u32(p, 4 * i))) }
            case "F16":
                for i in 0..<n { out[i] = GGMLQuants.half(p, 2 * i) }
            case "BF16":
                for i in 0..<n { out[i] = Float(bitPattern: UInt32(GGMLQuants.u16(p, 2 * i)) << 16) }
            default:
                for i in 0..<n { out[i] = Float(Int8(bitPattern: p[i])) }
            }
            initialized = n
        }
    }
}
