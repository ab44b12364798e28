/// What `nmc compile --target ptx` writes beside `model.ptx` (as `plan.json`) and what `nmc-run`
/// executes: the device buffers of one decode step, how each weight buffer is filled (bytes of
/// `weights.bin`, the seeded generator, ones, the rotary table), and the kernel launches in
/// order — one CUDA graph. The step reads its token and position from the `state` buffer
/// (u32 token, u32 position) and leaves f16 logits in the `logits` buffer.
public struct DecodePlan: Codable, Sendable, Equatable {
    public var format = "nmc-ptx-decode-plan"
    public var version = 1
    /// The linear layers' kernel kind (fp16, int4, int4Sparse24); the output head may be fp16.
    public var linearKinds: [String]
    public var vocab: Int
    public var hidden: Int
    public var layers: Int
    public var capacity: Int
    /// The seed of synthetic weights, or nil when they come from `weights.bin`.
    public var syntheticSeed: UInt64?
    public var buffers: [Buffer]
    public var fills: [Fill]
    public var launches: [Launch]
    public var state: Int
    public var logits: Int
    /// Bytes of `weights.bin` the fills read.
    public var weightBytes: Int

    public struct Buffer: Codable, Sendable, Equatable {
        public var name: String
        public var bytes: Int
    }

    /// How a weight buffer's bytes `offset ..< offset + bytes` are filled before the first step.
    public struct Fill: Codable, Sendable, Equatable {
        public enum Source: String, Codable, Sendable { case file, synthetic, onesF32, ropeTable }
        public var buffer: Int
        public var offset: Int
        public var bytes: Int
        public var source: Source
        /// `file`: where in weights.bin.
        public var fileOffset: Int?
        /// `synthetic`: the generator and its arguments.
        public var generator: SyntheticWeightKernels.Kind?
        public var rows: Int?
        public var columns: Int?
        public var padded: Int?
        public var keys: SyntheticWeights.Keys?
        public var exponent: Int?
        /// `ropeTable`: its theta and head dim (capacity rows).
        public var theta: Double?
        public var headDim: Int?
    }

    public struct Argument: Codable, Sendable, Equatable {
        /// A buffer's address plus `offset` bytes, or (buffer nil) an integer / float.
        public var buffer: Int?
        public var offset: Int?
        public var u32: UInt32?
        public var f32: Float?
        public var null: Bool?
        public static func pointer(_ b: Int, _ offset: Int = 0) -> Argument { Argument(buffer: b, offset: offset) }
        public static func integer(_ v: Int) -> Argument { Argument(u32: UInt32(v)) }
        public static func float(_ v: Float) -> Argument { Argument(f32: v) }
        public static let none = Argument(null: true)
    }

    public struct Launch: Codable, Sendable, Equatable {
        public var kernel: String
        public var grid: [Int]
        public var block: [Int]
        public var arguments: [Argument]
        /// The NMIR results it computes (for reading the plan).
        public var computes: [String]
        /// A programmatic dependent launch (`nmc compile --gpu sm_90`): the kernel waits for the
        /// one before it with `griddepcontrol.wait`, so it may be started before that one ends.
        /// Absent (older plans) means false.
        public var dependent: Bool? = nil
    }
}
