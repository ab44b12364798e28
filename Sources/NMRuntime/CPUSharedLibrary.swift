#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import NMIR

/// A `--target cpu` artifact's code: `model.so` opened with `dlopen`, its entry points found by the
/// symbols `model.abi.json` names. No LLVM is involved.
public final class CPUSharedLibrary: @unchecked Sendable {
    public static let libraryName = "model.so"
    public static let abiName = "model.abi.json"
    private let handle: UnsafeMutableRawPointer
    public let abi: CPUModuleABI
    public let entries: [String: CPUFunctionPointer]

    public init(directory: String) throws {
        let abiPath = directory + "/" + Self.abiName
        guard let data = FileManager.default.contents(atPath: abiPath) else { throw CPURuntimeError("\(abiPath): cannot read the compiled functions' description") }
        do { abi = try JSONDecoder().decode(CPUModuleABI.self, from: data) } catch {
            throw CPURuntimeError("\(abiPath): not a valid description of compiled functions: \(error)")
        }
        let path = directory + "/" + Self.libraryName
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            throw CPURuntimeError("\(path): cannot load: \(String(cString: dlerror()))")
        }
        self.handle = handle
        var entries: [String: CPUFunctionPointer] = [:]
        for f in abi.functions {
            guard let symbol = dlsym(handle, f.symbol) else { throw CPURuntimeError("\(path): no symbol \(f.symbol)") }
            entries[f.name] = unsafeBitCast(symbol, to: CPUFunctionPointer.self)
        }
        self.entries = entries
    }

    deinit { dlclose(handle) }

    /// Whether the library was built for `module`'s functions as they are now (same cache sizes).
    public func matches(_ module: Module) -> Bool {
        abi.functions.allSatisfy { f in
            guard let function = module.function(named: f.name), function.arguments.count == f.arguments.count else { return false }
            return zip(function.arguments, f.arguments).allSatisfy { arg, abi in
                if let c = arg.type.kvCache { return abi.dims == [c.capacity, c.heads, c.headDim] }
                return true
            }
        }
    }

    /// The library's functions with `module`'s weights, ready to call.
    public func executable(module: Module, weightsDirectory: String?, threads: Int) throws -> CPUExecutable {
        let weights = ModuleWeights(module: module, directory: weightsDirectory)
        return try CPUExecutable(abi: abi, entries: entries, threads: threads, owner: self) { try weights.storage($0) }
    }
}
