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
