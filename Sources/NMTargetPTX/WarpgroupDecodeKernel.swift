/// PTX for `y = x · Wᵀ` at decode's M (16 tokens a block) with 2:4 INT4 weights on Hopper
/// (`sm_90a`) by warpgroup MMA: experimental (`nmc-run --wgmma-decode`). Session 25 of
/// docs/performance-gpu.md measured it against the decode kernels at M = 16:
/// - slower at 4096² (4.76 against 4.58 us at best) and at 11008×4096;
/// - within 2% at 4096×11008;
/// - without the grid-dependency wait, faster (3.30 against 3.90 us at 4096²), so its loss is
///   in the path after the wait;
/// - slower with two blocks an SM than with one (`oneBlockPerSM`).
/// Session 26: two blocks an SM were slow because the next launch's weight loads, issued as soon
/// as it may start, queued ahead of this launch's activation copies; with the next launch let
/// start once the first activations are in (`trigger`), 4096² went from 6.01 to 4.64 us (the
/// decode kernel: 4.62). Dequantizing every stage before the wait, the tensor map prefetched and
/// copies asked for by four warps (built in sessions 25 and 26, measured no faster, removed: see
/// the docs) and weights only prefetched before the wait (`prefetchWeights`) did not help.
///
/// `WarpgroupLinearKernel` with 16 tokens a block measured 26–60% slower than the decode kernels
/// (`LinearKernel`) at M = 16: each warpgroup walks a long chain of stages, each waiting on the
/// one before and on a block barrier, and splits K through global memory. This kernel is shaped
/// like the decode kernels instead: the W warpgroups of a block all multiply the same 64 rows and
/// cut K between them (warpgroup q of the S·W of a row block, S blocks a cluster, takes units q,
/// q + SW, q + 2SW, …: R = ⌈U / SW⌉ at most), and
/// - each warp loads all of its R units' weights (16 bytes of values, 8 of metadata, 4 of
///   scales a lane, in `KernelWeightLayout`'s order) into registers at the start;
/// - one thread of each warpgroup asks the bulk tensor copy engine for all of its units'
///   activations at once (two stages of 64 columns × 16 tokens a unit, 2 KB each, 128-byte
///   swizzle, on one mbarrier), so there is one wait, no block barrier a stage and no buffer reuse;
/// - the stages' `wgmma.mma_async.sp.m64n16k32` pairs queue back to back, the next stage's A
///   fragments dequantized (`WarpgroupLinearKernel`'s way) into the register set that the stage
///   two back read, after `wgmma.wait_group 1` has retired it;
/// - the warpgroups' 8 f32 sums a thread meet in shared memory, the cluster's blocks in block
///   0's (`st.shared::cluster` into slots past the activations, one cluster barrier), and block
///   0's first warpgroup stores the 64 × 16 tile.
///
/// `dependentLaunch`: every block first (or where `trigger` says) lets the next kernel start
/// (`griddepcontrol.launch_dependents`) and loads its weights with weak loads (`ld.global`, which
/// ptxas keeps above the wait, where it sinks `.nc` ones: session 23), then waits for the kernel
/// ahead (`griddepcontrol.wait`) before it asks for the activations; its outputs are stored after
/// that too.
///
/// Grid: (rows / 64, ⌈M / 16⌉, S), clusters of (1, 1, S). Parameters: those of
/// `TiledLinearKernel` (the workspace and counters unused), then the activations' tensor map.
public struct WarpgroupDecodeKernel: PrefillLinearKernel {
    public let rows: Int
    public let columns: Int
    /// Warpgroups a block (2 or 4), cutting K between them.
    public let warpgroups: Int
    /// Blocks of a cluster (1, 2 or 4) cutting K between them, reduced in block 0.
    public let splits: Int
    public let dependentLaunch: Bool
    /// Units whose activations come on one mbarrier (all of a warpgroup's by default, one wait;
    /// fewer, so that the first units' `wgmma`s start before the last units' activations are in:
    /// experimental, `--wgmma-decode-units-per-wait`).
    public let unitsPerWait: Int
    /// Ask for more than half an SM's shared memory, so that one block of this kernel runs on an
    /// SM at a time, also beside the next launch's (a measuring aid, `--wgmma-decode-one-block`).
    public let oneBlockPerSM: Bool
    /// Before the grid-dependency wait only `prefetch.global.L2` each weight line, and load the
    /// weights into registers after it, so that the next launch's blocks, where they sit beside
    /// this one's, hold no loads in flight while it finishes (experimental,
    /// `--wgmma-decode-prefetch-weights`).
    public let prefetchWeights: Bool
    /// Where the block lets the next kernel start (`griddepcontrol.launch_dependents`).
    public enum Trigger: String, CaseIterable, Sendable {
        /// First thing, before the weights' loads.
        case first
        /// Once the block has asked for its activations (after the grid-dependency wait).
        case issued
        /// Once the first activations are in (the first mbarrier wait).
        case landed
        /// After the last `wgmma`, before the sums.
        case computed
    }
    /// Where the next kernel is let start: later than `first`, so that where its blocks sit beside
    /// this one's their weight loads do not queue ahead of this one's copies (experimental,
    /// `--wgmma-decode-trigger`; measured in session 26: `landed` took 4096² at M = 16 from 6.01
    /// to 4.64 us, two blocks an SM; in session 27 `issued` was as good, `computed` 0.15 us slower).
    public let trigger: Trigger

    /// The experimental choices as nmc-run passes them.
    public struct Choices: Sendable {
        public var unitsPerWait: Int?
        public var oneBlockPerSM: Bool
        public var prefetchWeights: Bool
        public var trigger: Trigger
        public init(unitsPerWait: Int? = nil, oneBlockPerSM: Bool = false, prefetchWeights: Bool = false, trigger: Trigger = .first) {
            self.unitsPerWait = unitsPerWait; self.oneBlockPerSM = oneBlockPerSM; self.prefetchWeights = prefetchWeights
            self.trigger = trigger
        }
    }
    public static let blockTokens = 16
    static let unitBytes = 2 * 2048   // a unit's two activation stages of 64 columns × 16 tokens
    static let slotBytes = 128 * 32   // a warpgroup's 8 f32 sums a thread

    var units: Int { columns / KernelWeightLayout.unitColumns }
    /// Units a warpgroup takes at most (the last may be missing for some: `⌈U / SW⌉`).
    var unitsPerWarpgroup: Int { Self.unitsPerWarpgroup(columns: columns, warpgroups: warpgroups, splits: splits) }
    static func unitsPerWarpgroup(columns: Int, warpgroups: Int, splits: Int) -> Int {
        (columns / KernelWeightLayout.unitColumns + splits * warpgroups - 1) / (splits * warpgroups)
    }
    var activationBytes: Int { warpgroups * unitsPerWarpgroup * Self.unitBytes }
    var clusterSlots: Int { activationBytes }   // the cluster's other blocks' sums, past the activations
    var barriers: Int { clusterSlots + (splits - 1) * Self.slotBytes }
    public var threads: Int { 128 * warpgroups }
    /// mbarriers a warpgroup.
    var barriersPerWarpgroup: Int { (unitsPerWarpgroup + unitsPerWait - 1) / unitsPerWait }
    public var dynamicSharedBytes: Int { max(barriers + 8 * warpgroups * barriersPerWarpgroup, oneBlockPerSM ? 116 * 1024 : 0) }
    public var target: String { "sm_90a" }
    public var activationMapTokens: Int? { Self.blockTokens }
    public var entry: String {
        "nm_wgmma_decode_int4Sparse24_n\(rows)_k\(columns)_g\(warpgroups)_s\(splits)" + (barriersPerWarpgroup > 1 ? "_u\(unitsPerWait)" : "") + (oneBlockPerSM ? "_o" : "") + (prefetchWeights ? "_w" : "") + (trigger != .first && dependentLaunch ? "_t\(trigger.rawValue)" : "") + (dependentLaunch ? "_d" : "")
    }

    public init(rows: Int, columns: Int, warpgroups: Int = 4, splits: Int = 1, dependentLaunch: Bool = false,
                choices: Choices = Choices()) throws {
        self.rows = rows; self.columns = columns; self.warpgroups = warpgroups; self.splits = splits
        self.dependentLaunch = dependentLaunch; self.oneBlockPerSM = choices.oneBlockPerSM
        self.prefetchWeights = choices.prefetchWeights; self.trigger = choices.trigger
        let R = Self.unitsPerWarpgroup(columns: columns, warpgroups: warpgroups, splits: splits)
        self.unitsPerWait = min(choices.unitsPerWait ?? R, R)
        guard [2, 4].contains(warpgroups), [1, 2, 4].contains(splits), rows % 64 == 0, columns % KernelWeightLayout.unitColumns == 0,
              units >= splits * warpgroups, unitsPerWait >= 1, dynamicSharedBytes <= 227 * 1024 else {
            throw PTXError("warpgroup decode kernel \(rows)x\(columns) with \(warpgroups) warpgroups and \(splits) splits: needs 2 or 4 warpgroups, 1, 2 or 4 splits, rows a multiple of 64, a unit of 128 columns for each warpgroup of a row block at least, and its activations within 227 KB of shared memory")
        }
    }

    public func launchShape(tokens m: Int, multiprocessors: Int = 132) -> (grid: (Int, Int, Int), block: (Int, Int, Int)) {
        ((rows / 64, (m + Self.blockTokens - 1) / Self.blockTokens, splits), (threads, 1, 1))
    }
    public func clusterShape(grid: (Int, Int, Int)) -> (Int, Int, Int)? { splits > 1 ? (1, 1, splits) : nil }
    public func scratch(grid: (Int, Int, Int)) -> (workspaceBytes: Int, counters: Int) { (0, 0) }
    /// Blocks a cluster for `rows`: enough row blocks × splits to fill an H100's 132 SMs about
    /// once (4096 rows: 64 row blocks, 2 splits; 11008: 172, none).
    public static func standardSplits(rows: Int) -> Int { rows / 64 >= 128 ? 1 : rows / 64 >= 64 ? 2 : 4 }

    public func ptx() -> String {
        var b = PTXBuilder()
        let U = units, W = warpgroups, Q = splits * warpgroups, R = unitsPerWarpgroup
        let (ptr, m) = TiledLinearKernel.loadParameters(&b, entry: entry)
        func letTheNextStart(_ here: Trigger) { if dependentLaunch && trigger == here { b.emit("griddepcontrol.launch_dependents;") } }
        letTheNextStart(.first)
        let tid = b.reg("r"), lane = b.reg("r"), warp = b.reg("r"), g = b.reg("r"), t = b.reg("r")
        let group = b.reg("r"), l = b.reg("r"), q = b.reg("r"), tile = b.reg("r"), tokenBase = b.reg("r")
        b.emit("mov.u32 \(tid), %tid.x;")
        b.emit("and.b32 \(lane), \(tid), 31;")
        b.emit("shr.u32 \(warp), \(tid), 5;")
        b.emit("shr.u32 \(g), \(lane), 2;")
        b.emit("and.b32 \(t), \(lane), 3;")
        b.emit("shr.u32 \(group), \(tid), 7;")
        b.emit("and.b32 \(l), \(tid), 127;")
        b.emit("mov.u32 \(q), %ctaid.z;")
        b.emit("mad.lo.u32 \(q), \(q), \(W), \(group);")             // this warpgroup among the row block's Q
        b.emit("and.b32 \(tile), \(warp), 3;")
        let rowBlock = b.reg("r")
        b.emit("mov.u32 \(rowBlock), %ctaid.x;")
        b.emit("mad.lo.u32 \(tile), \(rowBlock), 4, \(tile);")       // the warp's row tile: 16 of the block's 64 rows
        b.emit("mov.u32 \(tokenBase), %ctaid.y;")
        b.emit("shl.b32 \(tokenBase), \(tokenBase), 4;")
        // The last unit (q + (R − 1)·Q) exists for the first U − (R − 1)·Q warpgroups only.
        let hasLast = b.reg("p")
        b.emit("setp.lt.u32 \(hasLast), \(q), \(U - (R - 1) * Q);")

        // All of the warp's weights: unit k = q + kQ of its row tile, at immediate offsets.
        let firstUnit = b.reg("r")
        b.emit("mad.lo.u32 \(firstUnit), \(tile), \(U), \(q);")
        let wBase = b.wide(b.wide(ptr[0], firstUnit, times: 512), lane, times: 16)
        let metaBase = b.wide(b.wide(ptr[1], firstUnit, times: 256), lane, times: 8)
        let scaleBase = b.wide(b.wide(ptr[2], firstUnit, times: 32), g, times: 4)
        let load = dependentLaunch ? "ld.global" : "ld.global.nc"
        let weights = (0..<R).map { _ in (values: b.regs("r", 4), meta: b.regs("r", 2), scale: b.reg("r")) }
        // Unit k's loads (or, `prefetchWeights` before the wait, its lines' L2 prefetches).
        func loadWeights(prefetching: Bool) {
            for (k, w) in weights.enumerated() {
                let on = k == R - 1 ? "@\(hasLast) " : ""
                let addresses = ["\(wBase)+\(512 * Q * k)", "\(metaBase)+\(256 * Q * k)", "\(scaleBase)+\(32 * Q * k)"]
                if prefetching {
                    for a in addresses { b.emit("\(on)prefetch.global.L2 [\(a)];") }
                    continue
                }
                b.emit("\(on)\(load).v4.u32 {\(w.values.joined(separator: ", "))}, [\(addresses[0])];")
                b.emit("\(on)\(load).v2.u32 {\(w.meta.joined(separator: ", "))}, [\(addresses[1])];")
                b.emit("\(on)\(load).u32 \(w.scale), [\(addresses[2])];")
            }
        }
        loadWeights(prefetching: prefetchWeights)

        // Register sets of a stage's operands (A of both k32 steps, both metadata words): two,
        // stage s in set s % 2. `prepare` dequantizes stage s = 2k + h into its set.
        let consts = b.int4Constants()
        let sets = (0..<2).map { _ in (a: (0..<2).map { _ in b.regs("r", 4) }, meta: b.regs("r", 2)) }
        func set(_ s: Int) -> (a: [[String]], meta: [String]) { sets[s % 2] }
        func prepare(_ s: Int) {
            let (k, h) = (s / 2, s % 2), w = weights[k]
            let scales = b.scalePairs(w.scale)
            for j in 0..<2 {
                let v = b.dequantizeInt4(w.values[2 * h + j], constants: consts, scales: scales)
                for (d, x) in zip(set(s).a[j], v) { b.emit("mov.b32 \(d), \(x);") }
                b.emit("mov.b32 \(set(s).meta[j]), \(w.meta[j]);")
            }
        }

        // Shared memory: warpgroup w's activations at w · R units, then the cluster's slots, then
        // the mbarriers, B a warpgroup (one a wait: `unitsPerWait` units each). Thread 0 of each
        // warpgroup asks for its units' stages at once.
        let B = barriersPerWarpgroup
        let smem = b.reg("r"), region = b.reg("r"), bar = b.reg("r"), xmap = b.reg("rd"), leader = b.reg("p")
        b.emit("mov.u32 \(smem), \(entry)_stage;")
        b.emit("mad.lo.u32 \(region), \(group), \(R * Self.unitBytes), \(smem);")
        b.emit("mad.lo.u32 \(bar), \(group), \(8 * B), \(smem);")
        b.emit("add.u32 \(bar), \(bar), \(barriers);")
        b.emit("mov.u64 \(xmap), \(entry)_xmap;")
        b.emit("cvta.param.u64 \(xmap), \(xmap);")
        b.emit("setp.eq.u32 \(leader), \(l), 0;")
        func barrier(_ k: Int) -> String { k == 0 ? bar : "\(bar)+\(8 * k)" }  // the warpgroup's k-th mbarrier
        for k in 0..<B { b.emit("@\(leader) mbarrier.init.shared::cta.b64 [\(barrier(k))], 1;") }
        b.emit("@\(leader) fence.mbarrier_init.release.cluster;")
        b.emit("bar.sync 0;")
        if dependentLaunch { b.emit("griddepcontrol.wait;") }  // the activations are the kernel ahead's output
        if prefetchWeights { loadWeights(prefetching: false) }
        let state = b.reg("rd"), leaderLast = b.reg("p")
        b.emit("and.pred \(leaderLast), \(leader), \(hasLast);")
        let n = unitsPerWait
        for j in 0..<B {  // mbarrier j: units jn … (j + 1)n − 1; the last one's bytes for some warpgroups only
            let count = min(n, R - j * n)
            if j < B - 1 {
                b.emit("@\(leader) mbarrier.arrive.expect_tx.shared::cta.b64 \(state), [\(barrier(j))], \(count * Self.unitBytes);")
            } else {
                let bytes = b.reg("r")
                b.emit("selp.u32 \(bytes), \(count * Self.unitBytes), \((count - 1) * Self.unitBytes), \(hasLast);")
                b.emit("@\(leader) mbarrier.arrive.expect_tx.shared::cta.b64 \(state), [\(barrier(j))], \(bytes);")
            }
        }
        for k in 0..<R {
            let on = k == R - 1 ? leaderLast : leader
            for h in 0..<2 {
                let column = b.reg("r")
                b.emit("mad.lo.u32 \(column), \(q), 128, \(128 * Q * k + 64 * h);")
                b.emit("@\(on) cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [\(region)+\(Self.unitBytes * k + 2048 * h)], [\(xmap), {\(column), \(tokenBase)}], [\(barrier(k / n))];")
            }
        }
        letTheNextStart(.issued)

        let acc = (0..<2).map { _ in b.regs("f", 4) }
        for a in acc.joined() { b.emit("mov.f32 \(a), 0f00000000;") }
        let accList = "{\(acc.joined().joined(separator: ", "))}"
        let one = b.reg("r"), scaleD = b.reg("p")
        b.emit("mov.u32 \(one), 1;")
        b.emit("setp.ne.u32 \(scaleD), \(one), 0;")  // D = A·B + D
        // The descriptors' low word: the warpgroup's region / 16, leading byte offset 1 (as
        // `WarpgroupLinearKernel.descriptors`: 128-byte swizzle, 8-row groups 1024 bytes apart).
        let descLow = b.reg("r")
        b.emit("shr.u32 \(descLow), \(region), 4;")
        b.emit("or.b32 \(descLow), \(descLow), 0x10000;")
        prepare(0)
        let arrived = b.reg("p"), skipLast = b.label("last_unit_done")
        for s in 0..<(2 * R) {
            let (k, h) = (s / 2, s % 2)
            if s == 2 * (R - 1) { b.emit("@!\(hasLast) bra \(skipLast);") }  // uniform in the warpgroup
            if h == 0 && k % n == 0 {  // the activations of units k … k + n − 1
                let wait = b.label("activations_wait")
                b.place(wait)
                b.emit("mbarrier.try_wait.parity.shared::cta.b64 \(arrived), [\(barrier(k / n))], 0;")
                b.emit("@!\(arrived) bra \(wait);")
                if s == 0 { letTheNextStart(.landed) }
            }
            b.emit("wgmma.fence.sync.aligned;")
            for j in 0..<2 {
                let desc = WarpgroupLinearKernel.descriptor(&b, low: descLow, plus: (Self.unitBytes * k + 2048 * h) / 16 + 4 * j)
                b.emit("wgmma.mma_async.sp.sync.aligned.m64n16k32.f32.f16.f16 \(accList), {\(set(s).a[j].joined(separator: ", "))}, \(desc), \(set(s).meta[j]), \(h), \(scaleD), 1, 1, 0;")
            }
            b.emit("wgmma.commit_group.sync.aligned;")
            if s + 1 < 2 * R {
                b.emit("wgmma.wait_group.sync.aligned 1;")   // stage s − 1 retired: its set is free
                prepare(s + 1)
            }
        }
        b.place(skipLast)
        b.emit("wgmma.wait_group.sync.aligned 0;")
        letTheNextStart(.computed)

        // The warpgroups' sums in shared memory (over the activations, every wgmma done), then
        // the cluster's in block 0's slots; warpgroup 0 of block 0 adds them and stores.
        let flat = Array(acc.joined())
        func addSlot(_ at: String) {
            for half in 0..<2 {
                let v = b.regs("f", 4)
                b.emit("ld.shared.v4.f32 {\(v.joined(separator: ", "))}, [\(at)+\(16 * half)];")
                for (a, x) in zip(flat[(4 * half)...].prefix(4), v) { b.emit("add.f32 \(a), \(a), \(x);") }
            }
        }
        func storeSlot(_ at: String, cluster: Bool) {
            for half in 0..<2 {
                b.emit("st.shared\(cluster ? "::cluster" : "").v4.f32 [\(at)+\(16 * half)], {\(flat[(4 * half)...].prefix(4).joined(separator: ", "))};")
            }
        }
        // This thread's part of slot `index` − 1 (a warpgroup or cluster block 1 on), `offset` bytes in.
        func slotAddress(_ index: String, offset: Int) -> String {
            let at = b.reg("r")
            b.emit("sub.u32 \(at), \(index), 1;")
            b.emit("mad.lo.u32 \(at), \(at), 128, \(l);")
            b.emit("mad.lo.u32 \(at), \(at), 32, \(smem);")
            if offset > 0 { b.emit("add.u32 \(at), \(at), \(offset);") }
            return at
        }
        let first = b.reg("p"), done = b.label("sums_stored")
        b.emit("bar.sync 0;")
        b.emit("setp.eq.u32 \(first), \(group), 0;")
        b.emit("@\(first) bra \(done);")
        storeSlot(slotAddress(group, offset: 0), cluster: false)
        b.place(done)
        b.emit("bar.sync 0;")
        let home = b.reg("r")
        b.emit("mad.lo.u32 \(home), \(l), 32, \(smem);")
        let gathered = b.label("warpgroups_added")
        b.emit("@!\(first) bra \(gathered);")
        for w in 1..<W { addSlot("\(home)+\((w - 1) * Self.slotBytes)") }
        b.place(gathered)
        let isHome = b.reg("p")
        if splits > 1 {
            let rank = b.reg("r"), sender = b.reg("p"), sent = b.label("cluster_sums_sent"), remote = b.reg("r"), zero = b.reg("r")
            b.emit("mov.u32 \(rank), %cluster_ctarank;")
            b.emit("setp.ne.u32 \(sender), \(rank), 0;")
            b.emit("and.pred \(sender), \(sender), \(first);")
            b.emit("@!\(sender) bra \(sent);")
            let local = slotAddress(rank, offset: clusterSlots)
            b.emit("mov.u32 \(zero), 0;")
            b.emit("mapa.shared::cluster.u32 \(remote), \(local), \(zero);")
            storeSlot(remote, cluster: true)
            b.place(sent)
            b.emit("barrier.cluster.arrive.release.aligned;")
            b.emit("barrier.cluster.wait.acquire.aligned;")
            b.emit("setp.eq.u32 \(isHome), \(rank), 0;")
            b.emit("and.pred \(isHome), \(isHome), \(first);")
            let added = b.label("cluster_sums_added")
            b.emit("@!\(isHome) bra \(added);")
            for r in 1..<splits { addSlot("\(home)+\(clusterSlots + (r - 1) * Self.slotBytes)") }
            b.place(added)
        } else {
            b.emit("mov.pred \(isHome), \(first);")
        }
        b.emit("@!\(isHome) bra \(entry)_EXIT;")
        let row0 = b.reg("r"), tok0 = b.reg("r")
        b.emit("mad.lo.u32 \(row0), \(tile), 16, \(g);")
        b.emit("mad.lo.u32 \(tok0), \(t), 2, \(tokenBase);")
        TiledLinearKernel.storeResults(&b, acc: [acc], row0: row0, tok0: tok0, rows: rows, m: m, yPtr: ptr[4])

        let header: [String] = ["// dynamic shared memory: \(W) warpgroups' activations (\(R) units of \(Self.unitBytes) bytes each), \(splits - 1) cluster slots of \(Self.slotBytes) bytes, \(W * B) mbarriers",
                                ".extern .shared .align 1024 .b8 \(entry)_stage[];", ".visible .entry \(entry)("]
        var parameters = TiledLinearKernel.parameterDeclarations(entry: entry)
        parameters[parameters.count - 1] += ","
        parameters.append("    .param .align 64 .b8 \(entry)_xmap[128]")
        let declaration: [String] = parameters + [")", ".maxntid \(threads), 1, 1", "{"]
        let lines: [String] = header + declaration + b.declarations + b.body + ["\(entry)_EXIT:", "    ret;", "}", ""]
        return lines.joined(separator: "\n")
    }
}
