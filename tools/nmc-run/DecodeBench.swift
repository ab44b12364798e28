#if canImport(FoundationEssentials)
import FoundationEssentials
#endif
import Foundation
import NMRuntime
import NMTargetPTX

/// `nmc-run --bench-decode`: the linear layers of one LLaMA-7B decode step (M = 1): per layer
/// q|k|v (12288×4096: the three share their input, so their weights are stacked into one
/// launch), o (4096×4096), gate|up (22016×4096) and down (4096×11008), 32 layers, then the
/// 32000×4096 output projection; 129 launches captured in one CUDA graph, whose replay is timed
/// (events, median of `runs`). Weights are synthetic (seeded, one layer generated on the host
/// and copied on the GPU into every layer's own memory, so that each launch streams its own
/// weights from DRAM); every launch reads the same activations. The attention, norms and
/// activation functions of the step are not in it: it measures the weight streaming that
/// dominates decode.
struct DecodeBench {
    let device: CUDADevice
    let runs: Int
    let seed: UInt64
    let layers = 32

    static let layerShapes = [(12288, 4096), (4096, 4096), (22016, 4096), (4096, 11008)]
    static let head = (32000, 4096)

    func run(kind: LinearKernel.Weights, log: (String) -> Void) throws -> Double {
        var rng = SplitMix64(seed: seed)
        let distinct = Self.layerShapes + [Self.head]
        var templates: [String: [[UInt32]]] = [:]
        for (rows, columns) in distinct {
            templates["\(rows)x\(columns)"] = try Self.arrays(kind, rows: rows, columns: columns, rng: &rng)
        }
        let maxColumns = 11008
        let x = try device.buffer((0..<maxColumns).map { _ in Float16(Float.random(in: -1...1, using: &rng)).bitPattern })
        let y = try device.allocate(Self.head.0 * 2)  // every launch writes here; stream order keeps them apart
        var allocations: [CUDevicePointer] = [x, y]
        defer { allocations.forEach(device.free) }
        // One module per shape; the decode kernel with one token tile.
        var functions: [String: (LinearKernel, CUDAFunction, CUDAModule)] = [:]
        var uploaded: [String: [CUDevicePointer]] = [:]
        for (rows, columns) in distinct {
            let key = "\(rows)x\(columns)"
            let kernel = try LinearKernel.standard(weights: kind, rows: rows, columns: columns, tokenTiles: 1)
            let module = try device.loadModule(ptx: PTXModule.text(entries: [kernel.ptx()]), label: key)
            functions[key] = (kernel, try module.function(kernel.entry), module)
            uploaded[key] = try templates[key]!.map { $0.isEmpty ? 0 : try device.buffer($0) }
            allocations += uploaded[key]!.filter { $0 != 0 }
        }
        // Every matrix of every layer gets its own copy of its shape's template.
        var launches: [(key: String, buffers: [CUDevicePointer])] = []
        let plan = (0..<layers).flatMap { _ in Self.layerShapes } + [Self.head]
        var bytes = 0
        for (rows, columns) in plan {
            let key = "\(rows)x\(columns)"
            let copies = try zip(templates[key]!, uploaded[key]!).map { array, source -> CUDevicePointer in
                guard !array.isEmpty else { return 0 }
                let p = try device.allocate(4 * array.count)
                try device.copy(from: source, to: p, bytes: 4 * array.count)
                allocations.append(p)
                bytes += 4 * array.count
                return p
            }
            launches.append((key, copies))
        }
        try device.synchronize()
        log("decode \(kind.rawValue): \(launches.count) launches, \(bytes / 1_000_000) MB of weights")
        let graph = try device.captureGraph {
            for l in launches {
                let (kernel, function, _) = functions[l.key]!
                let shape = kernel.launchShape(tokens: 1)
                try device.launch(function, grid: shape.grid, block: shape.block,
                                  arguments: [.pointer(l.buffers[0]), .pointer(l.buffers[1]), .pointer(l.buffers[2]),
                                              .pointer(x), .pointer(y), .u32(1)])
            }
        }
        let median = try graph.medianReplayMicroseconds(runs: runs)
        log("  \(kind.rawValue): \(String(format: "%.1f", median)) us per token (median of \(runs) graph replays)")
        return median
    }

    /// The kernel's arrays (weights, metadata, scales) for a random weight of this shape.
    static func arrays(_ kind: LinearKernel.Weights, rows: Int, columns: Int, rng: inout SplitMix64) throws -> [[UInt32]] {
        switch kind {
        case .fp16:
            let w16 = (0..<(rows * columns)).map { _ in Float16(Float.random(in: -0.02...0.02, using: &rng)).bitPattern }
            return [try KernelWeightLayout.fp16(w16, rows: rows, columns: columns), [], []]
        case .int4:
            let w = try PackedINT4Weight.random(rows: rows, columns: columns, group: 128, sparse24: false, using: &rng)
            return [try KernelWeightLayout.int4Dense(w), [], try KernelWeightLayout.scales(w)]
        case .int4Sparse24:
            let w = try PackedINT4Weight.random(rows: rows, columns: columns, group: 128, sparse24: true, using: &rng)
            return [try KernelWeightLayout.int4Sparse24Values(w), try KernelWeightLayout.int4Sparse24Metadata(w),
                    try KernelWeightLayout.scales(w)]
        }
    }
}
