import Foundation
import NMFrontend
import NMIR
import NMRuntime
import NMTargetCPU

/// The CPU backend as the tools use it: compile a model's module into `model.o` / `model.so`
/// (with `--emit-llvm`, the IR before and after optimization), or get callable code for a model,
/// from the artifact's `model.so` when it matches, otherwise through the JIT.
public enum CPUArtifact {
    /// Writes the code files into `directory` (the staging folder of `nmc compile`).
    public static func write(module: Module, to directory: String, emitLLVM: Bool, console: Console) throws {
        let started = Date()
        let compiler = try CPUCompiler(module: module)
        if emitLLVM {
            try AtomicFile.write(compiler.unoptimizedIR, to: directory + "/model.ll")
            try AtomicFile.write(compiler.optimizedIR, to: directory + "/model.opt.ll")
        }
        let object = directory + "/model.o"
        try compiler.writeObject(to: object)
        try SharedLibraryLinker.link(objects: [object], output: directory + "/" + CPUSharedLibrary.libraryName)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(compiler.abi), to: directory + "/" + CPUSharedLibrary.abiName)
        console.writeErr(String(format: "cpu: %d kernels for %@ (%@), compiled in %.1f s\n", compiler.kernelNames.count,
                                compiler.abi.cpu, compiler.abi.features.contains("+avx512f") ? "AVX-512" : "no AVX-512",
                                Date().timeIntervalSince(started)))
    }

    /// Callable code for `model`: its folder's `model.so` when built for the same functions, else the JIT.
    public static func load(model: ImportedModel, threads: Int) throws -> CPUExecutable {
        if let directory = model.weightsDirectory,
           FileManager.default.fileExists(atPath: directory + "/" + CPUSharedLibrary.libraryName) {
            let library = try CPUSharedLibrary(directory: directory)
            if library.matches(model.module) {
                return try library.executable(module: model.module, weightsDirectory: directory, threads: threads)
            }
        }
        return try CPUProgram.jit(module: model.module, weightsDirectory: model.weightsDirectory, threads: threads)
    }
}

/// Links objects into a shared library with the C compiler driver found on the machine.
enum SharedLibraryLinker {
    static func link(objects: [String], output: String) throws {
        let candidates = ["cc", "gcc", "clang"]
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        guard let driver = candidates.lazy.compactMap({ name in
            path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
        }).first else {
            throw ToolError("no C compiler driver (cc, gcc or clang) on PATH to link \(output)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: driver)
        process.arguments = ["-shared", "-o", output] + objects + ["-lm"]
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw ToolError("linking \(output) with \(driver) failed: \(text)")
        }
    }
}
