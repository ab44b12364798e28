import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#endif
import Foundation
import NMFrontend
import NMIR
import NMRuntime
import NMTargetPTX

/// Runs a compiled NMC artifact, and measures the PTX kernels on a GPU. It links no LLVM so a
/// static build can be copied to a GPU machine.
@main
struct NMCRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nmc-run",
        abstract: "Run a compiled NMC artifact directory, or check and time the PTX kernels on a GPU.",
        discussion: """
            `nmc-run DIR --prompt TEXT` generates text (greedy) with a `nmc compile --target cpu` \
            artifact, loading DIR/model.so with dlopen (no LLVM needed). For a `nmc compile \
            --target ptx` artifact (DIR/plan.json, DIR/model.ptx), `nmc-run DIR` runs the decode \
            step on the GPU as one CUDA graph: greedy tokens from --tokens, --check against the \
            CPU reference in DIR, --bench-step to time the step.

            On a machine with an NVIDIA GPU and its driver (libcuda.so.1), --gpu-check checks the \
            CUDA runtime and every linear kernel against the host reference, --bench-matmul checks \
            and times NMC's FP16, dense INT4 and 2:4 INT4 linear kernels, and --bench-decode times \
            the linear layers of a LLaMA-7B decode step; tools/bench_matmul.py runs them beside \
            PyTorch (docs/performance-gpu.md).
            """)

    @Argument(help: "The artifact directory written by `nmc compile`.")
    var artifact: String?

    @Option(help: "DIR: the prompt to continue.") var prompt: String?
    @Option(name: .short, help: "DIR: tokens to generate.") var n: Int = 64
    @Option(help: "DIR: CPU threads (default: all cores).") var threads: Int = 0
    @Flag(help: "Check the CUDA runtime and the linear kernels on the GPU.") var gpuCheck = false
    @Flag(help: "Check and time the linear kernels on the GPU.") var benchMatmul = false
    @Flag(help: "Time the linear layers of a LLaMA-7B decode step (synthetic weights, one CUDA graph).") var benchDecode = false
    @Option(help: "Weight shapes ROWSxCOLUMNS (out x in), comma-separated.") var shapes = "4096x4096,11008x4096,4096x11008"
    @Option(help: "Token counts M, comma-separated.") var tokens = "1,16,128,512,4096"
    @Option(help: "Timed runs per point (the median is reported).") var runs = 50
    @Option(help: "Seed of the random weights and activations.") var seed: UInt64 = 1
    @Option(help: "Write the measured points as JSON to this file.") var json: String?
    @Option(help: ArgumentHelp("Which lanes carry the 2:4 metadata (a check of the PTX ISA's figure).", visibility: .hidden))
    var metadataOrder = "rowsInHalves"
    @Option(help: "Kernels to check and time: fp16, int4, int4Sparse24 (comma-separated).") var kernels = "fp16,int4,int4Sparse24"
    @Option(help: "Megabytes of weight copies to rotate through (0: one copy, read from L2 when it fits).") var rotateMb = 512
    @Option(help: "The smallest M that runs the tiled (prefill) linear kernel.") var tiledFrom = 128
    @Option(help: "Warps per block of the linear kernels (default: LinearKernel.standard's).") var warps: Int?
    @Option(help: "Row tiles of 16 per block of the linear kernels (default: LinearKernel.standard's).") var rowTiles: Int?
    @Option(help: "Blocks (a cluster, sm_90) splitting K of the decode linear kernels (default: LinearKernel.standard's).") var splits: Int?
    @Option(help: "Blocks splitting K of the prefill kernel (default: by M and the shape; two splits of the Hopper 2:4 kernel reduce in a cluster).") var prefillSplits: Int?
    @Option(help: "Warpgroups a block of the Hopper (sm_90a, wgmma) 2:4 prefill kernel: 2 or 4 (default 2); 0 runs the mma.sync tiled kernel instead.") var warpgroups: Int?
    @Option(help: "Tokens a block of the Hopper 2:4 prefill kernel: 64, 128, 192 or 256 (default: picked by M and the shape, WarpgroupLinearKernel.standardBlockTokens); 16 or 32 only when asked for (with --tiled-from 16: that kernel at decode M, experimental).") var blockTokens: Int?
    @Option(help: "Row tiles of 64 a warpgroup of the Hopper 2:4 prefill kernel: 1 or 2 (2: blocks of 256 rows from two warpgroups of at most 128 tokens, one block an SM; experimental, default 1).") var wgmmaRowTiles = 1
    @Flag(help: "With --tiled-from 16 or less: the Hopper 2:4 prefill kernel is the decode-shaped wgmma kernel (16 tokens a block; --warpgroups 2 or 4 cut K within a block, default 4; --prefill-splits 1, 2 or 4 blocks of a cluster cut it between them, default by rows; experimental; measured slower than the decode kernels in session 25, level with them at 4096² with --wgmma-decode-trigger landed in session 26).") var wgmmaDecode = false
    @Option(help: "With --wgmma-decode: units of a warpgroup whose activations come on one mbarrier, so that the first units' wgmmas start before the last ones' activations are in (experimental; default all, one wait).") var wgmmaDecodeUnitsPerWait: Int?
    @Flag(help: "With --wgmma-decode: one block of it an SM at a time, by asking for 116 KB of shared memory (a measuring aid).") var wgmmaDecodeOneBlock = false
    @Option(help: "With --wgmma-decode launched dependently: where a block lets the next kernel start: first (first thing), issued (once it has asked for its activations), landed (once the first are in) or computed (after its last wgmma); experimental.") var wgmmaDecodeTrigger: WarpgroupDecodeKernel.Trigger = .first
    @Flag(help: "With --wgmma-decode: before the grid-dependency wait only prefetch the weights into L2, and load them after it (experimental).") var wgmmaDecodePrefetchWeights = false
    @Flag(help: "Run the Hopper 2:4 prefill kernel as stream-K (whole waves of tiles as a plain grid, the last one to two waves cut into equal runs over the SMs, partial tiles summed through a workspace; experimental, not the default).") var streamK = false
    @Flag(inversion: .prefixedNo, help: "Build the decode linear kernels for programmatic dependent launches (sm_90: weight loads start before the kernel ahead ends) and also time them in a graph of dependent launches; --no-dependent-launch builds plain sm_80 ones.")
    var dependentLaunch = true
    @Flag(inversion: .prefixedNo, help: "Build the decode linear kernels with (or without) an L2 prefetch of each block's weights before its first load (not with --splits; default: LinearKernel.standard's, on for 2:4 kernels launched dependently whose warps load all their units in one batch).")
    var decodePrefetch: Bool?
    @Option(help: "Each warp of the decode linear kernels asks the L2 for its units N batches ahead of those it loads (0 to 3; default: LinearKernel.standard's, 1 for 2:4 kernels launched dependently whose warps load their units in several batches, one token tile or 16 warps, else 0).") var decodePrefetchAhead: Int?
    @Flag(inversion: .prefixedNo, help: "Scale the f32 sums of each unit of the INT4 decode linear kernels instead of the f16 weights, with one accumulator set (or scale the weights); default: sums where a warp's units load in one batch (experimental).")
    var decodeScaleSums: Bool?
    @Option(help: "Units each warp of the decode linear kernels loads before it computes them (1 to 8; default: 1 for 16-warp 2:4 kernels launched dependently whose warps have more rounds of units than their batch would otherwise hold, as at 4096x11008; else 2 for the FP16 and 2:4 16-token kernels and 4 for the rest).") var decodeBatch: Int?
    @Flag(help: "With --dependent-launch, build every decode linear kernel for dependent launches, not only those of 16-warp blocks and the 4-warp 2:4 kernel for 9 to 16 tokens (experimental).") var decodeDependentAnyWarps = false
    @Option(help: "Blocks of the decode linear kernels an SM must hold at once (.minnctapersm; ptxas keeps registers within it, spilling if it must; default: 2 for 16-warp one-token-tile kernels launched dependently, 3 for the 4-warp 2:4 kernel for 9 to 16 tokens launched dependently, else 1; experimental).") var decodeMinBlocks: Int?
    @Flag(inversion: .prefixedNo, help: "With --dependent-launch, load the weights each warp of the decode linear kernels loads before waiting for the kernel ahead with weak loads (ld.global, not .nc), which ptxas keeps above the wait, or not (default: only in the 4-warp 2:4 kernel for 9 to 16 tokens; experimental).")
    var decodeWeakWeightLoads: Bool?
    @Flag(inversion: .prefixedNo, help: "Bring the activations of the 2:4 decode linear kernel for 9 to 16 tokens into shared memory by the bulk tensor copy engine (cp.async.bulk.tensor, two 2-D boxes a unit, sm_90a), instead of 16-byte loads into registers and stores from them, or not (default: LinearKernel.standard's, on for its 16-warp kernels launched dependently whose warps load their units in several batches of one unit, as at 4096x11008).")
    var decodeTensorActivations: Bool?
    @Flag(inversion: .prefixedNo, help: "With the tensor copies (--decode-tensor-activations or their default), ask for each batch's copies a batch ahead, into a second set of buffers, so that they overlap the batch before's arithmetic, or not (default: LinearKernel.standard's, on where the tensor copies are on by default, as at 4096x11008).")
    var decodeTensorAhead: Bool?
    @Flag(help: "With the tensor copies (--decode-tensor-activations or their default), launch the 2:4 decode linear kernel for 9 to 16 tokens as clusters of two row blocks that share each unit's copies: each block asks for one of its two boxes into both blocks' shared memory (.multicast::cluster), so that the L2 serves each once a pair; only where no buffer is refilled, as at 4096x4096 (experimental).")
    var decodeTensorMulticast = false
    @Option(help: "PTX DIR: token ids to start from, comma-separated.") var startTokens = "1"
    @Flag(help: "PTX DIR: compare with the CPU reference in DIR (reference.json).") var check = false
    @Flag(help: "PTX DIR: time the decode step's CUDA graph (median of --runs replays).") var benchStep = false
    @Option(help: "PTX DIR: the position the timed steps run at.") var position = 128
    @Flag(help: "PTX DIR, with --bench-step: also time each launch alone and sum by kernel.") var profile = false
    @Option(help: ArgumentHelp("--bench-matmul, a measuring aid: load each kernel whose DIR/ENTRY.ptx exists from that file (an edited copy of its .entry, as --emit-ptx writes it) instead of generating it; its results are reported, not checked.", valueName: "DIR"))
    var replacePtx: String?
    @Option(help: "Write the PTX of the linear kernels for --shapes into this directory (no GPU needed).") var emitPtx: String?

    func validate() throws {
        if streamK && warpgroups == 0 { throw ValidationError("--stream-k is a mode of the wgmma kernel; --warpgroups 0 asks for the mma.sync one") }
        if streamK && prefillSplits != nil { throw ValidationError("--stream-k splits K by itself; drop --prefill-splits") }
        if let n = wgmmaDecodeUnitsPerWait {
            if !wgmmaDecode { throw ValidationError("--wgmma-decode-units-per-wait is a mode of --wgmma-decode") }
            if n < 1 { throw ValidationError("--wgmma-decode-units-per-wait must be 1 or more") }
        }
        if wgmmaDecodeTrigger != .first && !dependentLaunch {
            throw ValidationError("--wgmma-decode-trigger places the dependent launch's trigger: it needs dependent launches (not --no-dependent-launch)")
        }
        if (wgmmaDecodeOneBlock || wgmmaDecodePrefetchWeights || wgmmaDecodeTrigger != .first) && !wgmmaDecode {
            throw ValidationError("--wgmma-decode-one-block, --wgmma-decode-prefetch-weights and --wgmma-decode-trigger are modes of --wgmma-decode")
        }
        if wgmmaDecode && (streamK || wgmmaRowTiles != 1 || blockTokens != nil || warpgroups == 0) {
            throw ValidationError("--wgmma-decode takes 16 tokens a block and one row tile a warpgroup, without --stream-k, --wgmma-row-tiles, --block-tokens or --warpgroups 0")
        }
        if ![1, 2].contains(wgmmaRowTiles) { throw ValidationError("--wgmma-row-tiles \(wgmmaRowTiles): 1 or 2") }
        if wgmmaRowTiles == 2 && (streamK || ![nil, 2].contains(warpgroups) || (blockTokens ?? 0) > 128) {
            throw ValidationError("--wgmma-row-tiles 2 takes two warpgroups (--warpgroups 2) of at most 128 tokens (--block-tokens 64 or 128), without --stream-k")
        }
        if let n = decodeBatch, !(1...8).contains(n) { throw ValidationError("--decode-batch \(n): 1 to 8 units") }
        if let n = decodeMinBlocks, !(1...16).contains(n) { throw ValidationError("--decode-min-blocks \(n): 1 to 16 blocks (and at most 2048 threads an SM)") }
        if let n = decodePrefetchAhead, !(0...3).contains(n) { throw ValidationError("--decode-prefetch-ahead \(n): 0 to 3 batches") }
        if decodePrefetch == true && (splits ?? 1) > 1 { throw ValidationError("--decode-prefetch takes no split K (--splits 1)") }
        if let dir = replacePtx {
            guard benchMatmul else { throw ValidationError("--replace-ptx takes --bench-matmul") }
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ValidationError("--replace-ptx \(dir): no such directory")
            }
        }
        // A combination the wgmma kernel does not take would quietly run the mma.sync kernel instead.
        let groups = warpgroups ?? 2
        let tiles = blockTokens.map { [$0] } ?? WarpgroupLinearKernel.tokenTiles
        if groups > 0 && !tiles.contains(where: {
            WarpgroupLinearKernel.supports(rows: 512, columns: 256, warpgroups: groups, blockTokens: $0, rowTiles: wgmmaRowTiles)
        }) {
            throw ValidationError("the Hopper 2:4 prefill kernel takes no \(groups) warpgroups of \(wgmmaRowTiles) row tile\(wgmmaRowTiles > 1 ? "s" : "") a warpgroup and \(blockTokens.map { "\($0) tokens" } ?? "any token tile")")
        }
    }

    func run() throws {
        do {
            if let dir = emitPtx { return try emit(into: dir) }
            if gpuCheck || benchMatmul || benchDecode { return try runOnGPU() }
        } catch let e as CUDAUnavailable {
            fail("\(e)")
        } catch let e as CustomStringConvertible where e is CUDAError || e is PTXError || e is BenchFailure || e is Safetensors.FormatError {
            fail(e.description)
        }
        if let artifact, FileManager.default.fileExists(atPath: artifact + "/plan.json") {
            do { return try runPTX(artifact) } catch {
                fail("\(error)")
            }
        }
        if let artifact, FileManager.default.fileExists(atPath: artifact + "/" + CPUSharedLibrary.libraryName) {
            guard let prompt else { fail("give --prompt TEXT to generate with \(artifact)") }
            do { return try ArtifactRun.generate(directory: artifact, prompt: prompt, count: n, threads: threads) } catch {
                fail("\(error)")
            }
        }
        fail("\(artifact ?? "no artifact"): give a folder written by `nmc compile --target cpu` (model.so) or `--target ptx` (plan.json)")
    }

    private func runPTX(_ dir: String) throws {
        let device = try CUDADevice()
        let log: (String) -> Void = { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) }
        log("device: \(device.summary)")
        let step = try PTXDecodeStep(directory: dir, device: device, log: log)
        var failed = false
        if check { failed = try !PTXArtifactRun.check(step: step, directory: dir, log: log) }
        if benchStep {
            guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
            // The weights are there and finite: one step's logits, before timing.
            let logits = try step.step(token: 1, position: 0)
            guard logits.allSatisfy(\.isFinite), logits.contains(where: { $0 != 0 }) else {
                throw BenchFailure("the step's logits are not finite or all zero")
            }
            log(String(format: "step at position 0: logits finite, max |logit| %.3g", Double(logits.map { abs($0) }.max() ?? 0)))
            let us = try step.time(runs: runs, position: position)
            if profile { try step.profile(runs: 5, position: position, log: log) }
            log(String(format: "decode step: %.1f us per token (median of %d CUDA graph replays at position %d; %d launches)",
                       us, runs, position, step.plan.launches.count))
            if let path = json {
                try write([MatmulPoint(shape: "decode-step", rows: step.plan.layers, columns: step.plan.hidden, tokens: 1,
                                       impl: "nmc-" + step.plan.linearKinds.joined(separator: "+")
                                           + (step.plan.launches.contains { $0.dependent == true } ? " (sm_90, dependent launches)" : ""),
                                       medianMicroseconds: us, runs: runs,
                                       copies: 1, weightBytes: 0, maxRelativeError: 0)], to: path)
            }
        }
        if !check && !benchStep, let prompt {
            try PTXArtifactRun.generateText(step: step, directory: dir, prompt: prompt, count: n)
        } else if !check && !benchStep {
            let prompt = try startTokens.split(separator: ",").map { s -> Int in
                guard let t = Int(s) else { throw ValidationError("--start-tokens: '\(s)' is not a token id") }
                return t
            }
            let tokens = try PTXArtifactRun.generate(step: step, prompt: prompt, count: n, log: log)
            print(tokens.map(String.init).joined(separator: " "))
        }
        if failed { fail("the GPU does not match the CPU reference") }
    }

    private func fail(_ message: String, code: Int32 = 1) -> Never {
        FileHandle.standardError.write(Data("nmc-run: \(message)\n".utf8))
        Foundation.exit(code)
    }

    private func parsedShapes() throws -> [(rows: Int, columns: Int)] {
        try shapes.split(separator: ",").map { item in
            let dims = item.split(separator: "x").compactMap { Int($0) }
            guard dims.count == 2, dims.allSatisfy({ $0 > 0 }) else {
                throw ValidationError("--shapes: '\(item)' is not ROWSxCOLUMNS")
            }
            return (dims[0], dims[1])
        }
    }

    private func parsedTokens() throws -> [Int] {
        try tokens.split(separator: ",").map {
            guard let m = Int($0), m > 0 else { throw ValidationError("--tokens: '\($0)' is not a positive integer") }
            return m
        }
    }

    /// `--wgmma-decode`'s kernel choices, nil without it.
    private var wgmmaDecodeChoices: WarpgroupDecodeKernel.Choices? {
        wgmmaDecode ? WarpgroupDecodeKernel.Choices(unitsPerWait: wgmmaDecodeUnitsPerWait, oneBlockPerSM: wgmmaDecodeOneBlock,
                                                    prefetchWeights: wgmmaDecodePrefetchWeights, trigger: wgmmaDecodeTrigger) : nil
    }

    private var decodeChoices: DecodeKernelChoices {
        DecodeKernelChoices(prefetch: decodePrefetch, prefetchAhead: decodePrefetchAhead, sumsScaled: decodeScaleSums, batchUnits: decodeBatch,
                            blocksPerSM: decodeMinBlocks, dependentAnyWarps: decodeDependentAnyWarps, weakWeightLoads: decodeWeakWeightLoads,
                            tensorActivations: decodeTensorActivations, tensorAhead: decodeTensorAhead,
                            tensorMulticast: decodeTensorMulticast)
    }

    private func emit(into dir: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for shape in try parsedShapes() {
            for kind in LinearKernel.Weights.allCases {
                let kernels = try decodeChoices.kernels(kind: kind, rows: shape.rows, columns: shape.columns, warps: warps, rowTiles: rowTiles,
                                                        splits: splits, clusters: true, dependentLaunch: dependentLaunch)
                let tiled = try prefillKernels(kind: kind, rows: shape.rows, columns: shape.columns, warpgroups: warpgroups, blockTokens: blockTokens,
                                               rowTiles: wgmmaRowTiles, streamK: streamK, wgmmaDecode: wgmmaDecodeChoices, splits: prefillSplits, dependentLaunch: dependentLaunch, hopper: true)
                let path = "\(dir)/linear_\(kind.rawValue)_\(shape.rows)x\(shape.columns).ptx"
                let target = moduleTarget(kernels.map(\.target) + tiled.map(\.target))
                try AtomicFile.write(PTXModule.text(entries: kernels.map { $0.ptx() } + tiled.map { $0.ptx() }, target: target), to: path)
                print(path)
            }
        }
    }

    private func runOnGPU() throws {
        let device = try CUDADevice()
        FileHandle.standardOutput.write(Data("device: \(device.summary)\n".utf8))
        let log: (String) -> Void = { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) }
        guard let order = KernelWeightLayout.MetadataOrder(rawValue: metadataOrder) else {
            throw ValidationError("--metadata-order: rowsInHalves or rowPerLane")
        }
        if gpuCheck { try GPUCheck(device: device, seed: seed, metadataOrder: order).run(log: log) }
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        if benchDecode {
            var points: [MatmulPoint] = []
            for kind in try parsedKernels() {
                let us = try DecodeBench(device: device, runs: runs, seed: seed).run(kind: kind, log: log)
                points.append(MatmulPoint(shape: "llama-7b-decode-linears", rows: 0, columns: 0, tokens: 1, impl: "nmc-\(kind.rawValue)",
                                          medianMicroseconds: us, runs: runs, copies: 1, weightBytes: 0, maxRelativeError: 0))
            }
            if let path = json { try write(points, to: path) }
        }
        guard benchMatmul else { return }
        var bench = MatmulBench(device: device, runs: runs, seed: seed)
        bench.metadataOrder = order
        bench.warps = warps
        bench.rowTiles = rowTiles
        bench.splits = splits
        bench.prefillSplits = prefillSplits
        bench.rotateBytes = rotateMb << 20
        bench.tiledFrom = tiledFrom
        bench.warpgroups = warpgroups
        bench.blockTokens = blockTokens
        bench.streamK = streamK
        bench.wgmmaRowTiles = wgmmaRowTiles
        bench.wgmmaDecode = wgmmaDecodeChoices
        bench.kinds = try parsedKernels()
        bench.dependentLaunch = dependentLaunch
        bench.decode = decodeChoices
        bench.replacementDirectory = replacePtx
        let points = try bench.run(shapes: try parsedShapes(), tokens: try parsedTokens(), log: log)
        if let path = json { try write(points, to: path) }
    }

    private func write(_ points: [MatmulPoint], to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(points), to: path)
    }

    private func parsedKernels() throws -> [LinearKernel.Weights] {
        try kernels.split(separator: ",").map {
            guard let k = LinearKernel.Weights(rawValue: String($0)) else { throw ValidationError("--kernels: unknown kernel '\($0)'") }
            return k
        }
    }
}

extension WarpgroupDecodeKernel.Trigger: ExpressibleByArgument {}
