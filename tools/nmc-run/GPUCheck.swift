import NMRuntime
import NMTargetPTX

/// `nmc-run --gpu-check`: the CUDA runtime's pieces (memory, a module from PTX, launches,
/// events, a captured graph) and every linear kernel on small odd shapes (a unit count that
/// the warps do not divide, M from 1 to 24), each against the host reference.
struct GPUCheck {
    let device: CUDADevice
    let seed: UInt64
    let metadataOrder: KernelWeightLayout.MetadataOrder

    func run(log: (String) -> Void) throws {
        try runtimeBasics(log: log)
        var bench = MatmulBench(device: device, runs: 5, seed: seed)
        bench.metadataOrder = metadataOrder
        for shape in [(rows: 32, columns: 128), (rows: 48, columns: 1152)] {
            _ = try bench.run(shapes: [shape], tokens: [1, 5, 8, 9, 16, 24], log: log)
        }
        // The tiled kernel: partial token blocks, more than one block each way, 6 K units; then
        // split K (4 even splits of 32 units; 2 uneven splits, 12 and 10 of 22 units).
        bench.tiledFrom = 1
        _ = try bench.run(shapes: [(rows: 256, columns: 768)], tokens: [1, 77, 128, 200], log: log)
        _ = try bench.run(shapes: [(rows: 256, columns: 4096), (rows: 128, columns: 2816)], tokens: [1, 77, 200], log: log)
        log("gpu-check: all kernels match the host reference")
    }

    /// Adds 1 to 1000 floats through a hand-written PTX kernel, directly and through a graph.
    private func runtimeBasics(log: (String) -> Void) throws {
        let ptx = PTXModule.text(entries: [UtilityKernels.addOne])
        let module = try device.loadModule(ptx: ptx, label: "add_one")
        let f = try module.function("nm_add_one")
        let n = 1000
        let input = (0..<n).map { Float($0) }
        let p = try device.buffer(input)
        defer { device.free(p) }
        let start = try device.makeEvent(), end = try device.makeEvent()
        try device.record(start)
        try device.launch(f, grid: (4, 1, 1), block: (256, 1, 1), arguments: [.pointer(p), .u32(UInt32(n))])
        try device.record(end)
        let ms = try device.elapsedMilliseconds(from: start, to: end)
        let graph = try device.captureGraph {
            try device.launch(f, grid: (4, 1, 1), block: (256, 1, 1), arguments: [.pointer(p), .u32(UInt32(n))])
        }
        try graph.launch()
        try graph.launch()
        let out = try device.download(p, count: n, as: Float.self)
        guard out == input.map({ $0 + 3 }) else {
            throw BenchFailure("gpu-check: add_one gave \(out.prefix(4))…, expected \(input.prefix(4).map { $0 + 3 })…")
        }
        log("gpu-check: memory, PTX module, launch, events (\(String(format: "%.1f", ms * 1000)) us) and graph replay work")
    }
}
