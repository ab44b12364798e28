import Foundation
import NMIR

/// Reading modules with their weights, and writing them back without losing any.
public enum ModuleIO {
    /// Weights kept in memory up to this size print in the text; larger ones go to the weights file.
    public static let inlineWeightLimit = 1024

    /// Checks that every weight the text says is in the weights file is there, with its dtype and shape.
    public static func checkExternalWeights(_ module: Module, directory: String) throws {
        let external = module.weights.entries.filter { $0.data == .external }
        guard let file = module.weights.file, !external.isEmpty else { return }
        let path = resolve(file, in: directory)
        let contents: Safetensors.Contents
        do {
            contents = try Safetensors.read(path: path)
        } catch let e as Safetensors.FormatError {
            throw Diagnostic(at: module.location.isKnown ? module.location : external[0].location,
                             "weights file '\(path)': \(e.reason)")
        }
        for e in external {
            guard let info = contents.info(e.name) else {
                throw Diagnostic(at: e.location, "weight @\(e.name) is not in '\(path)'")
            }
            let dtype = Safetensors.dtypeName(for: e.type)
            let expectedShape: [Int]? = {
                if case .tensor(let t) = e.type, t.dtype != .i4 { return t.shape.compactMap(\.value) }
                return WeightStore.storageByteCount(of: e.type).map { [$0] }
            }()
            guard info.dtype == dtype, info.shape == expectedShape else {
                throw Diagnostic(at: e.location, "weight @\(e.name) is \(info.dtype) \(info.shape) in '\(path)', but the text declares \(e.type)")
            }
        }
    }

    static func resolve(_ file: String, in directory: String) -> String {
        file.hasPrefix("/") || directory.isEmpty ? file : directory + "/" + file
    }

    /// Writes `module` as text to `path`. Weights that are in the source weights file, or in memory
    /// and too large to print, are written to a safetensors file beside it (the module's weights file
    /// name, or `<name>.safetensors`), unless that file already is the source file. Both files are
    /// written to temporary siblings and renamed when complete.
    public static func write(_ module: Module, to path: String, sourceDirectory: String) throws {
        var module = module
        let outDirectory = (path as NSString).deletingLastPathComponent
        let stored = module.weights.entries.filter { e in
            switch e.data {
            case .external: return true
            case .values, .bytes: return (e.storageBytes?.count ?? 0) > inlineWeightLimit
            case .elided: return false
            }
        }
        if !stored.isEmpty {
            let fileName = module.weights.file
                ?? ((path as NSString).lastPathComponent as NSString).deletingPathExtension + ".safetensors"
            let target = resolve(fileName, in: outDirectory)
            let source = module.weights.file.map { resolve($0, in: sourceDirectory) }
            let sameFile = source.map { standardized($0) == standardized(target) } ?? false
            if !(sameFile && stored.allSatisfy { $0.data == .external }) {
                let contents = try module.weights.file.flatMap { _ in
                    try stored.contains { $0.data == .external } ? Safetensors.read(path: source!) : nil
                }
                var tensors: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])] = []
                for e in stored {
                    let bytes: [UInt8]
                    if let b = e.storageBytes {
                        bytes = b
                    } else if let contents, let info = contents.info(e.name) {
                        bytes = Array(contents.bytes(of: info))
                    } else {
                        throw ToolError("weight @\(e.name) has no data to write")
                    }
                    let shape: [Int]
                    if case .tensor(let t) = e.type, t.dtype != .i4 { shape = t.shape.compactMap(\.value) } else { shape = [bytes.count] }
                    tensors.append((e.name, Safetensors.dtypeName(for: e.type), shape, bytes))
                }
                try Safetensors.write(path: target, tensors: tensors)
            }
            for e in stored {
                var moved = e
                moved.data = .external
                module.weights[e.name] = moved
            }
            module.weights.file = fileName
        } else if !module.weights.entries.contains(where: { $0.data == .external }) {
            module.weights.file = nil
        }
        try AtomicFile.write(Printer().print(module), to: path)
    }

    private static func standardized(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
    }
}

extension ModuleIO {
    /// Reads every weight kept in the module's weights file into memory, so passes can rewrite
    /// them (writing the module back puts them in the output's weights file).
    /// Returns what was read, for `restoreUnchangedWeights`.
    @discardableResult
    public static func loadExternalWeights(_ module: inout Module, directory: String) throws -> [String: WeightData] {
        let external = module.weights.entries.filter { $0.data == .external }
        guard let file = module.weights.file, !external.isEmpty else { return [:] }
        var loaded: [String: WeightData] = [:]
        let path = resolve(file, in: directory)
        let contents = try Safetensors.read(path: path)
        for var e in external {
            guard let info = contents.info(e.name) else { throw Diagnostic(at: e.location, "weight @\(e.name) is not in '\(path)'") }
            e.data = .bytes(Array(contents.bytes(of: info)))
            loaded[e.name] = e.data
            module.weights[e.name] = e
        }
        return loaded
    }

    /// Points weights that passes left as they were read back at the weights file, so printing
    /// the module refers to them instead of eliding them.
    public static func restoreUnchangedWeights(_ module: inout Module, loaded: [String: WeightData]) {
        for (name, data) in loaded {
            guard var e = module.weights[name], e.data == data else { continue }
            e.data = .external
            module.weights[name] = e
        }
    }
}
