#if canImport(FoundationEssentials)
import FoundationEssentials
#endif
import Foundation
import NMFrontend
import NMRuntime
import NMTargetPTX

/// `nmc-run DIR` for a `nmc compile --target ptx` artifact: loads `model.ptx` and `plan.json`,
/// allocates the step's buffers, fills the weights (from `weights.bin`, or on the GPU from the
/// seed with SyntheticWeightKernels), captures the decode step as one CUDA graph and replays it
/// once per token, the token and position written to the device `state` buffer before each.
final class PTXDecodeStep {
    let device: CUDADevice
    let plan: DecodePlan
    let pointers: [CUDevicePointer]
    let graph: CUDAGraph
    let modules: [CUDAModule]
    let fillSeconds: Double
    /// The step's launches, as captured into `graph`.
    let calls: [(function: CUDAFunction, grid: (Int, Int, Int), block: (Int, Int, Int), arguments: [CUDAKernelArgument], dependent: Bool)]

    init(directory: String, device: CUDADevice, log: (String) -> Void) throws {
        self.device = device
        guard let planData = FileManager.default.contents(atPath: directory + "/plan.json"),
              let ptxData = FileManager.default.contents(atPath: directory + "/model.ptx") else {
            throw BenchFailure("\(directory) has no plan.json and model.ptx (write it with `nmc compile MODEL --target ptx -o DIR`)")
        }
        plan = try JSONDecoder().decode(DecodePlan.self, from: planData)
        guard plan.format == "nmc-ptx-decode-plan", plan.version == 1 else { throw BenchFailure("plan.json: unknown format \(plan.format) v\(plan.version)") }
        if plan.launches.contains(where: { $0.dependent == true }) && !device.supportsDependentLaunch {
            throw BenchFailure("\(directory) was compiled with --gpu sm_90 (dependent launches); this GPU is \(device.summary): compile it with --gpu sm_80")
        }
        let model = try device.loadModule(ptx: String(decoding: ptxData, as: UTF8.self), label: "model.ptx")
        let generators = try device.loadModule(ptx: PTXModule.text(entries: SyntheticWeightKernels.allEntries), label: "synthetic weights")
        modules = [model, generators]
        var functions: [String: CUDAFunction] = [:]
        for l in plan.launches where functions[l.kernel] == nil { functions[l.kernel] = try model.function(l.kernel) }
        var ptrs: [CUDevicePointer] = []
        var total = 0
        do {
            for b in plan.buffers {
                let p = try device.allocate(b.bytes)
                ptrs.append(p)
                try device.fill(p, byte: 0, bytes: b.bytes)
                total += b.bytes
            }
        } catch {
            ptrs.forEach(device.free)
            throw error
        }
        pointers = ptrs
        log("plan: \(plan.buffers.count) buffers (\(total >> 20) MiB), \(plan.launches.count) launches, \(functions.count) kernels, linear kinds \(plan.linearKinds.joined(separator: ","))")
        let started = Date()
        let weightsFile = plan.weightBytes > 0 ? try MappedWeights(path: directory + "/weights.bin", bytes: plan.weightBytes) : nil
        for f in plan.fills {
            let dst = ptrs[f.buffer] + UInt64(f.offset)
            switch f.source {
            case .file:
                guard let weightsFile, let at = f.fileOffset else { throw BenchFailure("plan.json: a file fill without weights.bin") }
                try weightsFile.upload(offset: at, bytes: f.bytes, to: dst, device: device)
            case .onesF32:
                try device.upload([Float](repeating: 1, count: f.bytes / 4), to: dst)
            case .ropeTable:
                try device.upload(DecodeStepKernels.ropeTable(theta: f.theta ?? 10000, headDim: f.headDim ?? 0, capacity: plan.capacity), to: dst)
            case .synthetic:
                guard let kind = f.generator, let rows = f.rows, let columns = f.columns, let padded = f.padded, let keys = f.keys else {
                    throw BenchFailure("plan.json: a synthetic fill without its generator")
                }
                let words = f.bytes / 4
                let fn = try generators.function(SyntheticWeightKernels.entry(kind))
                try device.launch(fn, grid: ((words + 255) / 256, 1, 1), block: (256, 1, 1),
                                  arguments: [.pointer(dst), .u32(UInt32(words)), .u32(UInt32(rows)), .u32(UInt32(columns)), .u32(UInt32(padded)),
                                              .u32(keys.values), .u32(keys.pairs), .u32(keys.scales), .u32(UInt32(f.exponent ?? 0))])
            }
        }
        try device.synchronize()
        fillSeconds = Date().timeIntervalSince(started)
        log("weights filled in \(String(format: "%.2f", fillSeconds)) s (\(plan.syntheticSeed.map { "synthetic, seed \($0), on the GPU" } ?? "weights.bin"))")
        let calls = plan.launches.map { l in
            let args: [CUDAKernelArgument] = l.arguments.map { a in
                if let b = a.buffer { return .pointer(ptrs[b] + UInt64(a.offset ?? 0)) }
                if let v = a.u32 { return .u32(v) }
                if let v = a.f32 { return .u32(v.bitPattern) }
                return .u64(0)
            }
            return (functions[l.kernel]!, (l.grid[0], l.grid[1], l.grid[2]), (l.block[0], l.block[1], l.block[2]), args, l.dependent ?? false)
        }
        self.calls = calls
        graph = try device.captureGraph {
            for c in calls { try device.launch(c.0, grid: c.1, block: c.2, arguments: c.3, dependent: c.4) }
        }
    }

    /// Each launch timed alone (events around it, outside the graph), summed by kernel family
    /// over the step: where a step's time goes. Median of `runs` per launch.
    func profile(runs: Int, position: Int, log: (String) -> Void) throws {
        try device.upload([UInt32(1), UInt32(position)], to: pointers[plan.state])
        var events: [(CUHandle?, CUHandle?)] = []
        for _ in calls { events.append((try device.makeEvent(), try device.makeEvent())) }
        defer { for e in events { device.destroyEvent(e.0); device.destroyEvent(e.1) } }
        var samples = [[Double]](repeating: [], count: calls.count)
        for _ in 0..<runs {
            for (i, c) in calls.enumerated() {
                try device.record(events[i].0)
                try device.launch(c.function, grid: c.grid, block: c.block, arguments: c.arguments)
                try device.record(events[i].1)
            }
            for i in calls.indices { samples[i].append(try device.elapsedMilliseconds(from: events[i].0, to: events[i].1) * 1000) }
        }
        var byFamily: [String: (count: Int, us: Double)] = [:]
        for (i, c) in calls.enumerated() {
            let family = c.function.name.split(separator: "_").prefix { !$0.contains(where: \.isNumber) }.joined(separator: "_")
            let median = samples[i].sorted()[runs / 2]
            byFamily[family, default: (0, 0)].count += 1
            byFamily[family, default: (0, 0)].us += median
        }
        for (family, v) in byFamily.sorted(by: { $0.value.us > $1.value.us }) {
            log(String(format: "  %-28@ %4d launches  %9.1f us (alone, events around each)", family, v.count, v.us))
        }
    }

    deinit { pointers.forEach(device.free) }

    /// Runs one step: `token` at `position`; returns the logits.
    func step(token: Int, position: Int) throws -> [Float] {
        try enqueue(token: token, position: position)
        let bits = try device.download(pointers[plan.logits], count: plan.vocab, as: UInt16.self)
        return bits.map { Float(Float16(bitPattern: $0)) }
    }

    func enqueue(token: Int, position: Int) throws {
        guard (0..<plan.vocab).contains(token), (0..<plan.capacity).contains(position) else {
            throw BenchFailure("token \(token) at position \(position): outside the vocabulary (\(plan.vocab)) or the context (\(plan.capacity))")
        }
        try device.synchronize()
        try device.upload([UInt32(token), UInt32(position)], to: pointers[plan.state])
        try graph.launch()
    }

    /// Median microseconds of `runs` graph replays at `position` (events around each replay).
    func time(runs: Int, position: Int) throws -> Double {
        try device.upload([UInt32(1), UInt32(position)], to: pointers[plan.state])
        return try graph.medianReplayMicroseconds(runs: runs)
    }
}

/// weights.bin, read in slices of at most 256 MiB.
struct MappedWeights {
    let handle: FileHandle
    init(path: String, bytes: Int) throws {
        guard let h = FileHandle(forReadingAtPath: path) else { throw BenchFailure("cannot read \(path)") }
        handle = h
        let size = try h.seekToEnd()
        guard size >= UInt64(bytes) else { throw BenchFailure("\(path): \(size) bytes, the plan reads \(bytes)") }
    }

    func upload(offset: Int, bytes: Int, to dst: CUDevicePointer, device: CUDADevice) throws {
        var done = 0
        while done < bytes {
            let n = min(bytes - done, 256 << 20)
            try handle.seek(toOffset: UInt64(offset + done))
            guard let data = try handle.read(upToCount: n), data.count == n else { throw BenchFailure("weights.bin ends early") }
            try device.upload([UInt8](data), to: dst + UInt64(done))
            done += n
        }
    }
}

/// The CPU reference `nmc compile --reference-steps N` writes: greedy tokens and some steps' logits.
struct DecodeReference: Codable {
    var backend: String
    var tokens: [Int]
    var logitSteps: [Int]
    var logitsFile: String
}

enum PTXArtifactRun {
    /// Greedy decoding from `tokens` for `count` steps, token by token through the graph.
    static func generate(step: PTXDecodeStep, prompt: [Int], count: Int, log: (String) -> Void) throws -> [Int] {
        var out: [Int] = []
        var logits: [Float] = []
        for (p, t) in prompt.enumerated() { logits = try step.step(token: t, position: p) }
        for i in 0..<count {
            let next = argmax(logits)
            out.append(next)
            if i + 1 < count { logits = try step.step(token: next, position: prompt.count + i) }
        }
        return out
    }

    /// `nmc-run DIR --prompt TEXT` for a PTX artifact of a real model: its tokenizer (from DIR),
    /// the prompt token by token through the step, then greedy decoding to `count` tokens or the
    /// end of generation; prints the text and the speed.
    static func generateText(step: PTXDecodeStep, directory: String, prompt: String, count: Int) throws {
        let tokenizer: BPETokenizer
        if FileManager.default.fileExists(atPath: directory + "/" + TokenizerSpec.fileName) {
            tokenizer = try TokenizerSpec.read(path: directory + "/" + TokenizerSpec.fileName).makeTokenizer()
        } else if FileManager.default.fileExists(atPath: directory + "/tokenizer.json") {
            tokenizer = try BPETokenizer.fromTokenizerJSON(path: directory + "/tokenizer.json")
        } else {
            throw BenchFailure("\(directory) has no tokenizer (synthetic weights: give --start-tokens instead of --prompt)")
        }
        let tokens = tokenizer.encode(prompt, addSpecial: true).map(Int.init)
        guard !tokens.isEmpty else { throw BenchFailure("the prompt is empty") }
        let started = Date()
        var logits: [Float] = []
        for (p, t) in tokens.enumerated() { logits = try step.step(token: t, position: p) }
        let prefill = Date().timeIntervalSince(started)
        var generated: [Int32] = []
        let decodeStarted = Date()
        while generated.count < count, tokens.count + generated.count < step.plan.capacity {
            let next = argmax(logits)
            if tokenizer.isEndOfGeneration(Int32(next)) { break }
            generated.append(Int32(next))
            logits = try step.step(token: next, position: tokens.count + generated.count - 1)
        }
        let decode = Date().timeIntervalSince(decodeStarted)
        print(tokenizer.decode(generated))
        FileHandle.standardError.write(Data(String(format: "prompt: %d tokens (%.1f tokens/s, token by token); generated: %d tokens, %.1f tokens/s (GPU, one CUDA graph a token, greedy)\n",
                                                   tokens.count, Double(tokens.count) / prefill, generated.count,
                                                   Double(generated.count) / max(decode, 1e-9)).utf8))
    }

    static func argmax(_ v: [Float]) -> Int { v.indices.max { v[$0] < v[$1] || (v[$0] == v[$1] && $0 > $1) } ?? 0 }

    /// Compares the GPU with the CPU reference in DIR: free-running greedy tokens, then, fed the
    /// reference's tokens, each step's argmax and the recorded steps' logits (max |Δ| / max |ref|).
    static func check(step: PTXDecodeStep, directory: String, log: (String) -> Void) throws -> Bool {
        guard let data = FileManager.default.contents(atPath: directory + "/reference.json") else {
            throw BenchFailure("\(directory)/reference.json is missing (nmc compile … --reference-steps N writes it)")
        }
        let ref = try JSONDecoder().decode(DecodeReference.self, from: data)
        guard let raw = FileManager.default.contents(atPath: directory + "/" + ref.logitsFile),
              raw.count == 4 * ref.logitSteps.count * step.plan.vocab else { throw BenchFailure("\(ref.logitsFile): wrong size") }
        let refLogits = raw.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let steps = ref.tokens.count - 1
        let free = try generate(step: step, prompt: [ref.tokens[0]], count: steps, log: log)
        let freeSame = free == Array(ref.tokens.dropFirst())
        log("greedy tokens, GPU: \(free.map(String.init).joined(separator: " "))")
        log("greedy tokens, CPU (\(ref.backend)): \(ref.tokens.dropFirst().map(String.init).joined(separator: " "))")
        log("free-running greedy: \(freeSame ? "the same \(steps) tokens" : "differ at step \(zip(free, ref.tokens.dropFirst()).enumerated().first { $0.1.0 != $0.1.1 }!.offset)")")
        var agree = 0, worst = 0.0
        for s in 0..<steps {
            let logits = try step.step(token: ref.tokens[s], position: s)
            if argmax(logits) == ref.tokens[s + 1] { agree += 1 }
            if let k = ref.logitSteps.firstIndex(of: s) {
                let r = refLogits[(k * step.plan.vocab)..<((k + 1) * step.plan.vocab)]
                let maxRef = r.map { abs(Double($0)) }.max() ?? 1
                let maxDiff = zip(logits, r).map { abs(Double($0) - Double($1)) }.max() ?? 0
                let rel = maxDiff / maxRef
                worst = max(worst, rel.isNaN ? .infinity : rel)
                let sortedRef = r.sorted(by: >)
                log(String(format: "step %2d: logits max|Δ|/max|ref| = %.2e (max |ref| %.2f, CPU top-2 margin %.3f)", s, rel, maxRef,
                           Double(sortedRef[0] - sortedRef[1])))
            }
        }
        log("teacher-forced: GPU argmax = CPU token at \(agree) of \(steps) steps; worst logits relative error \(String(format: "%.2e", worst))")
        let ok = freeSame && agree == steps && worst <= 1e-2
        log("reference check: \(ok ? "PASS" : "FAIL") (same greedy tokens for \(steps) steps and logits within 1e-2 relative)")
        return ok
    }
}
