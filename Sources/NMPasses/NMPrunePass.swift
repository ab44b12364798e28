#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import NMIR

/// `nm-prune{n=2 m=4 method=magnitude|wanda|sparsegpt include=… exclude=… nm=… damp=0.01 blocksize=128}`:
/// prunes the weights of linear layers to an N:M pattern: in every group of M consecutive weights
/// along the input dimension (the last dim of a `[out, in]` weight) M − N are set to zero.
///
/// Before:
///
///     weights {
///       @w : tensor<2x8xf32> = dense<[0.1, -0.9, 0.5, 0.2, 3.0, 1.0, -2.0, 0.0,
///                                     4.0, 4.0, 4.0, 4.0, -1.0, 0.3, 0.2, 0.25]>
///     }
///     %w = nn.weight {name = @w} : tensor<2x8xf32>
///     %y = nn.linear %x, %w : tensor<?x2xf32>
///
/// After `nm-prune{n=2 m=4}` (magnitude: the two largest |w| of every 4 stay, ties to the left):
///
///     weights {
///       @w : tensor<2x8xf32, nm = 2:4> = dense<[0.0, -0.9, 0.5, 0.0, 3.0, 0.0, -2.0, 0.0,
///                                               4.0, 4.0, 0.0, 0.0, -1.0, 0.3, 0.0, 0.0]>
///     }
///     %w = nn.weight {name = @w} : tensor<2x8xf32, nm = 2:4>
///     %y = nn.linear %x, %w : tensor<?x2xf32>
///
/// Targets: every `nn.linear %x, %w` whose `%w` is `nn.weight {name = @W}` of an f32 matrix
/// without an encoding. A weight that anything else reads (the tied `token_embd.weight` of
/// `nn.embedding`) is left alone, as are weights not matched by `include` (comma-separated globs,
/// empty: all) or matched by `exclude`. `nm=GLOB:N:M,…` overrides the pattern per weight, the
/// first matching glob winning.
///
/// Methods: `magnitude` keeps the N largest |w|; `wanda` the N largest |w| · ‖xⱼ‖ with
/// ‖xⱼ‖² = `@W.calib.sqnorm[j]`; `sparsegpt` (see `SparseGPT`) chooses by OBS saliency and
/// updates the kept weights to compensate, from `@W.calib.hessian`. The calibration tensors
/// come from the `calibrate` pass.
public struct NMPrunePass: Pass {
    public static let methods = ["magnitude", "wanda", "sparsegpt"]

    public static let info = PassInfo(
        name: "nm-prune",
        summary: "prune linear-layer weights to an N:M pattern (magnitude, wanda or sparsegpt)",
        options: [
            PassOptionSpec("n", .int, default: .int(2), "weights kept in every group of m"),
            PassOptionSpec("m", .int, default: .int(4), "group size along the input dimension (n < m ≤ 16)"),
            PassOptionSpec("method", .string, default: .string("magnitude"), choices: methods,
                           "magnitude keeps the largest |w|; wanda the largest |w|·‖x‖ (run calibrate first); sparsegpt chooses by OBS saliency and updates the kept weights (run calibrate{hessian=true} first)"),
            PassOptionSpec("include", .string, default: .string(""),
                           "comma-separated globs (* and ?) of the weights to prune; empty: every linear weight"),
            PassOptionSpec("exclude", .string, default: .string("token_embd.weight,output.weight"),
                           "comma-separated globs of weights to leave dense"),
            PassOptionSpec("nm", .string, default: .string(""),
                           "per-weight patterns, GLOB:N:M separated by commas (blk.0.*:1:4); the first match wins"),
            PassOptionSpec("damp", .float, default: .float(0.01), "sparsegpt: dampening, as a fraction of the Hessian's mean diagonal"),
            PassOptionSpec("blocksize", .int, default: .int(128), "sparsegpt: columns per lazy-update block (rounded up to a multiple of m)"),
        ],
        statistics: [
            ("pruned-weights", "weight matrices pruned"),
            ("zeroed", "weights set to zero"),
            ("skipped", "linear weights left dense because excluded or read by another op"),
        ])

    public init() {}

    public static func validate(_ options: PassOptions) throws(OptionError) {
        _ = try Configuration(options)
    }

    /// The options, checked and parsed.
    struct Configuration {
        var pattern: NMPattern
        var method: String
        var include: [NameGlob]
        var exclude: [NameGlob]
        var overrides: [(glob: NameGlob, pattern: NMPattern)]
        var damp: Double
        var blockSize: Int

        init(_ options: PassOptions) throws(OptionError) {
            let n = options.int("n"), m = options.int("m")
            guard n >= 1 else { throw OptionError(option: "n", "n must be at least 1 (got \(n))") }
            guard m <= 16 else { throw OptionError(option: "m", "m must be at most 16 (got \(m))") }
            guard n < m, let pattern = NMPattern(n: n, m: m) else {
                throw OptionError(option: "n", "n must be less than m (got n = \(n), m = \(m)): N of every M weights are kept")
            }
            self.pattern = pattern
            method = options.string("method")
            guard NMPrunePass.methods.contains(method) else {
                throw OptionError(option: "method", "unknown method '\(method)' (one of \(NMPrunePass.methods.joined(separator: ", ")))")
            }
            include = NameGlob.list(options.string("include"))
            exclude = NameGlob.list(options.string("exclude"))
            overrides = try Self.parseOverrides(options.string("nm"))
            damp = options.float("damp")
            guard damp >= 0, damp.isFinite else { throw OptionError(option: "damp", "damp must be a finite number ≥ 0 (got \(formatFloat(damp)))") }
            blockSize = options.int("blocksize")
            guard blockSize >= 1 else { throw OptionError(option: "blocksize", "blocksize must be at least 1 (got \(blockSize))") }
        }

        /// `blk.0.*:1:4,blk.2*:2:8` → [(blk.0.*, 1:4), (blk.2*, 2:8)].
        static func parseOverrides(_ text: String) throws(OptionError) -> [(glob: NameGlob, pattern: NMPattern)] {
            var out: [(glob: NameGlob, pattern: NMPattern)] = []
            for entry in text.split(separator: ",").map(NameGlob.trim) where !entry.isEmpty {
                let parts = entry.split(separator: ":", omittingEmptySubsequences: false)
                guard parts.count >= 3, let n = Int(parts[parts.count - 2]), let m = Int(parts[parts.count - 1]) else {
                    throw OptionError(option: "nm", "'\(entry)' is not GLOB:N:M (like blk.0.*:1:4)")
                }
                let glob = parts.dropLast(2).joined(separator: ":")
                guard !glob.isEmpty else { throw OptionError(option: "nm", "'\(entry)' has no glob before N:M") }
                guard let pattern = NMPattern(n: n, m: m) else {
                    throw OptionError(option: "nm", "'\(entry)': \(n):\(m) is not an N:M pattern with 1 ≤ N < M ≤ 16")
                }
                out.append((NameGlob(glob), pattern))
            }
            return out
        }

        func pattern(for name: String) -> NMPattern {
            overrides.first { $0.glob.matches(name) }?.pattern ?? pattern
        }

        func isSelected(_ name: String) -> Bool {
            (include.isEmpty || include.anyMatches(name)) && !exclude.anyMatches(name)
        }
    }

    /// A weight that will be pruned.
    struct Target {
        var weight: LinearWeight
        var type: TensorType
        var rows: Int
        var columns: Int
        var pattern: NMPattern
        /// `@W.calib.sqnorm` or `@W.calib.hessian`, per the method.
        var calibration: String?
    }

    public func run(on module: inout Module, context: PassContext) throws {
        let config = try Configuration(context.options)
        let targets = try selectTargets(module, config, context)
        // Work in batches so that only a few matrices' results are held at once.
        let batchSize = 2 * Self.cores
        let jobs = Self.jobs(targets, config, module)
        for start in stride(from: 0, to: jobs.count, by: batchSize) {
            let batch = jobs[start..<min(start + batchSize, jobs.count)]
            let results = try prune(batch, config, module)
            for (job, pruned) in zip(batch, results) {
                for (target, result) in zip(job.targets, pruned) {
                    write(result.values, for: target, into: &module, context)
                    context.count("zeroed", by: result.zeroed)
                }
            }
        }
    }

    /// The linear weights to prune, checked: shape, data, calibration. These checks come before
    /// any change, so their failures leave the module as it was (a Hessian that is not positive
    /// definite shows only when its factorization is tried).
    private func selectTargets(_ module: Module, _ config: Configuration, _ context: PassContext) throws -> [Target] {
        var targets: [Target] = []
        for weight in LinearWeights.find(in: module) {
            guard let entry = module.weights[weight.name], case .tensor(let type) = entry.type, type.dtype == .f32,
                  type.nm == nil, type.rank == 2, let rows = type.shape[0].value, let columns = type.shape[1].value
            else { continue }
            guard config.isSelected(weight.name), !weight.isShared else {
                context.count("skipped")
                continue
            }
            func failure(_ message: String) -> PassError { Self.failure(weight, module, message) }
            let pattern = config.pattern(for: weight.name)
            guard columns % pattern.m == 0 else {
                throw failure("weight @\(weight.name) (\(type)) cannot be pruned \(pattern): its input dim \(columns) is not a multiple of \(pattern.m)")
            }
            guard Self.hasData(entry) else {
                throw failure("weight @\(weight.name) has no data in memory (\(entry.data == .elided ? "elided" : "in the weights file, not loaded"))")
            }
            var calibration: String?
            if config.method != "magnitude" {
                let (suffix, shape, what, calibrate) = config.method == "wanda"
                    ? ("sqnorm", [columns], "Σ x² per input", "calibrate{file=…}")
                    : ("hessian", [columns, columns], "Σ x xᵀ over the inputs", "calibrate{file=… hessian=true}")
                let name = weight.name + ".calib." + suffix
                let expected = TensorType(shape, .f32)
                guard let c = module.weights[name] else {
                    throw failure("method=\(config.method) needs @\(name) (\(expected), \(what)), which is not in the module: run \(calibrate) first")
                }
                guard c.type == .tensor(expected) else {
                    throw failure("method=\(config.method): @\(name) has type \(c.type), expected \(expected)")
                }
                guard Self.hasData(c) else { throw failure("calibration tensor @\(name) has no data in memory") }
                calibration = name
            }
            targets.append(Target(weight: weight, type: type, rows: rows, columns: columns, pattern: pattern, calibration: calibration))
        }
        return targets
    }

    private static func hasData(_ e: WeightEntry) -> Bool {
        switch e.data {
        case .values, .bytes: return true
        case .external, .elided: return false
        }
    }

    /// Targets pruned together: SparseGPT factors a Hessian once for every weight that has the
    /// same one (the q/k/v and gate/up projections read the same input).
    struct Job {
        var targets: [Target]
    }

    private static func jobs(_ targets: [Target], _ config: Configuration, _ module: Module) -> [Job] {
        guard config.method == "sparsegpt" else { return targets.map { Job(targets: [$0]) } }
        var jobs: [Job] = []
        var candidates: [Int: [Int]] = [:]  // sampled hash of the Hessian bytes → jobs
        var hessianBytes: [[UInt8]] = []
        for t in targets {
            guard let name = t.calibration, let bytes = module.weights[name]?.storageBytes else {
                jobs.append(Job(targets: [t]))
                hessianBytes.append([])
                continue
            }
            let key = sampledHash(bytes)
            let same = candidates[key, default: []].first { hessianBytes[$0] == bytes }
            if let i = same {
                jobs[i].targets.append(t)
            } else {
                candidates[key, default: []].append(jobs.count)
                jobs.append(Job(targets: [t]))
                hessianBytes.append(bytes)
            }
        }
        return jobs
    }

    private static func sampledHash(_ bytes: [UInt8]) -> Int {
        var h = Hasher()
        h.combine(bytes.count)
        let stride = max(1, bytes.count / 4096)
        var i = 0
        while i < bytes.count {
            h.combine(bytes[i])
            i += stride
        }
        return h.finalize()
    }

    /// The pruned values of every target of every job, computed on all cores.
    private func prune(_ jobs: ArraySlice<Job>, _ config: Configuration, _ module: Module) throws -> [[Pruned]] {
        struct Input: Sendable {
            var weights: [[Float]]
            var shapes: [(rows: Int, columns: Int, pattern: NMPattern)]
            var calibration: [Float]?
        }
        var inputs: [Input] = []
        for job in jobs {
            var weights: [[Float]] = []
            for t in job.targets {
                guard let values = module.weights[t.weight.name]?.floatValues, values.count == t.rows * t.columns else {
                    throw Self.failure(t.weight, module, "cannot read the values of weight @\(t.weight.name)")
                }
                if let bad = values.firstIndex(where: { !$0.isFinite }) {
                    throw Self.failure(t.weight, module, "weight @\(t.weight.name) holds \(values[bad]) at row \(bad / t.columns), column \(bad % t.columns): N:M selection needs finite weights")
                }
                weights.append(values)
            }
            var calibration: [Float]?
            if let t = job.targets.first, let name = t.calibration {
                let expected = config.method == "wanda" ? t.columns : t.columns * t.columns
                guard let values = module.weights[name]?.floatValues, values.count == expected else {
                    throw Self.failure(t.weight, module, "cannot read the values of calibration tensor @\(name)")
                }
                if let bad = values.firstIndex(where: { !$0.isFinite }) {
                    throw Self.failure(t.weight, module, "calibration tensor @\(name) holds \(values[bad]) at element \(bad): recalibrate (the model produced non-finite activations)")
                }
                calibration = values
            }
            inputs.append(Input(weights: weights, shapes: job.targets.map { ($0.rows, $0.columns, $0.pattern) },
                                calibration: calibration))
        }
        let method = config.method, damp = config.damp, blockSize = config.blockSize
        let frozen = inputs
        let results = Self.parallelMap(frozen.count) { i -> Result<[Pruned], SparseGPT.Failure> in
            let input = frozen[i]
            var out = input.weights
            func pruned() -> [Pruned] {
                zip(input.weights, out).map { before, after in
                    var zeroed = 0
                    for (a, b) in zip(before, after) where a != 0 && b == 0 { zeroed += 1 }
                    return Pruned(values: after, zeroed: zeroed)
                }
            }
            switch method {
            case "sparsegpt":
                guard let h = input.calibration else { return .success(pruned()) }  // checked when the inputs were read
                let factor: SparseGPT.InverseHessianFactor
                do throws(SparseGPT.Failure) {
                    factor = try SparseGPT.factor(hessian: h, k: input.shapes[0].columns, damp: damp)
                } catch {
                    return .failure(error)
                }
                for j in out.indices {
                    SparseGPT.prune(&out[j], rows: input.shapes[j].rows, factor: factor, pattern: input.shapes[j].pattern,
                                    blockSize: blockSize)
                }
            default:
                let scale = method == "wanda" ? input.calibration.map { $0.map { Double(max($0, 0)).squareRoot() } } : nil
                for j in out.indices {
                    NMSelection.pruneByScore(&out[j], rows: input.shapes[j].rows, columns: input.shapes[j].columns,
                                             pattern: input.shapes[j].pattern, columnScale: scale)
                }
            }
            return .success(pruned())
        }
        return try zip(jobs, results).map { job, result in
            switch result {
            case .success(let values): return values
            case .failure(.notPositiveDefinite):
                let t = job.targets[0]
                throw Self.failure(t.weight, module, "the Hessian @\(t.calibration ?? "") of weight @\(t.weight.name) is not positive definite even with damp = \(formatFloat(damp)): raise damp")
            }
        }
    }

    /// A failure located at the first `nn.weight` that reads `weight`.
    private static func failure(_ weight: LinearWeight, _ module: Module, _ message: String) -> PassError {
        let d = weight.definitions.first
        return PassError(function: d.map { module.functions[$0.function].name },
                         op: d.map { module.functions[$0.function].body[$0.op] }, message)
    }

    /// A target's new values, and how many of its weights they set to zero.
    struct Pruned: Sendable {
        var values: [Float]
        var zeroed: Int
    }

    /// Stores the pruned values (as written values when they were written in the text, so a
    /// printed module shows the zeros) with the `nm` encoding, and retypes every `nn.weight`.
    private func write(_ values: [Float], for target: Target, into module: inout Module, _ context: PassContext) {
        guard var entry = module.weights[target.weight.name] else { return }
        var type = target.type
        type.nm = target.pattern
        if case .values(let written) = entry.data, written.count == values.count {
            // A kept weight keeps its written form (0.9, not 0.8999999761581421).
            entry.data = .values(zip(written, values).map { Float($0) == $1 ? $0 : Double($1) })
            entry.type = .tensor(type)
        } else {
            let location = entry.location
            entry = WeightEntry(name: entry.name, floats: values, type: type)
            entry.location = location
        }
        module.weights[target.weight.name] = entry
        for d in target.weight.definitions {
            guard case .tensor(var t)? = module.functions[d.function].body[d.op].result?.type else { continue }
            t.nm = target.pattern
            module.functions[d.function].retype(d.value, to: .tensor(t))
        }
        context.count("pruned-weights")
    }

    static let cores: Int = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))

    /// `body(i)` for i in 0..<count, spread over the cores; the results in index order.
    static func parallelMap<T: Sendable>(_ count: Int, _ body: @Sendable (Int) -> T) -> [T] {
        let slots = ResultSlots<T>(count)
        DispatchQueue.concurrentPerform(iterations: count) { i in slots.pointer[i] = body(i) }
        return (0..<count).compactMap { slots.pointer[$0] }
    }

    /// Where the iterations of `parallelMap` put their results: each index is written by exactly
    /// one iteration, and read only after all of them have finished.
    final class ResultSlots<T>: @unchecked Sendable {
        let pointer: UnsafeMutablePointer<T?>
        let count: Int
        init(_ count: Int) {
            self.count = count
            pointer = .allocate(capacity: count)
            pointer.initialize(repeating: nil, count: count)
        }
        deinit {
            pointer.deinitialize(count: count)
            pointer.deallocate()
        }
    }
}
