import Foundation
import Testing

/// The PyPI `gguf` package as an independent oracle: a script reads a GGUF file with
/// `gguf.GGUFReader`, dequantizes tensors with `gguf.quants.dequantize` and writes the f32 values
/// raw (little-endian, no .npy header) for the Swift side to compare bit for bit.
enum PythonGGUF {
    /// python3 on PATH, if any.
    static let python3: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/python3"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }()

    static var isAvailable: Bool { python3 != nil }
    static let skipMessage = "python3 not found on PATH: cross-checks against the gguf package are skipped"

    /// Runs python3 with `arguments`; the exit status and the output (stdout and stderr).
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        guard let python3 else { return (127, skipMessage) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python3)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Makes `import gguf, numpy` work (installing them with pip once if needed); the failure
    /// output otherwise. Computed once per test process, whichever test asks first.
    static let ready: String? = {
        do {
            if try run(["-c", "import gguf, numpy"]).status == 0 { return nil }
            let install = try run(["-m", "pip", "install", "-q", "gguf", "numpy"])
            if install.status != 0 { return "pip install gguf numpy failed:\n\(install.output)" }
            let again = try run(["-c", "import gguf, numpy"])
            return again.status == 0 ? nil : "import gguf failed after pip install:\n\(again.output)"
        } catch {
            return "cannot run python3: \(error)"
        }
    }()

    static let script = """
    import sys
    import numpy as np
    from gguf import GGUFReader
    from gguf.quants import dequantize
    path, out_path = sys.argv[1], sys.argv[2]
    wanted = sys.argv[3:]
    reader = GGUFReader(path)
    by_name = {t.name: t for t in reader.tensors}
    names = wanted if wanted else [t.name for t in reader.tensors]
    with open(out_path, "wb") as out:
        for name in names:
            t = by_name[name]
            values = np.ascontiguousarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
            assert values.size == int(t.n_elements), (name, values.size, t.n_elements)
            out.write(values.astype("<f4").tobytes())
            print(name, t.tensor_type.name, values.size)
    """

    /// The gguf package's dequantization of the named tensors (all, in file order, when `names`
    /// is empty), each as f32 values.
    static func dequantize(file: String, names: [String], sizes: [Int], workDirectory: String) throws -> [[Float]] {
        if let problem = ready { throw PythonFailure(message: problem) }
        let scriptPath = workDirectory + "/dequantize.py"
        let outPath = workDirectory + "/dequantized.f32"
        try script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        let result = try run([scriptPath, file, outPath] + names)
        guard result.status == 0 else { throw PythonFailure(message: "gguf dequantization failed:\n\(result.output)") }
        let all = try TestSupport.floats(inFile: outPath)
        try? FileManager.default.removeItem(atPath: outPath)
        guard all.count == sizes.reduce(0, +) else {
            throw PythonFailure(message: "python wrote \(all.count) values, expected \(sizes.reduce(0, +)):\n\(result.output)")
        }
        var parts: [[Float]] = []
        var start = 0
        for n in sizes {
            parts.append(Array(all[start..<(start + n)]))
            start += n
        }
        return parts
    }

    struct PythonFailure: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }
}
