import NMIR

/// The storage bytes of a module's weights: inline data from the `.nmir`, or the tensors of the
/// safetensors file it names (read once, looked up beside the module when the path is relative).
public final class ModuleWeights {
    public let module: Module
    private let directory: String?
    private var file: Safetensors.Contents?

    public init(module: Module, directory: String?) {
        self.module = module
        self.directory = directory
    }

    /// The bytes and the type of weight `name`.
    public func storage(_ name: String) throws -> (bytes: ArraySlice<UInt8>, type: NMType) {
        guard let entry = module.weights[name] else { throw CPURuntimeError("unknown weight @\(name)") }
        switch entry.data {
        case .elided:
            throw CPURuntimeError("weight @\(name) was elided from this dump; it cannot be run")
        case .values, .bytes:
            return (ArraySlice(entry.storageBytes ?? []), entry.type)
        case .external:
            if file == nil {
                guard let path = module.weights.file else { throw CPURuntimeError("weight @\(name) has no weights file") }
                let full = path.hasPrefix("/") || directory == nil ? path : directory! + "/" + path
                do { file = try Safetensors.read(path: full) } catch {
                    throw CPURuntimeError("cannot read weights file '\(full)': \(error)")
                }
            }
            guard let contents = file, let info = contents.info(name) else {
                throw CPURuntimeError("weight @\(name) is not in the weights file")
            }
            return (contents.bytes(of: info), entry.type)
        }
    }
}
