import Foundation

/// The linear layers of a model, by shape: what the sweep needs to know about it.
public struct ModelShapes: Sendable {
    public var name: String
    public var group: Int
    public var layers: [(name: String, rows: Int, columns: Int, count: Int)]

    public init(name: String, group: Int, layers: [(name: String, rows: Int, columns: Int, count: Int)]) {
        self.name = name
        self.group = group
        self.layers = layers
    }

    /// LLaMA-7B: 32 blocks, hidden 4096, FFN 11008 (the output head is left in f16, as
    /// `quantize-int4` leaves it by default).
    public static let llama7B = ModelShapes(name: "llama-7b", group: 128, layers: [
        ("attn_q/k/v/o", 4096, 4096, 4 * 32), ("ffn_gate/up", 11008, 4096, 2 * 32), ("ffn_down", 4096, 11008, 32)])
    /// SmolLM2-135M: 30 blocks, hidden 576, 3 KV heads of 64, FFN 1536.
    public static let smolLM2 = ModelShapes(name: "smollm2-135m", group: 128, layers: [
        ("attn_q/o", 576, 576, 2 * 30), ("attn_k/v", 192, 576, 2 * 30), ("ffn_gate/up", 1536, 576, 2 * 30), ("ffn_down", 576, 1536, 30)])

    public static let presets = [llama7B, smolLM2]
}

/// `nmc bench hls`: every array size × pattern on one device, through the cycle and resource
/// models; each pattern is compared with the dense array that has the same multipliers per PE.
public struct HLSSweep: Sendable {
    public struct Row: Sendable {
        public var estimate: PerformanceEstimate
        /// Dense cycles over this pattern's, per layer at prefill (1 for dense rows).
        public var layerSpeedups: [Double]
        /// Per-token prefill speedup over the dense array with the same multipliers.
        public var speedup: Double
        /// The least layer speedup among the compute-bound layers, divided by M/N.
        public var worstComputeBoundRatio: Double?
    }

    public var shapes: ModelShapes
    public var device: FPGADevice
    public var tokens: Int
    public var rows: [Row] = []

    public init(shapes: ModelShapes, device: FPGADevice, arrays: [ArrayShape], patterns: [PEPattern], clockMHz: Double,
                tokens: Int) throws(HLSError) {
        self.shapes = shapes
        self.device = device
        self.tokens = tokens
        for array in arrays {
            for p in patterns {
                let e = try PerformanceEstimate(shapes: shapes.layers, group: shapes.group, pattern: p, array: array,
                                                device: device, clockMHz: clockMHz, tokens: tokens)
                let dense = try PerformanceEstimate(shapes: shapes.layers, group: shapes.group, pattern: p.denseBaseline,
                                                    array: array, device: device, clockMHz: clockMHz, tokens: tokens)
                let speedups = zip(dense.layers, e.layers).map { Double($0.prefill.total) / Double($1.prefill.total) }
                let density = Double(p.m) / Double(p.n)
                let computeBound = zip(e.layers, speedups).filter { !$0.0.prefill.bandwidthBound }.map { $0.1 / density }
                rows.append(Row(estimate: e, layerSpeedups: speedups,
                                speedup: dense.prefillMicrosecondsPerToken / e.prefillMicrosecondsPerToken,
                                worstComputeBoundRatio: computeBound.min()))
            }
        }
    }

    public var table: String {
        var s = "HLS sweep: \(shapes.name) on \(device.name) (\(fmt(device.bandwidthGBs)) GB/s), prefill \(tokens) tokens and decode; "
        s += "speedup against the dense array with the same multipliers per PE.\n\n"
        s += "| array | PE | mult/PE | DSP | fits | prefill µs/token | decode µs/token | speedup | M/N | worst compute-bound layer / (M/N) | bandwidth-bound layers (prefill, decode) |\n"
        s += "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
        for r in rows {
            let e = r.estimate
            let mn = Double(e.pattern.m) / Double(e.pattern.n)
            let bw = [e.layers.filter(\.prefill.bandwidthBound).count, e.layers.filter(\.decode.bandwidthBound).count]
            s += "| \(e.array) | \(e.pattern.name) | \(e.pattern.n) | \(e.resources.dsp) (\(pct(e.resources.dsp, e.device.dsp))) | "
            s += e.fits ? "yes | " : "no: \(e.resources.overflows(e.device).joined(separator: ", ")) | "
            s += "\(fmt(e.prefillMicrosecondsPerToken)) | \(fmt(e.decodeMicrosecondsPerToken)) | \(String(format: "%.3f", r.speedup)) | "
            s += "\(fmt(mn)) | \(r.worstComputeBoundRatio.map { String(format: "%.3f", $0) } ?? "—") | \(bw[0]) of \(e.layers.count), \(bw[1]) of \(e.layers.count) |\n"
        }
        return s
    }

    public var jsonObject: [String: Any] {
        ["model": shapes.name, "device": device.name, "prefill_tokens": tokens,
         "rows": rows.map { r -> [String: Any] in
             var o = r.estimate.jsonObject
             o["speedup_vs_dense"] = r.speedup
             o["layer_speedups"] = r.layerSpeedups
             o["worst_compute_bound_ratio"] = r.worstComputeBoundRatio ?? NSNull()
             return o
         }]
    }
}
