#if canImport(FoundationEssentials)
import FoundationEssentials
#endif
import Foundation
import NMRuntime
import NMTargetPTX

/// One measured (shape, M, implementation) point of `nmc-run --bench-matmul`.
struct MatmulPoint: Codable {
    var shape: String
    var rows: Int
    var columns: Int
    var tokens: Int
    var impl: String
    var medianMicroseconds: Double
    /// The second method: one CUDA graph of `graphLaunches` launches, each on its own weight
    /// copy (the copies together ≥ 512 MB), timed as a whole; replay time / launches, median of
    /// `runs` replays. No per-launch event floor: how a decode step's graph runs the kernel.
    var graphMicroseconds: Double? = nil
    var graphLaunches: Int? = nil
    /// The graph method with programmatic dependent launches (sm_90, the decode kernels only):
    /// each launch's weight loads start while the launch before it still runs.
    var graphDependentMicroseconds: Double? = nil
    var runs: Int
    var copies: Int
    var weightBytes: Int
    /// max |y − ref| / max |ref| over the checked tokens (the reference is computed on the host
    /// from the same packed weights, following ir-specs/quant.md).
    var maxRelativeError: Double
}

/// `nmc-run --bench-matmul`: NMC's FP16, dense INT4 and 2:4 INT4 linear kernels on random
/// weights (seeded), each checked against the host reference and then timed: CUDA events
/// around each launch, median of `runs`, the weights rotating through copies totalling at
/// least `rotateBytes` so that none is read from L2, and all timed launches queued behind a
/// spinning kernel so that the GPU never waits on the host between them; then a second method,
/// a CUDA graph of one launch per weight copy replayed as a whole (per launch = replay / launches).
struct MatmulBench {
    let device: CUDADevice
    let runs: Int
    let seed: UInt64
    var metadataOrder = KernelWeightLayout.MetadataOrder.rowsInHalves
    var warps: Int? = nil
    var rowTiles: Int? = nil
    /// Blocks splitting K of the decode kernels (default: LinearKernel.standard's; > 1 needs sm_90).
    var splits: Int? = nil
    var kinds = LinearKernel.Weights.allCases
    /// The smallest M that runs the tiled (prefill) kernel, where the shape allows it.
    var tiledFrom = 128
    /// Warpgroups a block of the Hopper 2:4 prefill kernel (nil: 2; 0: the mma.sync kernel instead).
    var warpgroups: Int? = nil
    /// Tokens a block of that kernel (nil: 128).
    var blockTokens: Int? = nil
    /// Blocks splitting K of the prefill kernels (nil: their launch shape's, by M).
    var prefillSplits: Int? = nil
    /// The Hopper 2:4 prefill kernel as stream-K (`WarpgroupLinearKernel.streamK`).
    var streamK = false
    /// Row tiles of 64 a warpgroup of that kernel (`WarpgroupLinearKernel.rowTiles`).
    var wgmmaRowTiles = 1
    /// Where set, the 2:4 prefill kernel is `WarpgroupDecodeKernel` (16 tokens a block;
    /// experimental) with these choices (`WarpgroupDecodeKernel.Choices`).
    var wgmmaDecode: WarpgroupDecodeKernel.Choices? = nil
    var rotateBytes = 512 << 20
    /// Also time each point with the graph method (`graphMicroseconds`).
    var graphTiming = true
    /// Build the decode kernels for dependent launches where the GPU has them, and time them
    /// that way too (`graphDependentMicroseconds`).
    var dependentLaunch = true
    /// The decode kernels' choices passed to `LinearKernel.standard` (by default its own).
    var decode = DecodeKernelChoices()
    /// A measuring aid (`--replace-ptx DIR`): a kernel whose entry has a file DIR/ENTRY.ptx is
    /// loaded from it (an edited copy of its `.entry`, e.g. with a piece of work removed) and its
    /// results are reported, not checked.
    var replacementDirectory: String? = nil

    func run(shapes: [(rows: Int, columns: Int)], tokens: [Int], log: (String) -> Void) throws -> [MatmulPoint] {
        let maxTokens = tokens.max() ?? 1
        let utility = try device.loadModule(ptx: PTXModule.text(entries: [UtilityKernels.spin]), label: "nm_spin")
        let spin = try utility.function("nm_spin")
        // The floor of this way of timing: an empty launch (a spin of 0 ns) between two events.
        let floor = try median(spin: spin, log: log) { _ in
            try device.launch(spin, grid: (1, 1, 1), block: (1, 1, 1), arguments: [.u64(0)])
        }
        log("timing floor (an empty kernel between two events): \(String(format: "%.2f", floor)) us")
        var points: [MatmulPoint] = []
        for (shapeIndex, shape) in shapes.enumerated() {
            var rng = SplitMix64(seed: seed &+ UInt64(shapeIndex))
            let dense = try PackedINT4Weight.random(rows: shape.rows, columns: shape.columns, group: 128, sparse24: false, using: &rng)
            let sparse = try PackedINT4Weight.random(rows: shape.rows, columns: shape.columns, group: 128, sparse24: true, using: &rng)
            let xBits = (0..<(maxTokens * shape.columns)).map { _ in Float16(Float.random(in: -1...1, using: &rng)).bitPattern }
            let x = try device.buffer(xBits)
            let y = try device.allocate(maxTokens * shape.rows * 2)
            defer { device.free(x); device.free(y) }
            // Tokens whose outputs are compared with the host reference: first, middle and last of each M.
            let checked = Array(Set(tokens.flatMap { [0, $0 / 2, $0 - 1] })).sorted()
            let label = "\(shape.rows)x\(shape.columns)"
            for kind in kinds {
                log("\(label) \(kind.rawValue): laying out weights and computing the reference for tokens \(checked)")
                let (arrays, reference) = try prepare(kind, dense: dense, sparse: sparse, xBits: xBits, tokens: checked)
                let variant = try Variant(device: device, kind: kind, rows: shape.rows, columns: shape.columns, warps: warps,
                                          rowTiles: rowTiles, splits: splits, tiledFrom: maxTokens >= tiledFrom ? tiledFrom : Int.max,
                                          warpgroups: warpgroups, blockTokens: blockTokens,
                                          prefillSplits: prefillSplits, streamK: streamK, wgmmaRowTiles: wgmmaRowTiles,
                                          wgmmaDecode: wgmmaDecode,
                                          dependentLaunch: dependentLaunch && device.supportsDependentLaunch, decode: decode,
                                          replacements: replacementDirectory,
                                          arrays: arrays, rotateBytes: rotateBytes)
                defer { variant.free() }
                for entry in variant.replaced { log("\(label) \(kind.rawValue): \(entry) loaded from \(replacementDirectory!)/\(entry).ptx: its results are not checked") }
                for t in variant.tiled {
                    let r = try t.function.resources()
                    log("\(label) \(kind.rawValue): prefill kernel \(t.kernel.entry): \(r.registers) registers a thread, \(r.localBytes) local bytes")
                }
                for m in tokens {
                    let error = try check(variant, m: m, x: x, y: y, reference: reference, checked: checked)
                    for i in 0..<3 { try variant.launch(m: m, copy: i % variant.copies.count, x: x, y: y) }
                    let median = try self.median(spin: spin, log: log) { r in
                        try variant.launch(m: m, copy: (r + 1) % variant.copies.count, x: x, y: y)
                    }
                    // Graph method: one launch per copy (at least 8), so the launches together
                    // stream ≥ rotateBytes of distinct weights.
                    let launches = min(4096, max(8, variant.copies.count))
                    let graphed = graphTiming ? try graphMedian(launches: launches) { i in
                        try variant.launch(m: m, copy: i % variant.copies.count, x: x, y: y)
                    } : nil
                    let dependent = graphTiming && variant.dependentLaunch(m: m) ? try graphMedian(launches: launches) { i in
                        try variant.launch(m: m, copy: i % variant.copies.count, x: x, y: y, dependent: true)
                    } : nil
                    log("  \(kind.rawValue) M=\(m): \(String(format: "%.2f", median)) us"
                        + (graphed.map { String(format: ", graph %.2f us/launch", $0) } ?? "")
                        + (dependent.map { String(format: ", graph with dependent launches %.2f us/launch", $0) } ?? "")
                        + ", max rel error \(String(format: "%.2e", error))")
                    points.append(MatmulPoint(shape: label, rows: shape.rows, columns: shape.columns, tokens: m,
                                              impl: "nmc-\(kind.rawValue)", medianMicroseconds: median,
                                              graphMicroseconds: graphed, graphLaunches: graphed == nil ? nil : launches,
                                              graphDependentMicroseconds: dependent, runs: runs,
                                              copies: variant.copies.count, weightBytes: variant.bytesPerCopy,
                                              maxRelativeError: error))
                }
            }
        }
        return points
    }

    /// The kernel's weight arrays (weights, metadata, scales) and the host reference outputs.
    func prepare(_ kind: LinearKernel.Weights, dense: PackedINT4Weight, sparse: PackedINT4Weight,
                         xBits: [UInt16], tokens: [Int]) throws -> ([[UInt32]], [[Double]]) {
        switch kind {
        case .fp16:
            // The FP16 baseline multiplies by the dense weight's dequantized values, rounded to f16.
            var w16 = [UInt16](repeating: 0, count: dense.rows * dense.columns)
            for r in 0..<dense.rows {
                for (c, v) in dense.dequantizedRow(r).enumerated() { w16[r * dense.columns + c] = Float16(Float(v)).bitPattern }
            }
            let reference = HostReference.linearF16(w16, rows: dense.rows, columns: dense.columns, x: xBits, tokens: tokens)
            return ([try KernelWeightLayout.fp16(w16, rows: dense.rows, columns: dense.columns), [], []], reference)
        case .int4:
            return ([try KernelWeightLayout.int4Dense(dense), [], try KernelWeightLayout.scales(dense)],
                    dense.referenceLinear(x: xBits, tokens: tokens))
        case .int4Sparse24:
            return ([try KernelWeightLayout.int4Sparse24Values(sparse), try KernelWeightLayout.int4Sparse24Metadata(sparse, order: metadataOrder),
                     try KernelWeightLayout.scales(sparse)], sparse.referenceLinear(x: xBits, tokens: tokens))
        }
    }

    /// Poisons y (0xFFFF is an f16 NaN), runs once, and compares; every output must be written.
    private func check(_ v: Variant, m: Int, x: CUDevicePointer, y: CUDevicePointer,
                       reference: [[Double]], checked: [Int]) throws -> Double {
        try device.fill(y, byte: 0xFF, bytes: m * v.rows * 2)
        try v.launch(m: m, copy: 0, x: x, y: y)
        let out = try device.download(y, count: m * v.rows, as: UInt16.self)
        let replaced = v.replaced.contains(v.kernelEntry(tokens: m))
        if !replaced, let bad = out.firstIndex(where: { Float16(bitPattern: $0).isNaN }) {
            throw BenchFailure("\(v.label) M=\(m): output \(bad) (token \(bad / v.rows), row \(bad % v.rows)) was not written or is NaN")
        }
        var maxErr = 0.0, maxRef = 0.0
        for (i, token) in checked.enumerated() where token < m {
            for r in 0..<v.rows {
                let got = Double(Float(Float16(bitPattern: out[token * v.rows + r])))
                maxErr = max(maxErr, abs(got - reference[i][r]))
                maxRef = max(maxRef, abs(reference[i][r]))
            }
        }
        let rel = maxErr / max(maxRef, 1e-30)
        if rel > 1e-2 && !replaced { throw BenchFailure("\(v.label) M=\(m): max relative error \(rel) exceeds 1e-2") }
        return rel
    }

    /// Per-launch microseconds by the graph method: `launches` launches captured in one CUDA graph,
    /// replayed `runs` times (an event pair around each replay, after 3 warm-ups); the median
    /// replay over `launches`.
    private func graphMedian(launches: Int, launch: (Int) throws -> Void) throws -> Double {
        let graph = try device.captureGraph { for i in 0..<launches { try launch(i) } }
        return try graph.medianReplayMicroseconds(runs: runs) / Double(launches)
    }

    /// The median over `runs` of `launch(r)` between two events, all queued behind a spin.
    private func median(spin: CUDAFunction, log: (String) -> Void, launch: (Int) throws -> Void) throws -> Double {
        let starts = try (0..<runs).map { _ in try device.makeEvent() }
        let ends = try (0..<runs).map { _ in try device.makeEvent() }
        defer { (starts + ends).forEach(device.destroyEvent) }
        let spinNanoseconds = UInt64(2_000_000 + 100_000 * runs)
        let queued = ContinuousClock.now
        try device.launch(spin, grid: (1, 1, 1), block: (1, 1, 1), arguments: [.u64(spinNanoseconds)])
        for r in 0..<runs {
            try device.record(starts[r])
            try launch(r)
            try device.record(ends[r])
        }
        let hostTime = ContinuousClock.now - queued
        if hostTime > .nanoseconds(Int64(spinNanoseconds)) {
            log("  warning: queueing took \(hostTime), longer than the spin; the timings may include GPU idle time")
        }
        let times = try (0..<runs).map { try device.elapsedMilliseconds(from: starts[$0], to: ends[$0]) * 1000 }
        return times.sorted()[runs / 2]
    }
}

/// One NMC linear kernel loaded on the GPU with its weights copied enough times to rotate.
final class Variant {
    let device: CUDADevice
    let rows: Int
    let columns: Int
    let label: String
    let kernels: [LinearKernel]
    let functions: [CUDAFunction]
    /// The prefill kernels (Hopper 2:4: 128 and 256 tokens a block, `prefill(tokens:)` picks).
    let tiled: [(kernel: any PrefillLinearKernel, function: CUDAFunction)]
    let tiledFrom: Int
    let prefillSplits: Int?
    /// Split-K workspace and counters of the tiled kernel, by M.
    private var scratch: [Int: (workspace: CUDevicePointer, counters: CUDevicePointer)] = [:]
    let copies: [[CUDevicePointer]]
    let bytesPerCopy: Int
    /// Entries loaded from `replacements` instead of generated.
    let replaced: [String]

    init(device: CUDADevice, kind: LinearKernel.Weights, rows: Int, columns: Int, warps: Int?, rowTiles: Int?, splits: Int? = nil, tiledFrom: Int,
         warpgroups: Int?, blockTokens: Int?, prefillSplits: Int? = nil, streamK: Bool = false, wgmmaRowTiles: Int = 1,
         wgmmaDecode: WarpgroupDecodeKernel.Choices? = nil, dependentLaunch: Bool = false, decode: DecodeKernelChoices = DecodeKernelChoices(),
         replacements: String? = nil, arrays: [[UInt32]],
         rotateBytes: Int) throws {
        self.device = device
        self.prefillSplits = prefillSplits
        self.rows = rows
        self.columns = columns
        let kernels = try decode.kernels(kind: kind, rows: rows, columns: columns, warps: warps, rowTiles: rowTiles, splits: splits,
                                         clusters: device.computeCapability.major >= 9, dependentLaunch: dependentLaunch)
        self.kernels = kernels
        label = "nmc-\(kind.rawValue) \(rows)x\(columns)" + (kernels.contains(where: \.prefetch) ? " with L2 prefetch" : "")
        let prefill = try prefillKernels(kind: kind, rows: rows, columns: columns, warpgroups: warpgroups, blockTokens: blockTokens,
                                         rowTiles: wgmmaRowTiles, streamK: streamK, wgmmaDecode: wgmmaDecode,
                                         splits: prefillSplits, dependentLaunch: dependentLaunch, hopper: device.computeCapability == (9, 0))
        // Where none will run, the prefill kernels stay out of the module (the driver takes about
        // a second to compile the Hopper 2:4 ones); the module keeps the target they give it
        // (sm_90a on Hopper), so that the decode kernels compile as they did when measured.
        let tiledKernels = tiledFrom == Int.max ? [] : prefill
        var replaced: [String] = []
        let entries = try zip(kernels.map(\.entry) + tiledKernels.map(\.entry), kernels.map { $0.ptx() } + tiledKernels.map { $0.ptx() }).map {
            guard let dir = replacements, FileManager.default.fileExists(atPath: "\(dir)/\($0).ptx") else { return $1 }
            replaced.append($0)
            return try String(contentsOfFile: "\(dir)/\($0).ptx", encoding: .utf8)
        }
        self.replaced = replaced
        let target = moduleTarget(kernels.map(\.target) + prefill.map(\.target))
        let module = try device.loadModule(ptx: PTXModule.text(entries: entries, target: target), label: label)
        functions = try kernels.map { try module.function($0.entry) }
        for (k, f) in zip(kernels, functions) where k.dynamicSharedBytes > 0 { try f.allowDynamicSharedBytes(k.dynamicSharedBytes) }
        tiled = try tiledKernels.map { ($0, try module.function($0.entry)) }
        for t in tiled where t.kernel.dynamicSharedBytes > 0 { try t.function.allowDynamicSharedBytes(t.kernel.dynamicSharedBytes) }
        self.tiledFrom = tiledFrom
        bytesPerCopy = arrays.reduce(0) { $0 + 4 * $1.count }
        let count = max(1, (rotateBytes + bytesPerCopy - 1) / bytesPerCopy)
        let first = try arrays.map { $0.isEmpty ? 0 : try device.buffer($0) }
        var all = [first]
        for _ in 1..<count {
            all.append(try zip(arrays, first).map { a, src in
                guard !a.isEmpty else { return 0 }
                let p = try device.allocate(4 * a.count)
                try device.copy(from: src, to: p, bytes: 4 * a.count)
                return p
            })
        }
        copies = all
    }

    /// The prefill kernel that runs M tokens, or nil where a decode kernel does.
    func prefillRunning(tokens m: Int) -> (kernel: any PrefillLinearKernel, function: CUDAFunction)? {
        m >= tiledFrom ? prefill(tokens: m) : nil
    }

    /// The decode kernel for M tokens (`kernels`' index): one token tile up to 8 tokens, else two.
    func decodeIndex(tokens m: Int) -> Int { m <= 8 ? 0 : 1 }

    /// The entry that runs M tokens.
    func kernelEntry(tokens m: Int) -> String {
        prefillRunning(tokens: m)?.kernel.entry ?? kernels[decodeIndex(tokens: m)].entry
    }

    /// Whether M runs a decode kernel built for dependent launches.
    func dependentLaunch(m: Int) -> Bool {
        prefillRunning(tokens: m).map { $0.kernel.dependentLaunch } ?? kernels[decodeIndex(tokens: m)].dependentLaunch
    }

    /// One launch for M tokens on weight copy `copy`; `dependent` (decode kernels built for it):
    /// a programmatic dependent launch.
    func launch(m: Int, copy: Int, x: CUDevicePointer, y: CUDevicePointer, dependent: Bool = false) throws {
        let c = copies[copy]
        let arguments: [CUDAKernelArgument] = [.pointer(c[0]), .pointer(c[1]), .pointer(c[2]), .pointer(x), .pointer(y), .u32(UInt32(m))]
        if let t = prefillRunning(tokens: m) {
            var shape = t.kernel.launchShape(tokens: m, multiprocessors: device.multiprocessors)
            if let s = prefillSplits { shape.grid.2 = try forcedSplits(s) }  // not with stream-K: nmc-run refuses the pair
            if scratch[m] == nil {
                let need = t.kernel.scratch(tokens: m, grid: shape.grid)
                let counters = try device.allocate(4 * need.counters)
                try device.fill(counters, byte: 0, bytes: 4 * need.counters)
                scratch[m] = (try device.allocate(need.workspaceBytes), counters)
            }
            let s = scratch[m]!
            var tiledArguments = Array(arguments[0..<5]) + [.pointer(s.workspace), .pointer(s.counters), .u32(UInt32(m))]
            if let boxRows = t.kernel.activationMapTokens {
                let map = try device.tensorMapF16(x, rows: m, columns: columns, boxRows: boxRows, boxColumns: 64)
                tiledArguments.append(.bytes(map, alignment: 64))
            }
            guard !dependent || t.kernel.dependentLaunch else {
                throw BenchFailure("\(label) M=\(m): \(t.kernel.entry) is not built for dependent launches")
            }
            return try device.launch(t.function, grid: shape.grid, block: shape.block, sharedBytes: t.kernel.dynamicSharedBytes,
                                     arguments: tiledArguments, dependent: dependent, cluster: t.kernel.clusterShape(grid: shape.grid))
        }
        let k = decodeIndex(tokens: m)
        guard !dependent || kernels[k].dependentLaunch else {
            throw BenchFailure("\(label) M=\(m): \(kernels[k].entry) is not built for dependent launches")
        }
        let shape = kernels[k].launchShape(tokens: m)
        var decodeArguments = arguments
        if kernels[k].tensorActivations {  // boxes of 16 tokens × 64 columns
            decodeArguments.append(.bytes(try device.tensorMapF16(x, rows: m, columns: columns, boxRows: 16, boxColumns: 64), alignment: 64))
        }
        try device.launch(functions[k], grid: shape.grid, block: shape.block, sharedBytes: kernels[k].dynamicSharedBytes,
                          arguments: decodeArguments, dependent: dependent)
    }

    /// `--prefill-splits S` checked against the shape: no split may be left without units.
    func forcedSplits(_ s: Int) throws -> Int {
        let units = columns / KernelWeightLayout.unitColumns, chunk = 2 * ((units / 2 + s - 1) / s)
        guard s >= 1, (s - 1) * chunk < units else {
            throw BenchFailure("--prefill-splits \(s): \(columns) columns (\(units) units of \(KernelWeightLayout.unitColumns)) cannot be split \(s) ways with none left empty")
        }
        return s
    }

    /// The prefill kernel for M tokens: the only one, or the one with
    /// `WarpgroupLinearKernel.standardBlockTokens` tokens a block.
    func prefill(tokens m: Int) -> (kernel: any PrefillLinearKernel, function: CUDAFunction)? {
        guard tiled.count > 1, let first = tiled.first?.kernel as? WarpgroupLinearKernel else { return tiled.first }
        let best = WarpgroupLinearKernel.standardBlockTokens(rows: rows, columns: columns, tokens: m, warpgroups: first.warpgroups,
                                                            rowTiles: first.rowTiles, multiprocessors: device.multiprocessors,
                                                            streamK: first.streamK)
        return tiled.first { $0.kernel.activationMapTokens == best } ?? tiled.first
    }

    func free() {
        for c in copies { for p in c where p != 0 { device.free(p) } }
        for s in scratch.values { device.free(s.workspace); device.free(s.counters) }
    }
}

struct BenchFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

enum HostReference {
    /// `y[m, r] = Σ_c x[m, c] · w[r, c]` in Double for f16 weights and activations.
    static func linearF16(_ w: [UInt16], rows: Int, columns: Int, x: [UInt16], tokens: [Int]) -> [[Double]] {
        let xs = tokens.map { m in (0..<columns).map { Double(Float(Float16(bitPattern: x[m * columns + $0]))) } }
        var y = [[Double]](repeating: [Double](repeating: 0, count: rows), count: tokens.count)
        var row = [Double](repeating: 0, count: columns)
        for r in 0..<rows {
            for c in 0..<columns { row[c] = Double(Float(Float16(bitPattern: w[r * columns + c]))) }
            for (i, xr) in xs.enumerated() {
                var s = 0.0
                for c in 0..<columns { s += xr[c] * row[c] }
                y[i][r] = s
            }
        }
        return y
    }
}

/// The large-M kernels for a weight: on Hopper (sm_90) 2:4 INT4 takes the `wgmma` kernels with
/// `warpgroups` (default 2; 0 = the `mma.sync` one instead), `rowTiles` a warpgroup and
/// `blockTokens` (default: every token tile they allow, picked by M; `streamK`: those as
/// stream-K), everything else the `mma.sync` tiled kernel; none where the shape allows neither.
/// `wgmmaDecode`: on Hopper, 2:4 INT4 takes `WarpgroupDecodeKernel` with those choices instead
/// (`warpgroups` default 4, `splits` default `standardSplits`).
func prefillKernels(kind: LinearKernel.Weights, rows: Int, columns: Int, warpgroups: Int?, blockTokens: Int?, rowTiles: Int = 1,
                    streamK: Bool = false, wgmmaDecode: WarpgroupDecodeKernel.Choices? = nil, splits: Int? = nil, dependentLaunch: Bool = false,
                    hopper: Bool) throws -> [any PrefillLinearKernel] {
    if let choices = wgmmaDecode, hopper && kind == .int4Sparse24 {
        return [try WarpgroupDecodeKernel(rows: rows, columns: columns, warpgroups: warpgroups ?? 4,
                                          splits: splits ?? WarpgroupDecodeKernel.standardSplits(rows: rows), dependentLaunch: dependentLaunch,
                                          choices: choices)]
    }
    let groups = warpgroups ?? 2
    let supported = { (t: Int) in
        WarpgroupLinearKernel.supports(rows: rows, columns: columns, warpgroups: groups, blockTokens: t, rowTiles: rowTiles)
    }
    let tokens = blockTokens.map { [$0] } ?? WarpgroupLinearKernel.tokenTiles.filter(supported)
    if hopper, kind == .int4Sparse24, groups > 0, !tokens.isEmpty, tokens.allSatisfy(supported) {
        return try tokens.map {
            try WarpgroupLinearKernel(rows: rows, columns: columns, warpgroups: groups, blockTokens: $0, rowTiles: rowTiles,
                                      streamK: streamK)
        }
    }
    return TiledLinearKernel.supports(rows: rows, columns: columns) ? [try TiledLinearKernel(weights: kind, rows: rows, columns: columns)] : []
}

/// The target of a module holding kernels of these targets: the newest of sm_90a, sm_90, sm_80.
func moduleTarget(_ targets: [String]) -> String {
    targets.contains("sm_90a") ? "sm_90a" : targets.contains("sm_90") ? "sm_90" : "sm_80"
}

/// The choices of the decode linear kernels that `nmc-run` passes through to
/// `LinearKernel.standard` (nil each: its default).
struct DecodeKernelChoices {
    /// L2 prefetch of each block's weights (`LinearKernel.prefetch`).
    var prefetch: Bool? = nil
    /// Batches ahead each warp asks the L2 for (`LinearKernel.prefetchAhead`).
    var prefetchAhead: Int? = nil
    /// Scaled sums asked for or refused in the INT4 kernels (`LinearKernel.sumsScaled`).
    var sumsScaled: Bool? = nil
    /// Units a warp loads before it computes them (`LinearKernel.batchUnits`).
    var batchUnits: Int? = nil
    /// Blocks an SM must hold at once (`LinearKernel.blocksPerSM`).
    var blocksPerSM: Int? = nil
    /// Dependent launches (where asked for) for blocks of any warps, not only the 16-warp ones
    /// and the 4-warp 2:4 kernel for two token tiles (`LinearKernel.standard`).
    var dependentAnyWarps = false
    /// Weak loads for the weights a warp loads before the grid-dependency wait, asked for or
    /// refused (`LinearKernel.weakWeightLoads`).
    var weakWeightLoads: Bool? = nil
    /// The staged 2:4 kernel's activations by the tensor copy engine (`LinearKernel.tensorActivations`),
    /// asked for or refused.
    var tensorActivations: Bool? = nil
    /// The tensor copies a batch ahead (`LinearKernel.tensorAhead`), asked for or refused.
    var tensorAhead: Bool? = nil
    /// The tensor copies multicast over clusters of two row blocks (`LinearKernel.tensorMulticast`).
    var tensorMulticast = false

    /// The decode kernels for one and two token tiles (M ≤ 8 and M ≤ 16).
    func kernels(kind: LinearKernel.Weights, rows: Int, columns: Int, warps: Int?, rowTiles: Int?, splits: Int?,
                 clusters: Bool, dependentLaunch: Bool) throws -> [LinearKernel] {
        try [1, 2].map {
            try LinearKernel.standard(weights: kind, rows: rows, columns: columns, tokenTiles: $0, warps: warps, rowTiles: rowTiles,
                                      splits: splits, clusters: clusters, dependentLaunch: dependentLaunch,
                                      prefetch: prefetch, prefetchAhead: prefetchAhead, sumsScaled: sumsScaled, batchUnits: batchUnits,
                                      blocksPerSM: blocksPerSM, dependentAnyWarps: dependentAnyWarps, weakWeightLoads: weakWeightLoads,
                                      tensorActivations: tensorActivations, tensorAhead: tensorAhead,
                                      tensorMulticast: tensorMulticast)
        }
    }
}
