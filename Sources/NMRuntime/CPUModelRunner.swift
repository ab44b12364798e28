import NMIR

/// A LLaMA-style model's compiled `@prefill` and `@decode` with their KV caches: runs tokens at
/// the current position and returns their logits. Shared by `nmc run` and `nmc-run`.
public final class CPUModelRunner {
    public let program: CPUExecutable
    private let cacheBuffers: [AlignedBuffer]
    private let idsBuffer: AlignedBuffer
    private let startBuffer = AlignedBuffer(byteCount: 4)
    /// Tokens already in the caches.
    public private(set) var position = 0
    /// Positions the caches hold.
    public let contextLength: Int

    public init(program: CPUExecutable, module: Module) throws {
        guard let prefill = module.function(named: "prefill"), module.function(named: "decode") != nil else {
            throw CPURuntimeError("the model has no @prefill and @decode functions")
        }
        let caches = try prefill.arguments.dropFirst(2).map { arg -> KVCacheType in
            guard let c = arg.type.kvCache else { throw CPURuntimeError("@prefill argument %\(arg.name) is not a kv.cache") }
            return c
        }
        self.program = program
        cacheBuffers = caches.map { AlignedBuffer(byteCount: $0.capacity * $0.heads * $0.headDim * 4) }
        contextLength = caches.first?.capacity ?? 0
        idsBuffer = AlignedBuffer(byteCount: max(contextLength, 1) * 4)
    }

    /// Forgets the tokens in the caches.
    public func reset() { position = 0 }

    /// Runs `tokens` at the current position; returns `tokens.count × vocab` logits.
    public func forward(_ tokens: [Int32]) throws -> [Float] {
        guard !tokens.isEmpty else { return [] }
        guard position + tokens.count <= contextLength else {
            throw CPURuntimeError("\(position + tokens.count) tokens exceed the context of \(contextLength)")
        }
        let function = tokens.count == 1 ? "decode" : "prefill"
        let ids = idsBuffer.pointer.assumingMemoryBound(to: Int32.self)
        for (i, t) in tokens.enumerated() { ids[i] = t }
        startBuffer.pointer.storeBytes(of: Int32(position), as: Int32.self)
        let dynamic = program.abi.function(named: function)?.arguments.first?.dims.contains(nil) == true ? [tokens.count] : []
        let result = try program.call(function, arguments: [idsBuffer.pointer, startBuffer.pointer] + cacheBuffers.map(\.pointer),
                                      dynamicDims: dynamic)
        guard let logits = result.tensors.first else { throw CPURuntimeError("@\(function) returned no logits") }
        position += tokens.count
        return Array(UnsafeBufferPointer(start: logits.pointer.assumingMemoryBound(to: Float.self), count: logits.dims.reduce(1, *)))
    }
}
