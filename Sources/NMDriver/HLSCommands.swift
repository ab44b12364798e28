import Foundation
import NMFrontend
import NMIR
import NMTargetHLS

/// The flags of `nmc compile --target hls`.
public struct HLSFlags: Sendable {
    public var fpga = "u280"
    public var array = "32x32"
    public var clockMHz = 300.0
    public var denseLanes = 2

    public init() {}

    public func options() throws -> HLSOptions {
        guard clockMHz > 0, clockMHz <= 1000 else { throw ToolError("--clock must be in (0, 1000] MHz, got \(clockMHz)") }
        guard (1...16).contains(denseLanes) else { throw ToolError("--dense-lanes must be from 1 to 16, got \(denseLanes)") }
        var o = HLSOptions(array: try ArrayShape(parsing: array), device: try FPGADevice.named(fpga))
        o.clockMHz = clockMHz
        o.denseLanes = denseLanes
        return o
    }

    /// The array computes INT4 × INT8: the pipeline quantizes activations to 8 bits.
    func compressionOptions(_ o: CompressionOptions) throws -> CompressionOptions {
        var o = o
        if o.passes == nil {
            guard o.quant == "int4" else { throw ToolError("--target hls needs --quant int4 (the array multiplies INT4 weights)") }
            guard o.symmetric else { throw ToolError("--target hls takes symmetric INT4; drop --asymmetric") }
            if let bits = o.actBits, bits != 8 { throw ToolError("--target hls computes with INT8 activations; --act-bits must be 8") }
            o.actBits = 8
        }
        return o
    }
}

extension ModelCommands {
    static func hlsSummary(_ e: PerformanceEstimate, directory: String) -> String {
        """
        hls: \(directory)/hls: array \(e.array) of \(e.pattern.name) PEs on \(e.device.name) at \(Int(e.clockMHz)) MHz, \
        \(e.layers.count) layer shapes; per token \(String(format: "%.1f", e.prefillMicrosecondsPerToken)) µs \
        (\(e.tokens)-token prefill), \(String(format: "%.1f", e.decodeMicrosecondsPerToken)) µs (decode); \
        DSP \(e.resources.dsp)/\(e.device.dsp). Run `make -C \(directory)/hls csim`.

        """
    }
}

extension ModelCommands {
    /// `nmc bench hls MODEL_OR_CONFIG`: sweeps array sizes and N:M patterns through the cycle and
    /// resource models; prints the table, writes `DIR/hls-sweep.{md,json,svg}`.
    public static func benchHLS(modelOrConfig: String, fpga: String, arrays: String, patterns: String, tokens: Int,
                                clockMHz: Double, output: String, console: Console) throws {
        guard tokens >= 1 else { throw ToolError("--tokens must be ≥ 1, got \(tokens)") }
        guard clockMHz > 0, clockMHz <= 1000 else { throw ToolError("--clock must be in (0, 1000] MHz, got \(clockMHz)") }
        let device = try FPGADevice.named(fpga)
        let arrayShapes = try arrays.split(separator: ",").map { try ArrayShape(parsing: String($0)) }
        let pes = try patterns.split(separator: ",").map { text -> PEPattern in
            let t = text.trimmingCharacters(in: .whitespaces)
            let parts = t.split(separator: ":")
            if t.hasPrefix("dense") {
                let lanes = Int(t.dropFirst(5).trimmingCharacters(in: CharacterSet(charactersIn: "()"))) ?? 2
                return try PEPattern(n: lanes, m: lanes)
            }
            guard parts.count == 2, let n = Int(parts[0]), let m = Int(parts[1]), n < m else {
                throw ToolError("--patterns: '\(t)' is not N:M (like 2:4) or dense(N)")
            }
            return try PEPattern(n: n, m: m)
        }
        guard !arrayShapes.isEmpty, !pes.isEmpty else { throw ToolError("--arrays and --patterns must each name at least one") }
        let shapes = try modelShapes(modelOrConfig)
        let sweep = try HLSSweep(shapes: shapes, device: device, arrays: arrayShapes, patterns: pes, clockMHz: clockMHz, tokens: tokens)
        let dir = normalizedDirectory(output)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let table = sweep.table
        console.writeOut(table)
        try AtomicFile.write(table, to: dir + "/hls-sweep.md")
        try AtomicFile.write(sweep.svg, to: dir + "/hls-sweep.svg")
        try AtomicFile.write(JSONSerialization.data(withJSONObject: sweep.jsonObject, options: [.prettyPrinted, .sortedKeys]),
                             to: dir + "/hls-sweep.json")
        console.writeOut("\nwrote \(dir)/hls-sweep.md, hls-sweep.json, hls-sweep.svg\n")
    }

    /// A preset (`llama-7b`, `smollm2-135m`) or a model whose linear layers are read (the output
    /// head and embedding excluded, as `quantize-int4` leaves them).
    static func modelShapes(_ name: String) throws -> ModelShapes {
        if let preset = ModelShapes.presets.first(where: { $0.name == name.lowercased() }) { return preset }
        guard FileManager.default.fileExists(atPath: name) else {
            throw ToolError("'\(name)' is neither a preset (\(ModelShapes.presets.map(\.name).joined(separator: ", "))) nor a model path")
        }
        let model = try ModelImporter.load(path: name, contextLength: 16)
        var layers: [(name: String, rows: Int, columns: Int, count: Int)] = []
        var seen = Set<String>()
        for f in model.module.functions {
            var weightOf: [String: String] = [:]
            for op in f.body {
                if op.name == "nn.weight", let r = op.result, let w = op.attributes["name"]?.symbolValue { weightOf[r.name] = w }
                guard op.name == "nn.linear", op.operands.count == 2, let w = weightOf[op.operands[1].name],
                      !["output.weight", "token_embd.weight"].contains(w), seen.insert(w).inserted,
                      let t = op.operands[1].type.tensor, t.shape.count == 2,
                      let rows = t.shape[0].value, let columns = t.shape[1].value else { continue }
                if let i = layers.firstIndex(where: { $0.rows == rows && $0.columns == columns }) {
                    layers[i].count += 1
                } else {
                    layers.append((w, rows, columns, 1))
                }
            }
        }
        guard !layers.isEmpty else { throw ToolError("\(name): no linear layers found") }
        return ModelShapes(name: (name as NSString).lastPathComponent, group: 128, layers: layers)
    }
}
