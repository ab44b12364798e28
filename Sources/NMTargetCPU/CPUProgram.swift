import NMIR
import NMRuntime

/// A module compiled for this CPU and ready to call: code generation, optimization and the JIT
/// in one step, with the module's weights prepared for the generated code.
public enum CPUProgram {
    public static func jit(module: Module, weightsDirectory: String?, threads: Int,
                           options: CPUCompileOptions = CPUCompileOptions()) throws -> CPUExecutable {
        let compiler = try CPUCompiler(module: module, options: options)
        let abi = compiler.abi
        let code = try compiler.jit()
        let weights = ModuleWeights(module: module, directory: weightsDirectory)
        return try CPUExecutable(abi: abi, entries: code.entries, threads: threads, owner: code) { try weights.storage($0) }
    }
}
