/// PTX for `y = x · Wᵀ` at large M (prefill): compute-bound, so a block computes a 128-row ×
/// 128-token tile and reuses every operand many times. It reads the same weight layout as
/// `LinearKernel` (one layout per weight): each warp loads its A fragments straight from global
/// memory into registers (prefetching the next unit's while it computes), dequantizes them in
/// registers, and takes B (the activations) from shared memory with `ldmatrix`; the activations
/// arrive in 64-column stages: three, by `cp.async`, for 2:4 (whose k order is the natural one),
/// and two, through registers, for the dense kernels, which store each 4-byte pair where the
/// layout's k order (KernelWeightLayout) wants it, so that `ldmatrix` hands out the right fragments.
///
/// Warps: 8, as 4 (rows: 32 each, two row tiles) × 2 (tokens: 64 each, eight n8 tiles).
/// Grid: (rows / 128, ⌈M / 128⌉, S). Requires rows % 128 = 0 and an even number of K units.
/// With S > 1 (split K, for M too small to fill the GPU) split z takes an even run of units,
/// writes its f32 partial tile to a workspace and counts itself in; the last split of a tile to
/// arrive adds the others' partials and writes the result (one launch, no second kernel), then
/// resets the tile's counter to 0 for the next launch.
/// Parameters: weights, metadata, scales, x, y, workspace, counters (u64), M (u32).
public struct TiledLinearKernel: Sendable {
    public let weights: LinearKernel.Weights
    public let rows: Int
    public let columns: Int
    public var entry: String { "nm_tiled_linear_\(weights.rawValue)_n\(rows)_k\(columns)" }
    public let threads = 256
    static let blockRows = 128, blockTokens = 128
    /// Shared-memory row of one token's 64 columns, padded by 16 bytes so that the 8 rows an
    /// `ldmatrix` reads fall in different banks.
    static let rowStride = 144
    static let stageBytes = 128 * rowStride
    /// 2:4 stages: three, so that two copies are in flight while one is read; 128-byte rows
    /// whose 16-byte chunks are swizzled (chunk c of row r at c ^ (r % 8)) instead of padded,
    /// so that the three fit the 48 KB of static shared memory.
    static let sparseStageBytes = 128 * 128, sparseStages = 3
    var sharedBytes: Int { weights == .int4Sparse24 ? Self.sparseStages * Self.sparseStageBytes : 2 * Self.stageBytes }
    var units: Int { columns / KernelWeightLayout.unitColumns }
    var unitBytes: Int { [LinearKernel.Weights.fp16: 4096, .int4: 1024, .int4Sparse24: 512][weights]! }

    public static func supports(rows: Int, columns: Int) -> Bool {
        rows % blockRows == 0 && columns % (2 * KernelWeightLayout.unitColumns) == 0
    }

    public init(weights: LinearKernel.Weights, rows: Int, columns: Int) throws {
        guard Self.supports(rows: rows, columns: columns) else {
            throw PTXError("tiled linear kernel \(rows)x\(columns): needs rows a multiple of 128 and columns a multiple of 256")
        }
        self.weights = weights; self.rows = rows; self.columns = columns
    }

    /// (grid, block) for M tokens: the K splits double while the grid would leave more than half
    /// the SMs idle, each split keeping at least 8 units and none left empty (on an H100, 4096×4096
    /// at M = 128: 32 blocks, 4 splits, 56 → 26 us; at M = 512, 128 blocks, splitting made it slower).
    public func launchShape(tokens m: Int, multiprocessors: Int = 132) -> (grid: (Int, Int, Int), block: (Int, Int, Int)) {
        Self.splitLaunchShape(rowBlocks: rows / Self.blockRows, tokenBlocks: (m + Self.blockTokens - 1) / Self.blockTokens,
                              units: units, threads: threads, multiprocessors: multiprocessors)
    }

    /// (grid, block) of a large-M kernel: (row blocks, token blocks, K splits); the splits double
    /// while the grid would leave more than half the SMs idle, each split keeping at least 8 units
    /// and none left empty.
    static func splitLaunchShape(rowBlocks: Int, tokenBlocks: Int, units: Int, threads: Int,
                                 multiprocessors: Int) -> (grid: (Int, Int, Int), block: (Int, Int, Int)) {
        let blocks = rowBlocks * tokenBlocks
        var splits = 1
        while 2 * blocks * splits <= multiprocessors {
            let s = 2 * splits, chunk = 2 * ((units / 2 + s - 1) / s)
            guard chunk >= 8, (s - 1) * chunk < units else { break }
            splits = s
        }
        return ((rowBlocks, tokenBlocks, splits), (threads, 1, 1))
    }

    public func scratch(grid: (Int, Int, Int)) -> (workspaceBytes: Int, counters: Int) {
        Self.splitScratch(grid: grid, accumulators: 64, threads: threads)
    }

    /// Split K's workspace: every split of every tile keeps each thread's f32 accumulators.
    static func splitScratch(grid: (Int, Int, Int), accumulators: Int, threads: Int) -> (workspaceBytes: Int, counters: Int) {
        let tiles = grid.0 * grid.1
        return (grid.2 > 1 ? tiles * grid.2 * accumulators * threads * 4 : 0, tiles)
    }

    public func ptx() -> String {
        var b = PTXBuilder()
        let U = units, K = columns
        let (ptr, m) = Self.loadParameters(&b, entry: entry)
        let tid = b.reg("r"), lane = b.reg("r"), warp = b.reg("r"), g = b.reg("r"), t = b.reg("r")
        let wr = b.reg("r"), wt = b.reg("r"), tokenBase = b.reg("r"), mLast = b.reg("r")
        b.emit("mov.u32 \(tid), %tid.x;")
        b.emit("and.b32 \(lane), \(tid), 31;")
        b.emit("shr.u32 \(warp), \(tid), 5;")
        b.emit("shr.u32 \(g), \(lane), 2;")
        b.emit("and.b32 \(t), \(lane), 3;")
        b.emit("and.b32 \(wr), \(warp), 3;")
        b.emit("shr.u32 \(wt), \(warp), 2;")
        b.emit("mov.u32 \(tokenBase), %ctaid.y;")
        b.emit("mul.lo.u32 \(tokenBase), \(tokenBase), \(Self.blockTokens);")
        b.emit("sub.u32 \(mLast), \(m), 1;")
        // This warp's two row tiles: 8·ctaid.x + 2·wr + r.
        let tile0 = b.reg("r")
        b.emit("mov.u32 \(tile0), %ctaid.x;")
        b.emit("shl.b32 \(tile0), \(tile0), 3;")
        b.emit("mad.lo.u32 \(tile0), \(wr), 2, \(tile0);")
        // Per row tile r: the lane's weight, metadata and scale streams at unit 0.
        var wBase: [String] = [], metaBase: [String] = [], scaleBase: [String] = []
        for r in 0..<2 {
            let tileIndex = b.reg("r")
            b.emit("add.u32 \(tileIndex), \(tile0), \(r);")
            b.emit("mul.lo.u32 \(tileIndex), \(tileIndex), \(U);")  // tile·U
            let w = b.wide(ptr[0], tileIndex, times: unitBytes)
            wBase.append(b.wide(w, lane, times: 16))
            if weights == .int4Sparse24 { metaBase.append(b.wide(b.wide(ptr[1], tileIndex, times: 256), lane, times: 8)) }
            if weights != .fp16 { scaleBase.append(b.wide(b.wide(ptr[2], tileIndex, times: 32), g, times: 4)) }
        }
        // Activation staging: thread tid copies chunks tid + 256q (q = 0…3) of a stage's
        // 128 tokens × 8 chunks of 8 columns: token tid/8 + 32q, chunk c = tid % 8.
        let c = b.reg("r"), tok = b.reg("r")
        b.emit("and.b32 \(c), \(tid), 7;")
        b.emit("shr.u32 \(tok), \(tid), 3;")
        var xSource: [String] = []
        for q in 0..<4 {
            let token = b.reg("r")
            b.emit("add.u32 \(token), \(tokenBase), \(tok);")
            b.emit("add.u32 \(token), \(token), \(32 * q);")
            b.emit("min.u32 \(token), \(token), \(mLast);")  // past M: a valid row whose results are dropped
            let elem = b.reg("r")
            b.emit("mul.lo.u32 \(elem), \(token), \(K);")
            b.emit("mad.lo.u32 \(elem), \(c), 8, \(elem);")
            xSource.append(b.wide(ptr[3], elem, times: 2))
        }
        let smem = b.reg("r"), xDest = b.reg("r")
        b.emit("mov.u32 \(smem), \(entry)_stage;")
        if weights == .int4Sparse24 {
            let swz = b.reg("r")
            b.emit("and.b32 \(swz), \(tok), 7;")  // the row's low bits (32q leaves them alone)
            b.emit("xor.b32 \(swz), \(swz), \(c);")
            b.emit("mad.lo.u32 \(xDest), \(tok), 128, \(smem);")
            b.emit("mad.lo.u32 \(xDest), \(swz), 16, \(xDest);")
        } else {
            b.emit("mad.lo.u32 \(xDest), \(tok), \(Self.rowStride), \(smem);")
        }
        // The byte offsets inside a token's row where this thread's 4 pairs go: for 2:4 the
        // natural place (one 16-byte cp.async), for the dense kernels the layout's order
        // (column 16t' + 4s + 2e + o of the half is stored at 2·(16s + 8e + 2t' + o)).
        let pairOffsets: [String] = weights == .int4Sparse24 ? [] : (0..<4).map { pair in
            let o = b.reg("r"), tmp = b.reg("r")
            b.emit("and.b32 \(tmp), \(c), 1;")       // c % 2
            b.emit("shl.b32 \(o), \(tmp), 6;")        // 16·(2(c%2))·2 bytes = 64·(c%2)
            b.emit("add.u32 \(o), \(o), \((pair / 2) * 32 + (pair % 2) * 16);")  // + 2·(16·(pair/2) + 8e)
            b.emit("shr.u32 \(tmp), \(c), 1;")       // t' = c / 2
            b.emit("mad.lo.u32 \(o), \(tmp), 4, \(o);")  // + 2·2t'
            b.emit("add.u32 \(o), \(o), \(xDest);")
            return o
        }
        // ldmatrix row addresses: lane l supplies row l % 8 of matrix l / 8.
        let lrow = b.reg("r"), lmat = b.reg("r"), ldBase = b.reg("r")
        b.emit("and.b32 \(lrow), \(lane), 7;")
        b.emit("shr.u32 \(lmat), \(lane), 3;")
        var sparseLd: [String] = []
        if weights == .int4Sparse24 {
            // matrix jj = chunk 4·(s % 2) + jj of rows wt·64 + 8nt + l%8, swizzled by l % 8
            let row = b.reg("r")
            b.emit("mad.lo.u32 \(row), \(wt), 64, \(lrow);")
            b.emit("mad.lo.u32 \(row), \(row), 128, \(smem);")
            sparseLd = (0..<2).map { e in
                let chunk = b.reg("r"), addr = b.reg("r")
                b.emit("add.u32 \(chunk), \(lmat), \(4 * e);")
                b.emit("xor.b32 \(chunk), \(chunk), \(lrow);")
                b.emit("mad.lo.u32 \(addr), \(chunk), 16, \(row);")
                return addr
            }
        } else {
            // matrices (nt, e=0), (nt, e=1), (nt+1, e=0), (nt+1, e=1): token + 8·(l/16), column 8·((l/8)%2)
            let tmp = b.reg("r")
            b.emit("shr.u32 \(tmp), \(lmat), 1;")
            b.emit("mad.lo.u32 \(ldBase), \(tmp), 8, \(lrow);")
            b.emit("mad.lo.u32 \(ldBase), \(wt), 64, \(ldBase);")
            b.emit("mad.lo.u32 \(ldBase), \(ldBase), \(Self.rowStride), \(smem);")
            b.emit("and.b32 \(tmp), \(lmat), 1;")
            b.emit("mad.lo.u32 \(ldBase), \(tmp), 16, \(ldBase);")
        }
        let acc = (0..<2).map { _ in (0..<8).map { _ in b.regs("f", 4) } }
        for a in acc.joined().joined() { b.emit("mov.f32 \(a), 0f00000000;") }
        let consts = weights == .fp16 ? [] : b.int4Constants()

        // Weights of unit u (a register) for both row tiles, into `into`'s registers when given
        // (the loop's registers must be the same on every iteration).
        func loadWeights(_ u: String, into: [LinearKernel.UnitRegisters]? = nil) -> [LinearKernel.UnitRegisters] {
            let off = b.reg("rd"), metaOff = b.reg("rd"), scaleOff = b.reg("rd")
            b.emit("mul.wide.u32 \(off), \(u), \(unitBytes);")
            if weights == .int4Sparse24 { b.emit("mul.wide.u32 \(metaOff), \(u), 256;") }
            if weights != .fp16 { b.emit("mul.wide.u32 \(scaleOff), \(u), 32;") }
            return (0..<2).map { r in
                let a = b.reg("rd")
                b.emit("add.s64 \(a), \(wBase[r]), \(off);")
                var w: [String] = []
                for v in 0..<(unitBytes / 512) {
                    let regs = into.map { Array($0[r].w[(4 * v)..<(4 * v + 4)]) } ?? b.regs("r", 4)
                    b.emit("ld.global.nc.v4.u32 {\(regs.joined(separator: ", "))}, [\(a)+\(512 * v)];")
                    w += regs
                }
                var meta: [String] = []
                if weights == .int4Sparse24 {
                    let ma = b.reg("rd")
                    b.emit("add.s64 \(ma), \(metaBase[r]), \(metaOff);")
                    meta = into?[r].meta ?? b.regs("r", 2)
                    b.emit("ld.global.nc.v2.u32 {\(meta.joined(separator: ", "))}, [\(ma)];")
                }
                var scale: String? = nil
                if weights != .fp16 {
                    let sa = b.reg("rd"), s = into?[r].scale ?? b.reg("r")
                    b.emit("add.s64 \(sa), \(scaleBase[r]), \(scaleOff);")
                    b.emit("ld.global.nc.u32 \(s), [\(sa)];")
                    scale = s
                }
                return LinearKernel.UnitRegisters(w: w, meta: meta, scale: scale)
            }
        }
        // Issues the copy of unit u's half h into buffer h (2:4: cp.async, committed as a
        // group; dense: into registers, stored by `storeStage` after the current compute).
        func fetchStage(_ u: String, _ h: Int, into: [[String]]? = nil, buffer: String = "") -> [[String]] {
            let off = b.reg("rd")
            b.emit("mul.wide.u32 \(off), \(u), 256;")
            var staged: [[String]] = []
            var dest = xDest
            if weights == .int4Sparse24 {
                dest = b.reg("r")
                b.emit("add.u32 \(dest), \(xDest), \(buffer);")
            }
            for q in 0..<4 {
                let src = b.reg("rd")
                b.emit("add.s64 \(src), \(xSource[q]), \(off);")
                if weights == .int4Sparse24 {
                    b.emit("cp.async.cg.shared.global [\(dest)+\(q * 32 * 128)], [\(src)+\(128 * h)], 16;")
                } else {
                    let r = into?[q] ?? b.regs("r", 4)
                    b.emit("ld.global.nc.v4.u32 {\(r.joined(separator: ", "))}, [\(src)+\(128 * h)];")
                    staged.append(r)
                }
            }
            if weights == .int4Sparse24 { b.emit("cp.async.commit_group;") }
            return staged
        }
        func storeStage(_ staged: [[String]], _ h: Int) {
            for (q, r) in staged.enumerated() {
                for pair in 0..<4 {
                    b.emit("st.shared.b32 [\(pairOffsets[pair])+\(h * Self.stageBytes + q * 32 * Self.rowStride)], \(r[pair]);")
                }
            }
        }
        func dequantize(_ word: String, _ scales: (String, String)) -> [String] {
            b.dequantizeInt4(word, constants: consts, scales: scales)
        }
        // The tensor-core work of half h of a unit, from buffer h (2:4: the buffer at byte
        // offset `buffer`).
        func compute(_ regs: [LinearKernel.UnitRegisters], _ h: Int, buffer: String = "") {
            let scales: [(String, String)] = regs.map { unit in unit.scale.map { b.scalePairs($0) } ?? ("", "") }
            let stage = h * Self.stageBytes
            if weights == .int4Sparse24 {
                let ld = sparseLd.map { base -> String in
                    let a = b.reg("r")
                    b.emit("add.u32 \(a), \(base), \(buffer);")
                    return a
                }
                for s in (2 * h)..<(2 * h + 2) {
                    let a = (0..<2).map { r in dequantize(regs[r].w[s], scales[r]) }
                    for nt in 0..<8 {
                        let x = b.regs("r", 4)
                        b.emit("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {\(x.joined(separator: ", "))}, [\(ld[s % 2])+\(nt * 8 * 128)];")
                        for r in 0..<2 {
                            let d = "{\(acc[r][nt].joined(separator: ", "))}"
                            b.emit("mma.sp.sync.aligned.m16n8k32.row.col.f32.f16.f16.f32 \(d), {\(a[r].joined(separator: ", "))}, {\(x.joined(separator: ", "))}, \(d), \(regs[r].meta[s % 2]), \(s / 2);")
                        }
                    }
                }
            } else {
                for s in 0..<4 {
                    let a = (0..<2).map { r in
                        weights == .fp16 ? Array(regs[r].w[(16 * h + 4 * s)..<(16 * h + 4 * s + 4)]) : dequantize(regs[r].w[4 * h + s], scales[r])
                    }
                    for ntPair in 0..<4 {
                        let x = b.regs("r", 4)
                        b.emit("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {\(x.joined(separator: ", "))}, [\(ldBase)+\(stage + ntPair * 16 * Self.rowStride + s * 32)];")
                        for (i, nt) in [2 * ntPair, 2 * ntPair + 1].enumerated() {
                            for r in 0..<2 {
                                let d = "{\(acc[r][nt].joined(separator: ", "))}"
                                b.emit("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 \(d), {\(a[r].joined(separator: ", "))}, {\(x[2 * i]), \(x[2 * i + 1])}, \(d);")
                            }
                        }
                    }
                }
            }
        }

        // Prologue: unit 0's weights and first stage.
        let u = b.reg("r"), uNext = b.reg("r"), p = b.reg("p")
        // This split's units: [z·chunk, min(z·chunk + chunk, U)), chunk = 2·⌈U / 2S⌉.
        let split = b.reg("r"), splits = b.reg("r"), chunk = b.reg("r"), uEnd = b.reg("r"), uLast = b.reg("r")
        b.emit("mov.u32 \(split), %ctaid.z;")
        b.emit("mov.u32 \(splits), %nctaid.z;")
        b.emit("add.u32 \(chunk), \(splits), \(U / 2 - 1);")
        b.emit("div.u32 \(chunk), \(chunk), \(splits);")
        b.emit("shl.b32 \(chunk), \(chunk), 1;")
        b.emit("mul.lo.u32 \(u), \(split), \(chunk);")
        b.emit("add.u32 \(uEnd), \(u), \(chunk);")
        b.emit("min.u32 \(uEnd), \(uEnd), \(U);")
        b.emit("sub.u32 \(uLast), \(uEnd), 1;")
        // The 2:4 main loop: activation stages go through three buffers (byte offsets 0, 16 KB,
        // 32 KB, rotating), the copy of stage n + 2 issued while stage n is computed.
        func sparseLoop() {
            let stage = Self.sparseStageBytes, total = Self.sparseStages * stage
            let current = b.reg("r"), ahead = b.reg("r"), wrap = b.reg("p"), zero = b.reg("r"), second = b.reg("r")
            b.emit("mov.u32 \(zero), 0;")
            b.emit("mov.u32 \(second), \(stage);")
            _ = fetchStage(u, 0, buffer: zero)
            _ = fetchStage(u, 1, buffer: second)
            b.emit("mov.u32 \(current), 0;")
            let loop = b.label("sparse_units")
            b.place(loop)
            var regs = setA
            for half in 0..<2 {
                let unit = b.reg("r")
                b.emit("add.u32 \(unit), \(u), \(half);")
                b.emit("add.u32 \(uNext), \(unit), 1;")
                b.emit("min.u32 \(uNext), \(uNext), \(uLast);")  // past the end: a harmless reload
                let next = loadWeights(uNext, into: half == 0 ? nil : setA)
                for h in 0..<2 {
                    b.emit("cp.async.wait_group 1;")  // this stage has landed; the next may be in flight
                    b.emit("bar.sync 0;")             // … for every thread, and the oldest buffer is free
                    b.emit("add.u32 \(ahead), \(current), \(2 * stage);")
                    b.emit("setp.ge.u32 \(wrap), \(ahead), \(total);")
                    b.emit("@\(wrap) sub.u32 \(ahead), \(ahead), \(total);")
                    _ = fetchStage(uNext, h, buffer: ahead)  // stage n + 2: the same half of the next unit
                    compute(regs, h, buffer: current)
                    b.emit("add.u32 \(current), \(current), \(stage);")
                    b.emit("setp.ge.u32 \(wrap), \(current), \(total);")
                    b.emit("@\(wrap) mov.u32 \(current), 0;")
                }
                regs = next
            }
            b.emit("add.u32 \(u), \(u), 2;")
            b.emit("setp.lt.u32 \(p), \(u), \(uEnd);")
            b.emit("@\(p) bra \(loop);")
            b.emit("cp.async.wait_group 0;")
            b.emit("bar.sync 0;")
        }
        let setA = loadWeights(u)
        var current = setA
        if weights == .int4Sparse24 {
            sparseLoop()
        } else {
        var staging = [fetchStage(u, 0)]  // dense: two register sets, alternating
        var pending = 0
        let loop = b.label("units")
        b.place(loop)
        // Two units per iteration so that the weight registers alternate between two sets and
        // come back to the first at the loop's end.
        for half in 0..<2 {
            let unit = b.reg("r")
            b.emit("add.u32 \(unit), \(u), \(half);")
            b.emit("add.u32 \(uNext), \(unit), 1;")
            b.emit("min.u32 \(uNext), \(uNext), \(uLast);")  // past the end: a harmless reload
            let next = half == 0 ? loadWeights(uNext) : loadWeights(uNext, into: setA)
            for h in 0..<2 {
                if weights != .int4Sparse24 { storeStage(staging[pending], h) }
                let target = 1 - pending
                let fetched = fetchStage(h == 0 ? unit : uNext, 1 - h, into: staging.count > target ? staging[target] : nil)
                if staging.count <= target { staging.append(fetched) }
                if weights == .int4Sparse24 { b.emit("cp.async.wait_group 1;") }
                b.emit("bar.sync 0;")
                compute(current, h)
                b.emit("bar.sync 0;")
                pending = target
            }
            current = next
        }

        b.emit("add.u32 \(u), \(u), 2;")
        b.emit("setp.lt.u32 \(p), \(u), \(uEnd);")
        b.emit("@\(p) bra \(loop);")
        }
        Self.reduceSplits(&b, acc: Array(acc.joined().joined()), entry: entry, threads: threads, tid: tid, split: split, splits: splits,
                          workspace: ptr[5], counters: ptr[6])
        let row0 = b.reg("r"), tok0 = b.reg("r")
        b.emit("mad.lo.u32 \(row0), \(tile0), 16, \(g);")
        b.emit("mad.lo.u32 \(tok0), \(wt), 64, \(tokenBase);")
        b.emit("mad.lo.u32 \(tok0), \(t), 2, \(tok0);")
        Self.storeResults(&b, acc: acc, row0: row0, tok0: tok0, rows: rows, m: m, yPtr: ptr[4])

        let params = Self.parameterDeclarations(entry: entry)
        // INT4 kernels: two blocks per SM (128 registers a thread; with one, M = 4096 ran 40%
        // slower). FP16 keeps one: its 32 weight registers a tile would spill.
        let occupancy = weights == .fp16 ? [] : [".minnctapersm 2"]
        return ([".visible .entry \(entry)("] + params + [")", ".maxntid \(threads), 1, 1"] + occupancy + ["{"]
                + b.declarations + ["    .shared .align 128 .b8 \(entry)_stage[\(sharedBytes)];"]
                + b.body + ["\(entry)_EXIT:", "    ret;", "}", ""]).joined(separator: "\n")
    }

    /// The kernels' parameters (weights, metadata, scales, x, y, workspace, counters as global
    /// pointers; then M), loaded.
    static func loadParameters(_ b: inout PTXBuilder, entry: String) -> (pointers: [String], m: String) {
        var ptr: [String] = []
        for p in parameterNames(entry: entry) {
            let r = b.reg("rd"), g = b.reg("rd")
            b.emit("ld.param.u64 \(r), [\(p)];")
            b.emit("cvta.to.global.u64 \(g), \(r);")
            ptr.append(g)
        }
        let m = b.reg("r")
        b.emit("ld.param.u32 \(m), [\(entry)_m];")
        return (ptr, m)
    }

    static func parameterNames(entry: String) -> [String] {
        ["w", "meta", "scales", "x", "y", "workspace", "counters"].map { "\(entry)_\($0)" }
    }

    /// The entry's parameter list.
    static func parameterDeclarations(entry: String) -> [String] {
        parameterNames(entry: entry).map { "    .param .u64 \($0)," } + ["    .param .u32 \(entry)_m"]
    }

    /// Accumulator c of (r, nt) (the m16n8 accumulator layout): row row0 + 16r + 8·(c/2), token
    /// tok0 + 8nt + c%2; f16, tokens ≥ M skipped.
    static func storeResults(_ b: inout PTXBuilder, acc: [[[String]]], row0: String, tok0: String, rows: Int, m: String, yPtr: String) {
        for nt in 0..<acc[0].count {
            for e in 0..<2 {
                let token = b.reg("r"), valid = b.reg("p"), skip = b.label("skip")
                b.emit("add.u32 \(token), \(tok0), \(8 * nt + e);")
                b.emit("setp.lt.u32 \(valid), \(token), \(m);")
                b.emit("@!\(valid) bra \(skip);")
                let base = b.reg("rd"), addr = b.reg("rd")
                b.emit("mul.wide.u32 \(base), \(token), \(rows * 2);")
                b.emit("add.s64 \(base), \(base), \(yPtr);")
                let rowOff = b.reg("rd")
                b.emit("mul.wide.u32 \(rowOff), \(row0), 2;")
                b.emit("add.s64 \(addr), \(base), \(rowOff);")
                for r in 0..<acc.count {
                    for half in 0..<2 {
                        let h = b.reg("h")
                        b.emit("cvt.rn.f16.f32 \(h), \(acc[r][nt][2 * half + e]);")
                        b.emit("st.global.b16 [\(addr)+\((16 * r + 8 * half) * 2)], \(h);")
                    }
                }
                b.place(skip)
            }
        }
    }
}
