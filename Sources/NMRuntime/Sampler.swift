#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Picks the next token from logits: greedy at temperature 0, otherwise softmax(logits / T)
/// restricted to the top-k tokens and then to the smallest set whose probability reaches top-p.
public struct Sampler {
    public var temperature: Double
    public var topK: Int
    public var topP: Double
    private var rng: SplitMix64

    public init(temperature: Double = 0, topK: Int = 40, topP: Double = 0.95, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.rng = SplitMix64(seed: seed)
    }

    public mutating func next(_ logits: ArraySlice<Float>) -> Int {
        let base = logits.startIndex
        if temperature <= 0 {
            var best = base
            for i in logits.indices where logits[i] > logits[best] { best = i }
            return best - base
        }
        var candidates = logits.indices.map { ($0 - base, Double(logits[$0])) }
        candidates.sort { $0.1 > $1.1 }
        if topK > 0 { candidates = Array(candidates.prefix(topK)) }
        let maxLogit = candidates[0].1
        var probabilities = candidates.map { exp(($0.1 - maxLogit) / temperature) }
        let total = probabilities.reduce(0, +)
        probabilities = probabilities.map { $0 / total }
        var cumulative = 0.0, cut = probabilities.count
        for (i, p) in probabilities.enumerated() {
            cumulative += p
            if cumulative >= topP { cut = i + 1; break }
        }
        let kept = probabilities.prefix(cut)
        let mass = kept.reduce(0, +)
        var r = rng.nextDouble() * mass
        for (i, p) in kept.enumerated() {
            r -= p
            if r <= 0 { return candidates[i].0 }
        }
        return candidates[cut - 1].0
    }
}

/// A small, fast, seedable generator (Steele, Lea and Flood's SplitMix64).
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    public mutating func nextDouble() -> Double { Double(next() >> 11) * 0x1.0p-53 }
}
