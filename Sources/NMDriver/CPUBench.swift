import COpenBLAS
import Foundation
import NMFrontend
import NMIR
import NMRuntime
import NMTargetCPU

/// `nmc bench matmul` and `nmc bench decode`: NMC's CPU code against OpenBLAS and against itself
/// (f32, dense INT4, 2:4 INT4), each baseline in the same run, medians of several runs.
public enum CPUBench {
    public struct MatmulRow: Codable {
        var rows: Int, columns: Int, m: Int
        var openblasMs: Double, f32Ms: Double, int4Ms: Double, sparseInt4Ms: Double
        var speedupOverOpenBLAS: Double, speedupOverDenseInt4: Double
    }

    /// A one-op module `y = x · wᵀ` with `w` f32 or packed INT4 (dense or 2:4, group 128, f16 scales),
    /// weights random: the kernels' work does not depend on the values.
    static func linearModule(rows n: Int, columns k: Int, packed: NMPattern??, rng: inout SplitMix64) -> Module {
        var weights: [WeightEntry] = []
        var body: [NMIR.Operation] = []
        let x = Value(name: "x", type: .tensor(TensorType([nil, k], .f32)))
        let y = Value(name: "y", type: .tensor(TensorType([nil, n], .f32)))
        if let nm = packed {
            let type = PackedWeightType(rows: n, columns: k, storage: .i4, group: 128, scale: .f16, zeroPoint: false, nm: nm)
            let count = WeightStore.storageByteCount(of: .packed(type)) ?? 0
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if nm != nil {
                // Index section: every group of 4 keeps 2 distinct columns in increasing order.
                let pairs: [UInt8] = [0b0100, 0b1000, 0b1100, 0b1001, 0b1101, 0b1110]
                let start = n * type.keptPerRow / 2
                for i in start..<count { bytes[i] = pairs[Int.random(in: 0..<6, using: &rng)] | pairs[Int.random(in: 0..<6, using: &rng)] << 4 }
            }
            weights.append(WeightEntry(name: "w", type: .packed(type), data: .bytes(bytes)))
            let scales = (0..<(n * type.groupsPerRow)).map { _ in Double.random(in: 0.001...0.01, using: &rng) }
            weights.append(WeightEntry(name: "w.scales", type: .tensor(type.scaleType), data: .values(scales)))
            let q = Value(name: "q", type: .packed(type)), s = Value(name: "s", type: .tensor(type.scaleType))
            body.append(NMIR.Operation(name: "nn.weight", results: [q], attributes: ["name": .symbol("w")]))
            body.append(NMIR.Operation(name: "nn.weight", results: [s], attributes: ["name": .symbol("w.scales")]))
            var attributes: [String: Attribute] = ["bits": .int(4), "group": .int(128)]
            if let nm { attributes["nm"] = .pattern(nm) }
            body.append(NMIR.Operation(name: "quant.linear", operands: [x, q, s], results: [y], attributes: attributes))
        } else {
            let values = (0..<(n * k)).map { _ in Double(Float.random(in: -1...1, using: &rng)) }
            let type = TensorType([n, k], .f32)
            weights.append(WeightEntry(name: "w", type: .tensor(type), data: .values(values)))
            let w = Value(name: "w", type: .tensor(type))
            body.append(NMIR.Operation(name: "nn.weight", results: [w], attributes: ["name": .symbol("w")]))
            body.append(NMIR.Operation(name: "nn.linear", operands: [x, w], results: [y]))
        }
        var module = Module()
        module.weights = WeightStore(entries: weights)
        module.functions = [Function(name: "linear", arguments: [x], body: body, returnValues: [y])]
        return module
    }

    static func median(_ values: [Double]) -> Double {
        let s = values.sorted()
        return s.isEmpty ? 0 : s[s.count / 2]
    }

    /// Median seconds of `body` over `runs` runs after one warm-up.
    static func time(runs: Int, _ body: () throws -> Void) rethrows -> Double {
        try body()
        var samples: [Double] = []
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return median(samples)
    }

    public static func matmul(threads: Int, runs: Int, output: String, console: Console) throws {
        let shapes = [(4096, 4096), (11008, 4096), (576, 1536)]
        let ms = [1, 16, 128, 512]
        openblas_set_num_threads(Int32(threads))
        console.writeOut(machineLine(threads: threads))
        console.writeOut("weights N×K   M     OpenBLAS f32   NMC f32   NMC INT4   NMC 2:4 INT4   2:4 vs OpenBLAS   2:4 vs INT4\n")
        var rows: [MatmulRow] = []
        var rng = SplitMix64(seed: 42)
        for (n, k) in shapes {
            let bound = ms.max()!
            let programs = try [nil, .some(nil), .some(NMPattern(n: 2, m: 4))].map { (packed: NMPattern??) in
                try CPUProgram.jit(module: linearModule(rows: n, columns: k, packed: packed, rng: &rng), weightsDirectory: nil,
                                   threads: threads, options: CPUCompileOptions(dynamicDimBound: bound))
            }
            let w = (0..<(n * k)).map { _ in Float.random(in: -1...1, using: &rng) }
            let xBuffer = AlignedBuffer(byteCount: bound * k * 4)
            for (i, v) in (0..<(bound * k)).map({ _ in Float.random(in: -1...1, using: &rng) }).enumerated() { xBuffer.floats(bound * k)[i] = v }
            var y = [Float](repeating: 0, count: bound * n)
            for m in ms {
                let x = UnsafePointer(xBuffer.floats(bound * k).baseAddress!)
                let blas = time(runs: runs) {
                    w.withUnsafeBufferPointer { wp in
                        y.withUnsafeMutableBufferPointer { yp in
                            if m == 1 {
                                cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(n), Int32(k), 1, wp.baseAddress, Int32(k), x, 1, 0, yp.baseAddress, 1)
                            } else {
                                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k), 1, x, Int32(k),
                                            wp.baseAddress, Int32(k), 0, yp.baseAddress, Int32(n))
                            }
                        }
                    }
                }
                let nmc = try programs.map { p in try time(runs: runs) { _ = try p.call("linear", arguments: [xBuffer.pointer], dynamicDims: [m]) } }
                let row = MatmulRow(rows: n, columns: k, m: m, openblasMs: blas * 1e3, f32Ms: nmc[0] * 1e3, int4Ms: nmc[1] * 1e3,
                                    sparseInt4Ms: nmc[2] * 1e3, speedupOverOpenBLAS: blas / nmc[2], speedupOverDenseInt4: nmc[1] / nmc[2])
                rows.append(row)
                console.writeOut(String(format: "%5d×%-5d %4d %12.3f ms %8.3f ms %8.3f ms %10.3f ms %14.2f× %12.2f×\n", n, k, m,
                                        row.openblasMs, row.f32Ms, row.int4Ms, row.sparseInt4Ms, row.speedupOverOpenBLAS, row.speedupOverDenseInt4))
            }
        }
        try writeJSON(BenchReport(machine: machineDescription(threads: threads), runs: runs, rows: rows), to: output, console: console)
    }

    public struct DecodeRow: Codable {
        var variant: String
        var linearBytes: Int
        var prefillTokens: Int, prefillTokensPerSecond: Double
        var decodeTokens: Int, decodeTokensPerSecond: Double
    }

    /// Prefill and decode speed of a model as dense f32, INT4 and 2:4 + INT4 (magnitude pruning and
    /// RTN: the speed does not depend on how the kept values were chosen).
    public static func decode(path: String, threads: Int, promptTokens: Int, decodeTokens: Int, runs: Int,
                              output: String, console: Console) throws {
        let model = try ModelImporter.load(path: path, contextLength: max(promptTokens, decodeTokens))
        console.writeOut(machineLine(threads: threads))
        console.writeOut("variant          linear weights   prefill \(promptTokens) tok/s   decode \(decodeTokens) tok/s\n")
        var variants: [(String, CompressionOptions)] = [("f32", CompressionOptions())]
        var int4 = CompressionOptions()
        int4.quant = "int4"
        variants.append(("int4", int4))
        var sparse = int4
        sparse.sparsity = "2:4"
        variants.append(("2:4+int4", sparse))
        var rows: [DecodeRow] = []
        for (name, options) in variants {
            let (compressed, storage) = options.isEmpty ? (model, nil) : try ModelCommands.compress(model, source: path, options: options, console: console, verbose: false)
            let session = try ModelSession(model: compressed, backend: .cpu, threads: threads)
            let prompt = (0..<promptTokens).map { Int32(($0 * 7919 + 13) % session.vocabularySize) }
            var prefill: [Double] = [], decode: [Double] = []
            // As llama-bench's pp512 and tg128: the prefill of a prompt into empty caches, and
            // greedy decoding of single tokens from an empty cache, timed separately.
            for _ in 0..<max(runs, 1) {
                session.reset()
                let start = DispatchTime.now().uptimeNanoseconds
                _ = try session.forward(prompt)
                prefill.append(Double(promptTokens) / (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9))
                session.reset()
                var next = prompt[0]
                let decodeStart = DispatchTime.now().uptimeNanoseconds
                for _ in 0..<decodeTokens {
                    let logits = try session.forward([next])
                    next = Int32(logits.indices.max { logits[$0] < logits[$1] }!)
                }
                decode.append(Double(decodeTokens) / (Double(DispatchTime.now().uptimeNanoseconds - decodeStart) / 1e9))
            }
            let bytes = storage?.totalAfter ?? StorageReport(before: model.module, after: model.module).totalBefore
            let row = DecodeRow(variant: name, linearBytes: bytes, prefillTokens: promptTokens, prefillTokensPerSecond: median(prefill),
                                decodeTokens: decodeTokens, decodeTokensPerSecond: median(decode))
            rows.append(row)
            console.writeOut(name.padding(toLength: 16, withPad: " ", startingAt: 0)
                             + String(repeating: " ", count: max(0, 15 - ModelCommands.formatBytes(bytes).count)) + ModelCommands.formatBytes(bytes)
                             + String(format: " %19.1f %18.1f\n", row.prefillTokensPerSecond, row.decodeTokensPerSecond))
        }
        try writeJSON(BenchReport(machine: machineDescription(threads: threads), runs: runs, rows: rows), to: output, console: console)
    }

    struct BenchReport<Row: Codable>: Codable {
        var machine: String
        var runs: Int
        var rows: [Row]
    }

    static func machineDescription(threads: Int) -> String {
        "\(cpuModel()), \(ProcessInfo.processInfo.activeProcessorCount) cores, \(threads) threads, LLVM host CPU \(LLVMInfo.hostCPUName)"
    }

    static func machineLine(threads: Int) -> String { "machine: \(machineDescription(threads: threads))\n" }

    static func cpuModel() -> String {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        return info.split(separator: "\n").first { $0.hasPrefix("model name") }?.split(separator: ":").last?
            .trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
    }

    static func writeJSON<T: Encodable>(_ value: T, to path: String, console: Console) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        try AtomicFile.write(try encoder.encode(value), to: path)
        console.writeOut("wrote \(path)\n")
    }
}
