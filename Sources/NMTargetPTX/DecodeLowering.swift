import NMIR

/// Lowers a module's `@decode` function (one token) to a `DecodePlan` and its PTX: it walks the
/// ops in order and gives each a launch, fusing where the graph's structure allows —
/// - linear layers (`nn.linear` over f32 weights → FP16 kernel, `quant.linear` over 4-bit packed
///   weights → dense or 2:4 INT4 kernel) that follow one another on the same input are stacked
///   into one launch (q|k|v, gate|up): their re-laid weights are concatenated row tile by row tile;
/// - `nn.add` with the `nn.rms_norm` that reads it (one kernel writes the sum and the norm);
/// - `nn.rope` whose only reader is `kv.append` writes straight into the cache row;
/// - `nn.silu` with the `nn.mul` that reads it.
/// Shapes the kernels cannot take are refused with the op and the reason.
public struct DecodeLowering {
    public struct Output {
        public var plan: DecodePlan
        public var ptx: String
        public var weights: [UInt8]
    }

    /// Where a value lives: a buffer, a byte offset, f16 or f32, its elements.
    struct Location {
        var buffer: Int
        var offset: Int = 0
        var f16: Bool
        var elements: Int
    }

    let module: Module
    let function: Function
    let seed: UInt64?
    /// Kernels built for programmatic dependent launches (an sm_90 module).
    let dependentLaunch: Bool
    var buffers: [DecodePlan.Buffer] = []
    var fills: [DecodePlan.Fill] = []
    var launches: [DecodePlan.Launch] = []
    var entries: [String: String] = [:]
    var entryOrder: [String] = []
    var weights: [UInt8] = []
    var locations: [String: Location] = [:]
    var weightOps: [String: Operation] = [:]
    var weightBuffers: [String: Int] = [:]
    var linearKinds = Set<String>()
    var uses: [String: [Int]] = [:]
    var state = 0
    var capacity = 0

    /// Lowers `module`'s @decode. With `syntheticSeed`, weight buffers are filled on the GPU by
    /// the seeded generators (SyntheticWeights) and `weights` stays empty.
    /// With `dependentLaunch` the module is sm_90 and every launch after the first is a
    /// programmatic dependent one: each kernel lets the next start at once and waits for the one
    /// before (`griddepcontrol`) before it reads anything that one wrote; the linear kernels
    /// issue their weight loads first (LinearKernel.dependentLaunch), so that a layer's weights
    /// stream in while the kernels before it finish.
    public static func lower(_ module: Module, syntheticSeed: UInt64?, dependentLaunch: Bool = false) throws -> Output {
        guard let f = module.function(named: "decode") else { throw PTXError("the module has no @decode function") }
        var l = DecodeLowering(module: module, function: f, seed: syntheticSeed, dependentLaunch: dependentLaunch)
        return try l.run()
    }

    static func roundUp(_ n: Int, _ m: Int) -> Int { (n + m - 1) / m * m }

    mutating func buffer(_ name: String, bytes: Int) -> Int {
        buffers.append(.init(name: name, bytes: max(bytes, 4)))
        return buffers.count - 1
    }

    mutating func kernel(_ k: (entry: String, ptx: String)) -> String {
        if entries[k.entry] == nil {
            entries[k.entry] = dependentLaunch ? PTXModule.waitingForGridDependency(k.ptx) : k.ptx
            entryOrder.append(k.entry)
        }
        return k.entry
    }

    mutating func launch(_ entry: String, grid: Int, block: Int, _ args: [DecodePlan.Argument], computes: [String]) {
        launches.append(.init(kernel: entry, grid: [grid, 1, 1], block: [block, 1, 1], arguments: args, computes: computes))
    }

    func location(_ v: Value, _ op: Operation) throws -> Location {
        guard let l = locations[v.name] else { throw PTXError("\(op.name) reads %\(v.name), which the PTX decode step has not computed") }
        return l
    }

    func weightName(_ v: Value) throws -> String {
        guard let op = weightOps[v.name], let n = op.attributes["name"]?.symbolValue else {
            throw PTXError("%\(v.name) is not an nn.weight")
        }
        return n
    }

    func bytes(of name: String) throws -> [UInt8] {
        guard let e = module.weights[name], let b = e.storageBytes else { throw PTXError("weight @\(name) has no data in memory") }
        return b
    }

    mutating func fileFill(_ buffer: Int, offset: Int, _ data: [UInt8]) {
        fills.append(.init(buffer: buffer, offset: offset, bytes: data.count, source: .file, fileOffset: weights.count))
        weights += data
    }

    mutating func words(_ buffer: Int, offset: Int, _ data: [UInt32]) {
        fileFill(buffer, offset: offset, data.withUnsafeBytes { [UInt8]($0) })
    }

    mutating func synthetic(_ buffer: Int, offset: Int, _ kind: SyntheticWeightKernels.Kind, name: String, rows: Int, columns: Int,
                            padded: Int, exponent: Int) {
        let count = SyntheticWeightKernels.words(kind, rows: rows, paddedColumns: padded)
        fills.append(.init(buffer: buffer, offset: offset, bytes: 4 * count, source: .synthetic, generator: kind, rows: rows,
                           columns: columns, padded: padded, keys: SyntheticWeights.keys(seed: seed ?? 0, name: name), exponent: exponent))
    }

    mutating func run() throws -> Output {
        for (i, op) in function.body.enumerated() { for v in op.operands { uses[v.name, default: []].append(i) } }
        for v in function.returnValues { uses[v.name, default: []].append(function.body.count) }
        state = buffer("state", bytes: 8)
        guard function.arguments.count >= 2 else { throw PTXError("@decode takes (ids, start, caches…)") }
        for arg in function.arguments.dropFirst(2) {
            guard case .kvCache(let c) = arg.type else { throw PTXError("@decode argument %\(arg.name) is not a kv.cache") }
            capacity = c.capacity
            locations[arg.name] = Location(buffer: buffer("cache." + arg.name, bytes: 4 * c.capacity * c.heads * c.headDim),
                                           f16: false, elements: c.capacity * c.heads * c.headDim)
        }
        let body = function.body
        var i = 0
        var pendingAdd: (op: Operation, a: Location, b: Location)? = nil
        while i < body.count {
            let op = body[i]
            if let p = pendingAdd, op.name != "nn.weight", !(op.name == "nn.rms_norm" && op.operands[0].name == p.op.results[0].name) {
                throw PTXError("nn.add %\(p.op.results[0].name): the PTX decode step fuses each residual add with the nn.rms_norm that reads it next, and the next op is \(op.name)")
            }
            switch op.name {
            case "nn.weight":
                weightOps[op.results[0].name] = op
            case "tensor.reshape":
                locations[op.results[0].name] = try location(op.operands[0], op)
            case "nn.embedding":
                try lowerEmbedding(op)
            case "nn.add":
                let a = try location(op.operands[0], op), b = try location(op.operands[1], op)
                let (x, y) = a.f16 ? (b, a) : (a, b)
                guard !x.f16, y.f16 else { throw PTXError("nn.add %\(op.results[0].name): expected the f32 residual and an f16 layer output") }
                pendingAdd = (op, x, y)
            case "nn.rms_norm":
                try lowerNorm(op, add: pendingAdd.map { ($0.op, $0.a, $0.b) })
                pendingAdd = nil
            case "nn.linear", "quant.linear":
                i = try lowerLinears(at: i)
                continue
            case "nn.rope":
                try lowerRope(op)
            case "kv.append":
                try lowerAppend(op)
            case "nn.attention":
                try lowerAttention(op)
            case "nn.silu":
                guard i + 1 < body.count, body[i + 1].name == "nn.mul", uses[op.results[0].name] == [i + 1] else {
                    throw PTXError("nn.silu %\(op.results[0].name): the PTX decode step needs it read once, by the nn.mul right after it")
                }
                try lowerSiluMul(op, body[i + 1])
                i += 2
                continue
            default:
                throw PTXError("\(op.name) (%\(op.results.first?.name ?? "")) is not supported by the PTX decode step")
            }
            i += 1
        }
        guard let logitsValue = function.returnValues.first, let logits = locations[logitsValue.name], logits.f16 else {
            throw PTXError("@decode's first result must be the logits of a linear layer")
        }
        guard let vocab = logitsValue.type.tensor?.shape.last?.value else { throw PTXError("the logits' vocabulary size is not static") }
        if dependentLaunch {  // every entry waits (`kernel(_:)`), so every launch after the first may overlap the one before
            for i in launches.indices.dropFirst() { launches[i].dependent = true }
        }
        let ptx = PTXModule.text(entries: entryOrder.compactMap { entries[$0] }, target: dependentLaunch ? "sm_90" : "sm_80")
        let plan = DecodePlan(linearKinds: linearKinds.sorted(), vocab: vocab, hidden: module.attributes["hidden_size"]?.intValue ?? 0,
                              layers: module.attributes["layers"]?.intValue ?? 0, capacity: capacity, syntheticSeed: seed,
                              buffers: buffers, fills: fills, launches: launches, state: state, logits: logits.buffer,
                              weightBytes: weights.count)
        return Output(plan: plan, ptx: ptx, weights: weights)
    }

    // MARK: ops

    mutating func lowerEmbedding(_ op: Operation) throws {
        let name = try weightName(op.operands[0])
        guard let t = weightOps[op.operands[0].name]?.results[0].type.tensor, t.dtype == .f32, t.shape.count == 2,
              let vocab = t.shape[0].value, let dim = t.shape[1].value else {
            throw PTXError("nn.embedding %\(op.results[0].name): the table must be a static f32 matrix")
        }
        let table = buffer("embedding." + name, bytes: 4 * vocab * dim)
        if seed != nil {
            synthetic(table, offset: 0, .f32Table, name: name, rows: vocab, columns: dim, padded: dim, exponent: 0)
        } else {
            fileFill(table, offset: 0, try bytes(of: name))
        }
        let out = buffer(op.results[0].name, bytes: 4 * dim)
        let k = kernel(DecodeStepKernels.embedding(dim: dim))
        launch(k, grid: Self.roundUp(dim, 256) / 256, block: 256, [.pointer(table), .pointer(state), .pointer(out)], computes: [op.results[0].name])
        locations[op.results[0].name] = Location(buffer: out, f16: false, elements: dim)
    }

    mutating func normWeight(_ v: Value, dim: Int) throws -> Int {
        let name = try weightName(v)
        if let b = weightBuffers[name] { return b }
        let b = buffer("norm." + name, bytes: 4 * dim)
        if seed != nil {
            fills.append(.init(buffer: b, offset: 0, bytes: 4 * dim, source: .onesF32))
        } else {
            fileFill(b, offset: 0, try bytes(of: name))
        }
        weightBuffers[name] = b
        return b
    }

    mutating func lowerNorm(_ op: Operation, add: (Operation, Location, Location)?) throws {
        let x = try add.map { $0.1 } ?? location(op.operands[0], op)
        let dim = x.elements, padded = Self.roundUp(dim, KernelWeightLayout.unitColumns)
        guard !x.f16 else {
            throw PTXError("nn.rms_norm %\(op.results[0].name): expected one f32 token")
        }
        for u in uses[op.results[0].name, default: []] where u >= function.body.count || !["nn.linear", "quant.linear"].contains(function.body[u].name) {
            throw PTXError("nn.rms_norm %\(op.results[0].name): the PTX decode step feeds norms only to linear layers")
        }
        let w = try normWeight(op.operands[1], dim: dim)
        let eps = op.attributes["eps"]?.floatValue ?? 1e-5
        let out = buffer(op.results[0].name, bytes: 2 * padded)
        let k = kernel(DecodeStepKernels.rmsNorm(dim: dim, padded: padded, eps: eps, add: add != nil))
        if let (addOp, a, b) = add {
            let sum = buffer(addOp.results[0].name, bytes: 4 * dim)
            locations[addOp.results[0].name] = Location(buffer: sum, f16: false, elements: dim)
            launch(k, grid: 1, block: 256, [.pointer(a.buffer, a.offset), .pointer(b.buffer, b.offset), .pointer(sum), .pointer(w), .pointer(out)],
                   computes: [addOp.results[0].name, op.results[0].name])
        } else {
            launch(k, grid: 1, block: 256, [.pointer(x.buffer, x.offset), .pointer(w), .pointer(out)], computes: [op.results[0].name])
        }
        locations[op.results[0].name] = Location(buffer: out, f16: true, elements: padded)
    }

    /// One linear layer's weight: its kernel kind, rows, logical columns and how to fill it.
    struct LinearWeight {
        var kind: LinearKernel.Weights
        var rows: Int
        var columns: Int
        var name: String        // the f32 weight, or the packed weight's base name (without .q)
        var packedName: String?
        var scalesName: String?
    }

    func linearWeight(_ op: Operation) throws -> LinearWeight {
        let result = op.results[0].name
        if op.name == "nn.linear" {
            guard op.operands.count == 2, let t = weightOps[op.operands[1].name]?.results[0].type.tensor, t.dtype == .f32,
                  t.shape.count == 2, let n = t.shape[0].value, let k = t.shape[1].value else {
                throw PTXError("nn.linear %\(result): the PTX decode step needs a static f32 weight from nn.weight")
            }
            return LinearWeight(kind: .fp16, rows: n, columns: k, name: try weightName(op.operands[1]))
        }
        guard op.operands.count == 3, let p = op.operands[1].type.packed else {
            throw PTXError("quant.linear %\(result): expected (x, packed weight, scales)")
        }
        guard p.bits == 4, !p.zeroPoint, p.scale == .f16, p.group % KernelWeightLayout.unitColumns == 0 || p.group >= p.columns,
              op.attributes["act_bits"] == nil, p.nm == nil || (p.nm?.n == 2 && p.nm?.m == 4) else {
            throw PTXError("quant.linear %\(result): the PTX kernels take 4-bit symmetric weights with f16 scales, groups a multiple of 128 (or one group a row), dense or 2:4, f16 activations (got \(op.operands[1].type)\(op.attributes["act_bits"] != nil ? ", act_bits" : ""))")
        }
        let packed = try weightName(op.operands[1])
        let base = packed.hasSuffix(".q") ? String(packed.dropLast(2)) : packed
        return LinearWeight(kind: p.nm == nil ? .int4 : .int4Sparse24, rows: p.rows, columns: p.columns, name: base,
                            packedName: packed, scalesName: try weightName(op.operands[2]))
    }

    /// The group the kernels see: one group a row (group ≥ the input dim) is one group of the
    /// padded row.
    func group(_ p: PackedWeightType?, padded: Int) -> Int {
        guard let p else { return KernelWeightLayout.unitColumns }
        return p.group >= p.columns ? padded : p.group
    }

    /// Lowers the linear at `start` and the linears right after it (nn.weight ops between) that
    /// read the same input with the same kind and width, as one stacked launch; returns the next op.
    mutating func lowerLinears(at start: Int) throws -> Int {
        let body = function.body
        let first = body[start]
        let x = try location(first.operands[0], first)
        let w0 = try linearWeight(first)
        var members: [(Operation, LinearWeight)] = [(first, w0)]
        var next = start + 1
        var scan = start + 1
        while scan < body.count {
            let op = body[scan]
            if op.name == "nn.weight" { weightOps[op.results[0].name] = op; scan += 1; continue }
            guard ["nn.linear", "quant.linear"].contains(op.name), op.operands[0].name == first.operands[0].name,
                  let w = try? linearWeight(op), w.kind == w0.kind, w.columns == w0.columns else { break }
            members.append((op, w))
            scan += 1
            next = scan
        }
        let padded = Self.roundUp(w0.columns, KernelWeightLayout.unitColumns)
        guard x.f16, x.elements == padded else {
            throw PTXError("\(first.name) %\(first.results[0].name): its input must be an f16 row of \(padded) (the norm, attention or SwiGLU output)")
        }
        // Output rows are padded to the 16-row tiles with zero rows (real weights; synthetic
        // weights are generated in whole tiles).
        func tileRows(_ w: LinearWeight) -> Int { Self.roundUp(w.rows, KernelWeightLayout.tileRows) }
        for (op, w) in members where seed != nil && tileRows(w) != w.rows {
            throw PTXError("\(op.name) %\(op.results[0].name): \(w.rows) output rows is not a multiple of \(KernelWeightLayout.tileRows) (synthetic weights)")
        }
        let rows = members.reduce(0) { $0 + tileRows($1.1) }
        let kind = w0.kind
        linearKinds.insert(kind.rawValue)
        let units = padded / KernelWeightLayout.unitColumns, tiles = rows / KernelWeightLayout.tileRows
        let label = members.map { $0.0.results[0].name }.joined(separator: "|")
        let valueBytes = [LinearKernel.Weights.fp16: 4096, .int4: 1024, .int4Sparse24: 512][kind]!
        let wBuf = buffer("w.\(label)", bytes: tiles * units * valueBytes)
        let metaBuf = kind == .int4Sparse24 ? buffer("meta.\(label)", bytes: tiles * units * 256) : nil
        let scaleBuf = kind == .fp16 ? nil : buffer("scales.\(label)", bytes: tiles * units * 32)
        var row = 0
        for (_, w) in members {
            let t0 = row / KernelWeightLayout.tileRows
            let offW = t0 * units * valueBytes, offM = t0 * units * 256, offS = t0 * units * 32
            if seed != nil {
                switch kind {
                case .fp16:
                    let e = embeddingNames.contains(w.name) ? 0 : SyntheticWeights.denseExponent(columns: w.columns)
                    synthetic(wBuf, offset: offW, .fp16Layout, name: w.name, rows: w.rows, columns: w.columns, padded: padded, exponent: e)
                case .int4, .int4Sparse24:
                    synthetic(wBuf, offset: offW, kind == .int4 ? .int4Layout : .sparseValues, name: w.name, rows: w.rows,
                              columns: w.columns, padded: padded, exponent: 0)
                    if let metaBuf {
                        synthetic(metaBuf, offset: offM, .sparseMetadata, name: w.name, rows: w.rows, columns: w.columns, padded: padded, exponent: 0)
                    }
                    synthetic(scaleBuf!, offset: offS, .scales, name: w.name, rows: w.rows, columns: w.columns, padded: padded,
                              exponent: SyntheticWeights.scaleExponent(columns: w.columns))
                }
            } else {
                switch kind {
                case .fp16:
                    let floats = try bytes(of: w.name).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
                    var f16 = [UInt16](repeating: 0, count: tileRows(w) * padded)
                    for r in 0..<w.rows { for c in 0..<w.columns { f16[r * padded + c] = Float16(floats[r * w.columns + c]).bitPattern } }
                    words(wBuf, offset: offW, try KernelWeightLayout.fp16(f16, rows: tileRows(w), columns: padded))
                case .int4, .int4Sparse24:
                    let scaleBytes = try bytes(of: w.scalesName!)
                    let scales = scaleBytes.withUnsafeBytes { Array($0.bindMemory(to: UInt16.self)) }
                    let p = try PackedINT4Weight(storage: try bytes(of: w.packedName!), rows: w.rows, columns: w.columns,
                                                 group: group(module.weights[w.packedName!]?.type.packed, padded: padded),
                                                 sparse24: kind == .int4Sparse24, scaleBits: scales).padded(to: padded, rows: tileRows(w))
                    if kind == .int4 {
                        words(wBuf, offset: offW, try KernelWeightLayout.int4Dense(p))
                    } else {
                        words(wBuf, offset: offW, try KernelWeightLayout.int4Sparse24Values(p))
                        words(metaBuf!, offset: offM, try KernelWeightLayout.int4Sparse24Metadata(p))
                    }
                    words(scaleBuf!, offset: offS, try KernelWeightLayout.scales(p))
                }
            }
            row += tileRows(w)
        }
        let y = buffer("y.\(label)", bytes: 2 * rows)
        let k = try LinearKernel.standard(weights: kind, rows: rows, columns: padded, tokenTiles: 1, dependentLaunch: dependentLaunch)
        let entry = kernel((k.entry, k.ptx()))
        let shape = k.launchShape(tokens: 1)
        launches.append(.init(kernel: entry, grid: [shape.grid.0, shape.grid.1, shape.grid.2], block: [shape.block.0, 1, 1],
                              arguments: [.pointer(wBuf), metaBuf.map { .pointer($0) } ?? .none, scaleBuf.map { .pointer($0) } ?? .none,
                                          .pointer(x.buffer, x.offset), .pointer(y), .integer(1)],
                              computes: members.map { $0.0.results[0].name }))
        row = 0
        for (op, w) in members {
            locations[op.results[0].name] = Location(buffer: y, offset: 2 * row, f16: true, elements: w.rows)
            row += tileRows(w)
        }
        return next
    }

    /// Weights read by nn.embedding: their synthetic values use exponent 0 (±1), also where a
    /// tied output head reads them.
    var embeddingNames: Set<String> { SyntheticWeights.embeddingTables(in: function) }

    var pendingRopes: [String: (op: Operation, x: Location, heads: Int, dim: Int)] = [:]

    mutating func ropeTable(theta: Double, headDim: Int) -> Int {
        let key = "rope.\(theta).\(headDim)"
        if let b = weightBuffers[key] { return b }
        let b = buffer(key, bytes: 4 * capacity * headDim)
        fills.append(.init(buffer: b, offset: 0, bytes: 4 * capacity * headDim, source: .ropeTable, theta: theta, headDim: headDim))
        weightBuffers[key] = b
        return b
    }

    mutating func lowerRope(_ op: Operation) throws {
        let x = try location(op.operands[0], op)
        guard let t = op.operands[0].type.tensor, t.shape.count == 3, t.shape[0].value == 1,
              let heads = t.shape[1].value, let dim = t.shape[2].value, x.f16 else {
            throw PTXError("nn.rope %\(op.results[0].name): expected one token [1, H, D] of a linear layer's output")
        }
        let users = uses[op.results[0].name, default: []]
        if users.count == 1, users[0] < function.body.count, function.body[users[0]].name == "kv.append",
           function.body[users[0]].operands[1].name == op.results[0].name {
            pendingRopes[op.results[0].name] = (op, x, heads, dim)
            return
        }
        let out = buffer(op.results[0].name, bytes: 4 * heads * dim)
        try emitRope(op, x: x, heads: heads, dim: dim, out: out, row: 0)
        locations[op.results[0].name] = Location(buffer: out, f16: false, elements: heads * dim)
    }

    mutating func emitRope(_ op: Operation, x: Location, heads: Int, dim: Int, out: Int, row: Int) throws {
        let theta = op.attributes["theta"]?.floatValue ?? 10000
        let interleaved = op.attributes["style"]?.stringValue == "interleaved"
        let table = ropeTable(theta: theta, headDim: dim)
        let k = kernel(DecodeStepKernels.rope(heads: heads, headDim: dim, interleaved: interleaved))
        launch(k, grid: Self.roundUp(heads * dim / 2, 256) / 256, block: 256,
               [.pointer(x.buffer, x.offset), .pointer(out), .pointer(table), .pointer(state), .integer(row)], computes: [op.results[0].name])
    }

    mutating func lowerAppend(_ op: Operation) throws {
        guard op.operands.count == 3, op.results.count == 2, case .kvCache(let c) = op.operands[0].type else {
            throw PTXError("kv.append: expected (cache, rows, start) → (cache, contents)")
        }
        let cache = try location(op.operands[0], op)
        if let p = pendingRopes.removeValue(forKey: op.operands[1].name) {
            try emitRope(p.op, x: p.x, heads: p.heads, dim: p.dim, out: cache.buffer, row: p.heads * p.dim)
        } else {
            let x = try location(op.operands[1], op)
            guard x.f16, x.elements == c.heads * c.headDim else {
                throw PTXError("kv.append %\(op.results[0].name): expected one f16 row of \(c.heads * c.headDim)")
            }
            let k = kernel(DecodeStepKernels.kvStore(elements: c.heads * c.headDim))
            launch(k, grid: Self.roundUp(c.heads * c.headDim, 256) / 256, block: 256,
                   [.pointer(x.buffer, x.offset), .pointer(cache.buffer), .pointer(state)], computes: [op.results[0].name])
        }
        locations[op.results[0].name] = cache
        locations[op.results[1].name] = cache
    }

    mutating func lowerAttention(_ op: Operation) throws {
        let q = try location(op.operands[0], op), k = try location(op.operands[1], op), v = try location(op.operands[2], op)
        guard let t = op.operands[0].type.tensor, t.shape.count == 3, let heads = t.shape[1].value, let dim = t.shape[2].value,
              case .tensor(let kt) = op.operands[1].type, kt.shape.count == 3, let kvHeads = kt.shape[1].value, !q.f16 else {
            throw PTXError("nn.attention %\(op.results[0].name): expected f32 queries [1, H, D] and cache contents [S, Hkv, D]")
        }
        let scale = op.attributes["scale"]?.floatValue ?? 1 / Double(dim).squareRoot()
        let padded = Self.roundUp(heads * dim, KernelWeightLayout.unitColumns)
        let out = buffer(op.results[0].name, bytes: 2 * padded)
        // Flash decoding: enough blocks to cover the GPU's SMs (about 128) with heads × splits.
        let splits = min(8, max(1, (128 + heads - 1) / heads))
        let entry = kernel(try DecodeStepKernels.attention(heads: heads, kvHeads: kvHeads, headDim: dim, capacity: capacity, splits: splits))
        var args: [DecodePlan.Argument] = [.pointer(q.buffer, q.offset), .pointer(k.buffer), .pointer(v.buffer), .pointer(out), .pointer(state),
                                           .float(Float(scale))]
        if splits > 1 {
            let key = "attention.scratch.\(heads).\(splits).\(dim)"
            let scratch = weightBuffers[key] ?? buffer(key, bytes: 4 * (heads * splits * (dim + 2) + heads))
            weightBuffers[key] = scratch
            args.append(.pointer(scratch))
        }
        launches.append(.init(kernel: entry, grid: [heads, splits, 1], block: [DecodeStepKernels.attentionThreads, 1, 1],
                              arguments: args, computes: [op.results[0].name]))
        locations[op.results[0].name] = Location(buffer: out, f16: true, elements: padded)
    }

    mutating func lowerSiluMul(_ silu: Operation, _ mul: Operation) throws {
        let gate = try location(silu.operands[0], silu)
        let other = mul.operands[0].name == silu.results[0].name ? mul.operands[1] : mul.operands[0]
        let up = try location(other, mul)
        guard gate.f16, up.f16, gate.elements == up.elements else {
            throw PTXError("nn.mul %\(mul.results[0].name): SwiGLU needs two f16 linear outputs of one width")
        }
        let n = gate.elements, padded = Self.roundUp(n, KernelWeightLayout.unitColumns)
        let out = buffer(mul.results[0].name, bytes: 2 * padded)
        let k = kernel(DecodeStepKernels.siluMul(elements: n))
        launch(k, grid: Self.roundUp(n, 256) / 256, block: 256, [.pointer(gate.buffer, gate.offset), .pointer(up.buffer, up.offset), .pointer(out)],
               computes: [silu.results[0].name, mul.results[0].name])
        locations[mul.results[0].name] = Location(buffer: out, f16: true, elements: padded)
    }
}

extension SyntheticWeights {
    /// The weights `f` reads as nn.embedding tables.
    public static func embeddingTables(in f: Function) -> Set<String> {
        var weightNames: [String: String] = [:]
        var out = Set<String>()
        for op in f.body {
            if op.name == "nn.weight", let n = op.attributes["name"]?.symbolValue { weightNames[op.results[0].name] = n }
            if op.name == "nn.embedding", let n = weightNames[op.operands[0].name] { out.insert(n) }
        }
        return out
    }
}
