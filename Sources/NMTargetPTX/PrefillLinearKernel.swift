/// A large-M linear kernel: `TiledLinearKernel` (`mma.sync`, sm_80) or `WarpgroupLinearKernel`
/// (`wgmma`, sm_90a). Parameters: weights, metadata, scales, x, y, workspace, counters, M.
public protocol PrefillLinearKernel: Sendable {
    var entry: String { get }
    var threads: Int { get }
    /// Dynamic shared memory a launch takes (the function's limit must be raised to it first).
    var dynamicSharedBytes: Int { get }
    /// The PTX target its instructions need.
    var target: String { get }
    /// Tokens of the boxes of the activations' tensor map a launch takes after M
    /// (`CUDADevice.tensorMapF16`, boxes of that many tokens × 64 columns); nil: none.
    var activationMapTokens: Int? { get }
    func ptx() -> String
    func launchShape(tokens: Int, multiprocessors: Int) -> (grid: (Int, Int, Int), block: (Int, Int, Int))
    /// The thread-block cluster a launch with this grid needs (`CUDADevice.launch`'s `cluster`); nil: none.
    func clusterShape(grid: (Int, Int, Int)) -> (Int, Int, Int)?
    /// Workspace bytes and counters (u32, zeroed once) that a launch with this grid needs.
    func scratch(grid: (Int, Int, Int)) -> (workspaceBytes: Int, counters: Int)
    /// The same for a launch of this grid for M tokens (where the grid alone does not say).
    func scratch(tokens: Int, grid: (Int, Int, Int)) -> (workspaceBytes: Int, counters: Int)
    /// Built for programmatic dependent launches (`griddepcontrol`, sm_90).
    var dependentLaunch: Bool { get }
}

extension TiledLinearKernel: PrefillLinearKernel {
    public var dynamicSharedBytes: Int { 0 }
    public var target: String { "sm_80" }
    public var activationMapTokens: Int? { nil }
    public func clusterShape(grid: (Int, Int, Int)) -> (Int, Int, Int)? { nil }
}

extension PrefillLinearKernel {
    /// Workspace bytes and counters that a launch for M tokens needs.
    public func scratch(tokens m: Int, multiprocessors: Int = 132) -> (workspaceBytes: Int, counters: Int) {
        scratch(tokens: m, grid: launchShape(tokens: m, multiprocessors: multiprocessors).grid)
    }

    public func scratch(tokens m: Int, grid: (Int, Int, Int)) -> (workspaceBytes: Int, counters: Int) { scratch(grid: grid) }
    public var dependentLaunch: Bool { false }
}
