import Foundation

/// The cycle and resource models applied to a whole model: every distinct layer shape, at a
/// prefill of `tokens` tokens and at decode (one token), on one array and device.
public struct PerformanceEstimate: Sendable {
    public struct Layer: Sendable {
        public var name: String
        public var rows: Int
        public var columns: Int
        /// Layers of this shape per token (e.g. 30 blocks × 2 for SmolLM2's k and v).
        public var count: Int
        public var prefill: SystolicArrayModel.LayerCycles
        public var decode: SystolicArrayModel.LayerCycles
    }

    public var device: FPGADevice
    public var array: ArrayShape
    public var pattern: PEPattern
    public var clockMHz: Double
    public var tokens: Int
    public var group: Int
    public var layers: [Layer]
    public var resources: ResourceEstimate

    /// `shapes`: (name, rows, columns, count) of each distinct layer.
    public init(shapes: [(name: String, rows: Int, columns: Int, count: Int)], group: Int, pattern: PEPattern,
                array: ArrayShape, device: FPGADevice, clockMHz: Double, tokens: Int) throws(HLSError) {
        let model = try SystolicArrayModel(array: array, pattern: pattern, bytesPerCycle: device.bytesPerCycle(clockMHz: clockMHz))
        var layers: [Layer] = []
        var segments = 1
        for s in shapes {
            let prefill = try model.cycles(LayerShape(rows: s.rows, columns: s.columns, group: group, tokens: tokens))
            let decode = try model.cycles(LayerShape(rows: s.rows, columns: s.columns, group: group, tokens: 1))
            segments = try model.plan(LayerShape(rows: s.rows, columns: s.columns, group: group, tokens: 1)).segmentsPerFold
            layers.append(Layer(name: s.name, rows: s.rows, columns: s.columns, count: s.count, prefill: prefill, decode: decode))
        }
        self.device = device
        self.array = array
        self.pattern = pattern
        self.clockMHz = clockMHz
        self.tokens = tokens
        self.group = group
        self.layers = layers
        self.resources = ResourceEstimate(array: array, pattern: pattern, segmentsPerFold: segments,
                                          maxColumns: shapes.map(\.columns).max() ?? 0, tokens: tokens)
    }

    public var fits: Bool { resources.overflows(device).isEmpty }

    func microseconds(_ cycles: Int) -> Double { Double(cycles) / clockMHz }

    /// Latency per token: one token's pass through every layer at decode, and the prefill's
    /// cycles divided by its tokens.
    public var decodeMicrosecondsPerToken: Double { microseconds(layers.reduce(0) { $0 + $1.count * $1.decode.total }) }
    public var prefillMicrosecondsPerToken: Double {
        microseconds(layers.reduce(0) { $0 + $1.count * $1.prefill.total }) / Double(tokens)
    }

    public var markdown: String {
        var s = """
        # HLS systolic array: estimates

        Array \(array) PEs, pattern \(pattern.name) (\(pattern.n) multipliers per PE, \(pattern.m)-to-1 multiplexers), \
        weight group \(group), on \(device.name) (\(device.part), \(device.memory), \(fmt(device.bandwidthGBs)) GB/s = \
        \(device.bytesPerCycle(clockMHz: clockMHz)) bytes/cycle) at \(fmt(clockMHz)) MHz. Prefill: \(tokens) tokens; \
        decode: 1 token. Cycles from `SystolicArrayModel` (docs/fpga.md).

        | layer | R x C | per token | folds | tiles | load/tile | compute/tile | prefill cycles | bound | decode cycles | bound |
        | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |

        """
        for l in layers {
            s += "| \(l.name) | \(l.rows) x \(l.columns) | \(l.count) | \(l.prefill.folds) | \(l.prefill.tiles) | \(l.prefill.tileLoad) | "
            s += "\(l.prefill.tileCompute) | \(l.prefill.total) | \(bound(l.prefill)) | \(l.decode.total) | \(bound(l.decode)) |\n"
        }
        let bw = layers.filter { $0.prefill.bandwidthBound || $0.decode.bandwidthBound }.map(\.name)
        s += """

        Per token: **\(fmt(prefillMicrosecondsPerToken)) µs** in a \(tokens)-token prefill, **\(fmt(decodeMicrosecondsPerToken)) µs** \
        at decode. Bandwidth-bound layers: \(bw.isEmpty ? "none" : bw.joined(separator: ", ")).

        | resource | estimate | \(device.name) | use |
        | --- | --- | --- | --- |
        | DSP | \(resources.dsp) | \(device.dsp) | \(pct(resources.dsp, device.dsp)) |
        | BRAM36 | \(resources.bram36) | \(device.bram36) | \(pct(resources.bram36, device.bram36)) |
        | LUT | \(resources.lut) | \(device.lut) | \(pct(resources.lut, device.lut)) |
        | FF | \(resources.ff) | \(device.ff) | \(pct(resources.ff, device.ff)) |

        Per PE: \(ResourceEstimate.perPE(pattern).dspHalves) INT4×INT8 products (\(fmt(Double(ResourceEstimate.perPE(pattern).dspHalves) / 2)) DSP48E2), \
        \(ResourceEstimate.perPE(pattern).lut) LUT, \(ResourceEstimate.perPE(pattern).ff) FF; the rest is the output stage and the interfaces \
        (docs/fpga.md lists the formulas).

        \(fits ? "Fits \(device.name)." : "Does not fit \(device.name): \(resources.overflows(device).joined(separator: ", ")).")

        """
        return s
    }

    public var jsonObject: [String: Any] {
        func cycles(_ c: SystolicArrayModel.LayerCycles) -> [String: Any] {
            ["total": c.total, "tiles": c.tiles, "folds": c.folds, "tile_load": c.tileLoad, "tile_compute": c.tileCompute,
             "activation_load": c.activationLoad, "bandwidth_bound": c.bandwidthBound, "microseconds": microseconds(c.total)]
        }
        return [
            "device": device.name, "array": array.description, "pattern": pattern.name, "multipliers_per_pe": pattern.n,
            "clock_mhz": clockMHz, "prefill_tokens": tokens, "group": group,
            "layers": layers.map { ["name": $0.name, "rows": $0.rows, "columns": $0.columns, "per_token": $0.count,
                                    "prefill": cycles($0.prefill), "decode": cycles($0.decode)] as [String: Any] },
            "per_token_us": ["prefill": prefillMicrosecondsPerToken, "decode": decodeMicrosecondsPerToken],
            "resources_per_pe": ["products": ResourceEstimate.perPE(pattern).dspHalves, "lut": ResourceEstimate.perPE(pattern).lut,
                                 "ff": ResourceEstimate.perPE(pattern).ff],
            "resources": ["dsp": resources.dsp, "bram36": resources.bram36, "lut": resources.lut, "ff": resources.ff,
                          "fits": fits, "overflows": resources.overflows(device)] as [String: Any],
        ]
    }

    private func bound(_ c: SystolicArrayModel.LayerCycles) -> String { c.bandwidthBound ? "bandwidth" : "compute" }
}

func fmt(_ v: Double) -> String {
    if v >= 100 { return String(Int(v.rounded())) }
    let format = v >= 10 ? "%.1f" : "%.2f"
    return String(format: format, v)
}

func pct(_ a: Int, _ b: Int) -> String { String(format: "%.1f%%", 100 * Double(a) / Double(b)) }
