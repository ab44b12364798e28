/// An FPGA board the array is sized against: its resources and its memory bandwidth.
public struct FPGADevice: Sendable, Equatable {
    public var name: String
    public var part: String
    public var dsp: Int
    /// 36 Kb block RAMs.
    public var bram36: Int
    public var lut: Int
    public var ff: Int
    /// Peak off-chip memory bandwidth, GB/s (10⁹ bytes).
    public var bandwidthGBs: Double
    public var memory: String

    /// The vendors' product tables (AMD/Xilinx data sheets DS963, DS957, DS891 and the board user
    /// guides); see docs/fpga.md.
    public static let all: [FPGADevice] = [
        FPGADevice(name: "u280", part: "xcu280-fsvh2892-2L-e", dsp: 9024, bram36: 2016, lut: 1_303_680, ff: 2_607_360,
                   bandwidthGBs: 460, memory: "HBM2, 8 GB"),
        FPGADevice(name: "vck190", part: "xcvc1902-vsva2197-2MP-e-S", dsp: 1968, bram36: 967, lut: 899_840, ff: 1_799_680,
                   bandwidthGBs: 25.6, memory: "DDR4-3200 DIMM, 64-bit"),
        FPGADevice(name: "zcu102", part: "xczu9eg-ffvb1156-2-e", dsp: 2520, bram36: 912, lut: 274_080, ff: 548_160,
                   bandwidthGBs: 19.2, memory: "DDR4-2400, 64-bit (PS)"),
    ]

    public static func named(_ name: String) throws(HLSError) -> FPGADevice {
        guard let d = all.first(where: { $0.name == name.lowercased() }) else {
            throw HLSError("unknown FPGA '\(name)' (known: \(all.map(\.name).joined(separator: ", ")))")
        }
        return d
    }

    /// Whole bytes per clock cycle at `clockMHz`.
    public func bytesPerCycle(clockMHz: Double) -> Int { max(1, Int(bandwidthGBs * 1e9 / (clockMHz * 1e6))) }
}

/// DSP, BRAM, LUT and FF estimates of the array and its surroundings (docs/fpga.md lists each
/// term). Estimates before synthesis: they size a configuration and refuse one that cannot fit,
/// they are not a place-and-route result.
public struct ResourceEstimate: Sendable, Equatable {
    public var dsp: Int
    public var bram36: Int
    public var lut: Int
    public var ff: Int

    /// Per PE: N multipliers (two INT4×INT8 products per DSP48E2), N M-to-1 multiplexers of
    /// 8 bits (one LUT6 per bit for each 4 inputs), an adder tree and a 32-bit accumulator, the
    /// activations passed down (M × 8 bits), the partial sum, and the weights twice (active and
    /// shadow).
    public static func perPE(_ p: PEPattern) -> (dspHalves: Int, lut: Int, ff: Int) {
        let mux = p.isDense ? 0 : p.n * 8 * ceilDiv(p.m, 4)
        let adders = (p.n - 1) * 13 + 32
        let control = 16
        let ff = 8 * p.m + 32 + 2 * p.slotBits
        return (p.n, mux + adders + control, ff)
    }

    /// The array for layers up to `maxColumns` inputs and `tokens` tokens at once.
    public init(array: ArrayShape, pattern: PEPattern, segmentsPerFold: Int, maxColumns: Int, tokens: Int) {
        let pes = array.rows * array.cols
        let pe = Self.perPE(pattern)
        // Output unit: an f32 multiply (3 DSPs) and add (2 DSPs) per segment output of a PE row,
        // and the per-token f32 multiply (3 DSPs) per PE row.
        let scaleUnits = array.rows * segmentsPerFold
        dsp = ceilDiv(pes * pe.dspHalves, 2) + scaleUnits * 5 + array.rows * 3
        // BRAM: the INT8 activations of every token (double-buffered), the f32 and INT32
        // accumulators of every token and PE row, and a 2-beat weight FIFO.
        let bits = 36 * 1024
        let activations = 2 * ceilDiv(tokens * maxColumns * 8, bits)
        let accumulators = ceilDiv(tokens * array.rows * 64, bits)
        let fifo = ceilDiv(2 * array.cols * pattern.slotBits, bits)
        // Memory interfaces and control (3 m_axi ports, the AXI-lite control): fixed.
        bram36 = activations + accumulators + fifo + 12
        lut = pes * pe.lut + scaleUnits * 700 + 15_000
        ff = pes * pe.ff + scaleUnits * 1_100 + 25_000
    }

    /// The resources that exceed the device, as "dsp 9500 > 9024"; empty when it fits.
    public func overflows(_ d: FPGADevice) -> [String] {
        var out: [String] = []
        if dsp > d.dsp { out.append("DSP \(dsp) > \(d.dsp)") }
        if bram36 > d.bram36 { out.append("BRAM36 \(bram36) > \(d.bram36)") }
        if lut > d.lut { out.append("LUT \(lut) > \(d.lut)") }
        if ff > d.ff { out.append("FF \(ff) > \(d.ff)") }
        return out
    }

    public func utilization(_ d: FPGADevice) -> [String: Double] {
        ["dsp": Double(dsp) / Double(d.dsp), "bram36": Double(bram36) / Double(d.bram36),
         "lut": Double(lut) / Double(d.lut), "ff": Double(ff) / Double(d.ff)]
    }
}
