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
        try syntheticWeights(log: log)
        var decodeKernels = DecodeKernelCheck(device: device, seed: seed)
        try decodeKernels.run(log: log)
        var bench = MatmulBench(device: device, runs: 5, seed: seed)
        bench.metadataOrder = metadataOrder
        bench.graphTiming = false
        for shape in [(rows: 32, columns: 128), (rows: 48, columns: 1152)] {
            _ = try bench.run(shapes: [shape], tokens: [1, 5, 8, 9, 16, 24], log: log)
        }
        // Split K over a cluster's blocks (sm_90): 1 and 9 units over 2·16 … 8·16 warps (most
        // idle), and 32 units, each split forced.
        if device.computeCapability.major >= 9 {
            for s in [2, 4, 8] {
                bench.splits = s
                for shape in [(rows: 32, columns: 128), (rows: 64, columns: 1152), (rows: 96, columns: 4096)] {
                    _ = try bench.run(shapes: [shape], tokens: [1, 5, 9, 16, 24], log: log)
                }
            }
            bench.splits = nil
        } else {
            log("gpu-check: split K not checked (clusters need sm_90)")
        }
        // The tiled kernel: partial token blocks, more than one block each way, 6 K units; then
        // split K (4 even splits of 32 units; 2 uneven splits, 12 and 10 of 22 units).
        // On Hopper the 2:4 one is the wgmma kernel: with 2 warpgroups and each token tile (64,
        // 128, 192, 256 tokens a block), with 4 (64, 128), then the mma.sync kernel it replaces.
        bench.tiledFrom = 1
        for groups in device.computeCapability == (9, 0) ? [2, 4, 0] : [0] {
            bench.warpgroups = groups
            if groups > 0 { bench.kinds = [.int4Sparse24] }
            let tiles: [Int?] = groups > 0 ? WarpgroupLinearKernel.tokenTiles.filter { groups == 2 || $0 <= 128 } : [nil]
            for t in tiles {
                bench.blockTokens = t
                log("gpu-check: the prefill kernels\(groups > 0 ? ", 2:4 by wgmma with \(groups) warpgroups of \(t ?? 0) tokens" : "")")
                _ = try bench.run(shapes: [(rows: 256, columns: 768)], tokens: [1, 77, 128, 200, 300], log: log)
                _ = try bench.run(shapes: [(rows: 256, columns: 4096), (rows: 128 * max(groups / 2, 1), columns: 2816)], tokens: [1, 77, 200, 520], log: log)
            }
            if groups == 2 {
                // Split K reduced in a cluster, each count forced (2 and 8 even, 3 uneven: 12, 12
                // and 8 of 32 units), with one token tile and two, the last partial.
                for (s, t) in [(2, 256), (3, 128), (8, 64)] {
                    bench.prefillSplits = s
                    bench.blockTokens = t
                    log("gpu-check: the wgmma kernel of \(t) tokens with K split over a cluster of \(s)")
                    _ = try bench.run(shapes: [(rows: 256, columns: 4096)], tokens: [1, 77, 300], log: log)
                }
                bench.prefillSplits = nil
            }
            bench.kinds = LinearKernel.Weights.allCases
        }
        // The wgmma kernel with two row tiles a warpgroup (256 rows a block; experimental): each
        // token tile it takes, two row blocks, split K through the workspace as M asks, then
        // forced (3 uneven splits: 12, 12 and 8 of 32 units).
        if device.computeCapability == (9, 0) {
            bench.warpgroups = 2
            bench.kinds = [.int4Sparse24]
            bench.wgmmaRowTiles = 2
            for t in [64, 128] {
                bench.blockTokens = t
                log("gpu-check: the wgmma kernel with two row tiles a warpgroup, \(t) tokens")
                _ = try bench.run(shapes: [(rows: 256, columns: 768), (rows: 512, columns: 4096)], tokens: [1, 77, 200, 520], log: log)
            }
            bench.prefillSplits = 3
            log("gpu-check: the wgmma kernel with two row tiles a warpgroup, K split 3 ways through the workspace")
            _ = try bench.run(shapes: [(rows: 256, columns: 4096)], tokens: [1, 77, 300], log: log)
            bench.prefillSplits = nil
            bench.wgmmaRowTiles = 1
            // Narrow token tiles (experimental, decode's M): 16 and 32 tokens, K of 22 units whole,
            // split as M asks (2 ways, through the workspace) and split 3 ways (8, 8 and 6 units).
            for t in WarpgroupLinearKernel.narrowTokenTiles {
                bench.blockTokens = t
                for s in [1, nil, 3] {
                    bench.prefillSplits = s
                    log("gpu-check: the wgmma kernel of \(t) tokens, K split \(s.map(String.init) ?? "as M asks")")
                    _ = try bench.run(shapes: [(rows: 256, columns: 2816)], tokens: [1, 9, 16, 77], log: log)
                }
            }
            // The decode-shaped wgmma kernel (experimental): K of 22 units cut over 4 to 16
            // warpgroups, the last unit for some only, with and without a cluster; several token blocks.
            // The weights only prefetched before the wait in the last (three units a wait).
            for (groups, s, perWait) in [(4, 1, nil), (4, 2, nil), (2, 4, nil), (4, 4, nil), (4, 2, 1), (2, 1, 1),
                                         (2, 1, 2), (2, 2, 3)] as [(Int, Int, Int?)] {
                bench.warpgroups = groups
                bench.prefillSplits = s
                bench.wgmmaDecode = WarpgroupDecodeKernel.Choices(unitsPerWait: perWait, prefetchWeights: perWait == 3)
                log("gpu-check: the decode-shaped wgmma kernel, \(groups) warpgroups, \(s) blocks a cluster\(perWait.map { ", \($0) units a wait" } ?? "")\(perWait == 3 ? ", weights prefetched" : "")")
                _ = try bench.run(shapes: [(rows: 128, columns: 2816)], tokens: [1, 9, 16, 17, 40], log: log)
            }
            bench.wgmmaDecode = nil
            bench.prefillSplits = nil
            bench.kinds = LinearKernel.Weights.allCases
        }
        bench.warpgroups = nil
        bench.blockTokens = nil
        if device.supportsDependentLaunch {
            try dependentLaunches(log: log)
        } else {
            log("gpu-check: dependent launches not checked (they need sm_90 and cuLaunchKernelEx)")
        }
        /// The decode kernels as `bench` now builds them, with each of `warps`, on each of `shapes`.
        func checkDecode(_ what: String, warps: [Int] = [16, 4], shapes: [(rows: Int, columns: Int)], tokens: [Int] = [1, 9, 16, 24]) throws {
            for w in warps {
                bench.warps = w
                log("gpu-check: the \(what), \(w) warps")
                for shape in shapes { _ = try bench.run(shapes: [shape], tokens: tokens, log: log) }
            }
        }
        // Weights of 1, 9 and 86 units of 128 columns.
        let (one, nine, many) = ((rows: 32, columns: 128), (rows: 48, columns: 1152), (rows: 96, columns: 11008))
        // The decode kernels with L2 prefetch everywhere (by default only 2:4 kernels launched
        // dependently whose warps load all their units in one batch), every kind: 1, 9 and 86
        // units (a partial last line of scales), 16 and 4 warps, every token count up to three
        // token tiles.
        bench.decode.prefetch = true
        bench.tiledFrom = Int.max
        try checkDecode("decode kernels with L2 prefetch", shapes: [one, nine, many], tokens: [1, 5, 9, 16, 24])
        // Prefetching batches ahead (by default 1, for 2:4 one-token-tile kernels launched
        // dependently with several batches a warp), every kind: 9 and 86 units (several batches a
        // warp, the last round partial), with and without the block's prefetch.
        for ahead in [1, 2] {
            bench.decode.prefetchAhead = ahead
            bench.decode.prefetch = ahead == 1
            try checkDecode("decode kernels prefetching \(ahead) batch\(ahead > 1 ? "es" : "") ahead", shapes: [nine, many])
        }
        bench.decode.prefetchAhead = nil
        // Scaled unit sums asked for (one accumulator set) and refused, whatever the batches: 1,
        // 9 and 86 units (one batch, several, a partial last round), both INT4 kinds.
        bench.decode.prefetch = nil
        bench.kinds = [.int4, .int4Sparse24]
        for sums in [true, false] {
            bench.decode.sumsScaled = sums
            try checkDecode("INT4 decode kernels with scaled \(sums ? "sums" : "weights")", shapes: [one, nine, many])
        }
        bench.decode.sumsScaled = nil
        // Batches of 1, 3 and 4 units (2 or 4 by default), scaled sums or not: 9 and 86 units
        // (the last batch short, the last round partial), every kind.
        bench.kinds = LinearKernel.Weights.allCases
        for units in [1, 3, 4] {
            bench.decode.batchUnits = units
            bench.decode.sumsScaled = units == 4 ? true : nil
            try checkDecode("decode kernels with batches of \(units) unit\(units > 1 ? "s" : "")\(units == 4 ? ", scaled sums" : "")",
                              shapes: [nine, many])
        }
        bench.decode.batchUnits = nil
        bench.decode.sumsScaled = nil
        // Registers held down by more blocks an SM (ptxas spills where it must): 8 warps and 3
        // blocks, and on sm_90 16 warps with K split over two blocks and 2 blocks an SM.
        for (w, s, blocks) in [(8, 1, 3), (16, 2, 2)] where s == 1 || device.computeCapability.major >= 9 {
            bench.splits = s
            bench.decode.blocksPerSM = blocks
            try checkDecode("decode kernels with \(blocks) blocks an SM\(s > 1 ? ", K split \(s) ways" : "")", warps: [w],
                              shapes: [(rows: 64, columns: 1152), many])
        }
        bench.decode.blocksPerSM = nil
        bench.splits = nil
        // On Hopper, the tensor copies multicast over clusters of two row blocks (experimental):
        // 9 units (one round, the last partial) and 32 (one batch of two, or two of one asked a
        // unit ahead), 2 and 4 row blocks, 16 warps (where no buffer is refilled).
        if device.computeCapability == (9, 0) {
            bench.kinds = [.int4Sparse24]
            bench.decode.tensorActivations = true
            bench.decode.tensorMulticast = true
            for units in [nil, 1] {
                bench.decode.batchUnits = units
                bench.decode.tensorAhead = units != nil
                try checkDecode("2:4 decode kernels with multicast tensor copies\(units != nil ? ", batches of one a unit ahead" : "")",
                                warps: [16], shapes: [(rows: 64, columns: 1152), (rows: 128, columns: 4096)])
            }
            bench.decode = DecodeKernelChoices()
            bench.kinds = LinearKernel.Weights.allCases
        }
        bench.warps = nil
        bench.decode.prefetch = nil
        bench.tiledFrom = 1
        // Last, as it is not the default: the wgmma kernel as stream-K, with runs of one pair
        // (P ≤ G: every tile summed from many blocks), runs longer than a tile (2048×768 at
        // M = 2560: 160 or 320 tiles of 3 pairs over 132 or 264 blocks, so whole tiles, partial
        // ones and runs across tiles) and data-parallel rows before the tail (4224×768 at
        // M = 2560: 330 or 660 tiles, of which 132 or 264 data-parallel).
        if device.computeCapability == (9, 0) {
            bench.warpgroups = 2
            bench.kinds = [.int4Sparse24]
            bench.streamK = true
            for t in [128, 256] {
                bench.blockTokens = t
                log("gpu-check: the wgmma kernel of \(t) tokens as stream-K")
                _ = try bench.run(shapes: [(rows: 256, columns: 4096), (rows: 2048, columns: 768), (rows: 4224, columns: 768)],
                                  tokens: [1, 77, 520, 2560], log: log)
            }
        }
        log("gpu-check: all kernels match the host reference")
    }

    /// Programmatic dependent launches keep their order: a chain x → y1 → … → y4 of linears,
    /// each launch reading the one before's output, launched dependent on the stream and replayed
    /// twice from a graph, must give the plain chain's outputs bit for bit (the outputs are
    /// poisoned with NaN first, so a launch that read its input early shows), and y4 must match
    /// the host reference computed from the plain chain's y3. A square chain uses one weight; the
    /// 128 × 11008 one alternates it with an 11008 × 128 weight, so that the default 16-warp 2:4
    /// kernels of several batches (batches of one, a batch prefetched ahead, at 16 tokens the
    /// tensor copies asked a unit ahead: `LinearKernel.standard`) hand over to and from 4-warp and
    /// one-unit kernels.
    func dependentLaunches(log: (String) -> Void) throws {
        var points = 0
        var layout = MatmulBench(device: device, runs: 1, seed: seed)
        layout.metadataOrder = metadataOrder
        for (n, k) in [(1152, 1152), (4096, 4096), (128, 11008)] {
            var rng = SplitMix64(seed: seed &+ 99)
            // weights[i % 2] takes launch i: n × k, then k × n (the same weight where square).
            func weights(sparse24: Bool) throws -> [PackedINT4Weight] {
                let a = try PackedINT4Weight.random(rows: n, columns: k, group: 128, sparse24: sparse24, using: &rng)
                return n == k ? [a, a] : [a, try PackedINT4Weight.random(rows: k, columns: n, group: 128, sparse24: sparse24, using: &rng)]
            }
            let dense = try weights(sparse24: false), sparse = try weights(sparse24: true)
            let maxTokens = 24, width = max(n, k)
            let xBits = (0..<(maxTokens * k)).map { _ in Float16(Float.random(in: -1...1, using: &rng)).bitPattern }
            let x = try device.buffer(xBits)
            let ys = try (0..<4).map { _ in try device.allocate(maxTokens * width * 2) }
            defer { device.free(x); ys.forEach(device.free) }
            // Each kind, plain and with the (experimental) L2 prefetch, which once let ptxas move
            // `.nc` activation loads above the grid-dependency wait (session 17), and with 4-warp
            // blocks built for dependent launches too (experimental, `dependentAnyWarps`; the 2:4
            // ones load their first batch's weights weakly, above the wait, by default), and with
            // 16-warp blocks loading them so (experimental, `weakWeightLoads`); on Hopper, for 2:4 at
            // 4096, the decode-shaped wgmma kernel (experimental, `WarpgroupDecodeKernel`), also
            // letting the next launch start only once its first activations are in (`trigger`); and, on
            // Hopper, the staged 2:4 kernel's activations by the tensor copy engine
            // (`tensorActivations`, sm_90a; by default only where a warp has several batches of one
            // unit, and then asked a unit ahead), with 16-warp and 4-warp blocks, and multicast over
            // clusters of two row blocks (experimental, 16 warps). The 128 × 11008 chain runs the
            // defaults alone.
            let hopper = device.computeCapability == (9, 0), wgmma = hopper && n == 4096
            let variants: [(prefetch: Bool?, anyWarps: Bool, weak: Bool?, wgmma: Bool, late: Bool, tensor: Bool?, multicast: Bool)] = n != k
                ? [(nil, false, nil, false, false, nil, false)]
                : [(false, false, nil, false, false, false, false), (true, false, nil, false, false, false, false),
                   (false, true, nil, false, false, false, false), (false, false, true, false, false, false, false)]
                  + (hopper ? [(false, false, nil, false, false, true, false), (false, true, nil, false, false, true, false),
                               (false, false, nil, false, false, true, true)] : [])
                  + (wgmma ? [(false, false, nil, true, false, false, false), (false, false, nil, true, true, false, false)] : [])
            for kind in LinearKernel.Weights.allCases { for (prefetch, anyWarps, weak, wgmma, late, tensor, multicast) in variants where !(wgmma || tensor == true) || kind == .int4Sparse24 {
                let w = kind == .int4Sparse24 ? sparse : dense
                let links = try (0..<(n == k ? 1 : 2)).map { i -> Variant in
                    let arrays = try layout.prepare(kind, dense: dense[i], sparse: sparse[i], xBits: xBits, tokens: []).0
                    return try Variant(device: device, kind: kind, rows: w[i].rows, columns: w[i].columns, warps: anyWarps ? 4 : nil, rowTiles: nil,
                                       tiledFrom: wgmma ? 1 : Int.max, warpgroups: nil, blockTokens: nil,
                                       wgmmaDecode: wgmma ? WarpgroupDecodeKernel.Choices(trigger: late ? .landed : .first) : nil, dependentLaunch: true,
                                       decode: DecodeKernelChoices(prefetch: prefetch, dependentAnyWarps: anyWarps, weakWeightLoads: weak,
                                                                   tensorActivations: tensor, tensorMulticast: multicast),
                                       arrays: arrays, rotateBytes: 0)
                }
                defer { links.forEach { $0.free() } }
                let label = links.map(\.label).joined(separator: " / ")
                for m in [1, 5, 16, 24] {
                    func chain(dependent: Bool) throws {
                        for y in ys { try device.fill(y, byte: 0xFF, bytes: m * width * 2) }
                        for (i, y) in ys.enumerated() {
                            try links[i % links.count].launch(m: m, copy: 0, x: i == 0 ? x : ys[i - 1], y: y, dependent: dependent)
                        }
                    }
                    func outputs() throws -> [[UInt16]] {
                        try ys.enumerated().map { i, y in try device.download(y, count: m * w[i % 2].rows, as: UInt16.self) }
                    }
                    try chain(dependent: false)
                    let plain = try outputs()
                    try chain(dependent: true)
                    let streamed = try outputs()
                    let graph = try device.captureGraph { try chain(dependent: true) }
                    try graph.launch()
                    try graph.launch()
                    let graphed = try outputs()
                    for (how, got) in [("stream", streamed), ("graph", graphed)] where got != plain {
                        let step = got.indices.first { got[$0] != plain[$0] }!
                        throw BenchFailure("gpu-check: \(label) M=\(m): dependent launches on the \(how) differ from plain ones at y\(step + 1)")
                    }
                    if let bad = plain[3].firstIndex(where: { Float16(bitPattern: $0).isNaN }) {
                        throw BenchFailure("gpu-check: \(label) M=\(m): y4[\(bad)] was not written or is NaN")
                    }
                    let tokens = [0, m - 1], last = w[1]
                    let reference = last.referenceLinear(x: plain[2], tokens: tokens)
                    var maxErr = 0.0, maxRef = 0.0
                    for (i, token) in tokens.enumerated() {
                        for r in 0..<last.rows {
                            maxErr = max(maxErr, abs(Double(Float(Float16(bitPattern: plain[3][token * last.rows + r]))) - reference[i][r]))
                            maxRef = max(maxRef, abs(reference[i][r]))
                        }
                    }
                    guard maxErr / max(maxRef, 1e-30) <= 1e-2 else {
                        throw BenchFailure("gpu-check: \(label) M=\(m): y4 is \(maxErr / maxRef) off the host reference")
                    }
                    points += 1
                }
            } }
        }
        log("gpu-check: dependent launches (a 4-launch chain on the stream and in a graph) match plain launches bit for bit; \(points) points")
    }

    /// Every synthetic-weight generator against the host's layout of the host's weights (the same
    /// SyntheticWeights functions): a 48 × 320 weight (padded to 384 columns) and a 16 × 128 one.
    func syntheticWeights(log: (String) -> Void) throws {
        let module = try device.loadModule(ptx: PTXModule.text(entries: SyntheticWeightKernels.allEntries), label: "synthetic weights")
        for (rows, columns) in [(48, 320), (16, 128)] {
            let padded = (columns + 127) / 128 * 128
            let keys = SyntheticWeights.keys(seed: seed, name: "check.\(rows)x\(columns)")
            let dense = try SyntheticWeights.packed(keys, rows: rows, columns: columns, sparse24: false, paddedColumns: padded)
            let sparse = try SyntheticWeights.packed(keys, rows: rows, columns: columns, sparse24: true, paddedColumns: padded)
            let e = SyntheticWeights.denseExponent(columns: columns), p = SyntheticWeights.scaleExponent(columns: columns)
            let f16 = SyntheticWeights.dense(keys, rows: rows, columns: columns, exponent: e, paddedColumns: padded).map { Float16($0).bitPattern }
            let table = SyntheticWeights.dense(keys, rows: rows, columns: columns, exponent: 0).map(\.bitPattern)
            let expected: [(SyntheticWeightKernels.Kind, [UInt32], Int)] = [
                (.f32Table, table, 0), (.fp16Layout, try KernelWeightLayout.fp16(f16, rows: rows, columns: padded), e),
                (.int4Layout, try KernelWeightLayout.int4Dense(dense), 0), (.scales, try KernelWeightLayout.scales(dense), p),
                (.sparseValues, try KernelWeightLayout.int4Sparse24Values(sparse), 0),
                (.sparseMetadata, try KernelWeightLayout.int4Sparse24Metadata(sparse), 0),
            ]
            for (kind, want, exponent) in expected {
                let words = SyntheticWeightKernels.words(kind, rows: rows, paddedColumns: kind == .f32Table ? columns : padded)
                guard words == want.count else { throw BenchFailure("synthetic \(kind): \(words) words, the host layout has \(want.count)") }
                let out = try device.allocate(4 * words)
                defer { device.free(out) }
                try device.fill(out, byte: 0xFF, bytes: 4 * words)
                try device.launch(try module.function(SyntheticWeightKernels.entry(kind)), grid: ((words + 255) / 256, 1, 1), block: (256, 1, 1),
                                  arguments: [.pointer(out), .u32(UInt32(words)), .u32(UInt32(rows)), .u32(UInt32(columns)), .u32(UInt32(padded)),
                                              .u32(keys.values), .u32(keys.pairs), .u32(keys.scales), .u32(UInt32(exponent))])
                let got = try device.download(out, count: words, as: UInt32.self)
                if let bad = got.indices.first(where: { got[$0] != want[$0] }) {
                    throw BenchFailure("synthetic \(kind) \(rows)x\(columns): word \(bad) is \(String(got[bad], radix: 16)), the host's \(String(want[bad], radix: 16))")
                }
            }
        }
        log("gpu-check: the synthetic-weight generators match the host's weights in the kernels' layouts (6 kinds, 2 shapes)")
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
