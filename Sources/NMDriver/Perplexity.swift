import Foundation

/// Perplexity over non-overlapping windows of `context` tokens: each window is run from
/// position 0 with an empty cache; within a window, the logits at position i score token i+1.
public struct PerplexityResult: Sendable {
    public var perplexity: Double
    public var tokensScored: Int
    public var windows: Int
    public var context: Int
    public var seconds: Double
}

public enum Perplexity {
    /// `logits(window)` returns `window.count × vocab` logits, row-major. With `secondHalfOnly`
    /// only positions ≥ context/2 are scored (llama.cpp's `perplexity` rule, which gives each scored
    /// token at least half a window of context); otherwise every position after the first.
    public static func evaluate(tokens: [Int32], context: Int, vocab: Int, secondHalfOnly: Bool,
                                progress: ProgressLine? = nil,
                                logits: ([Int32]) throws -> [Float]) throws -> PerplexityResult {
        let windows = tokens.count / context
        let started = Date()
        var nll = 0.0
        var scored = 0
        for w in 0..<windows {
            let window = Array(tokens[(w * context)..<((w + 1) * context)])
            let out = try logits(window)
            let first = secondHalfOnly ? context / 2 : 0
            for i in first..<(context - 1) {
                let row = out[(i * vocab)..<((i + 1) * vocab)]
                nll += negativeLogLikelihood(row, target: Int(window[i + 1]))
                scored += 1
            }
            progress?.update(w + 1, detail: String(format: "ppl %.3f", exp(nll / Double(max(scored, 1)))))
        }
        progress?.finish()
        return PerplexityResult(perplexity: exp(nll / Double(max(scored, 1))), tokensScored: scored, windows: windows,
                                context: context, seconds: Date().timeIntervalSince(started))
    }

    /// −log softmax(row)[target], computed stably in Double.
    public static func negativeLogLikelihood(_ row: ArraySlice<Float>, target: Int) -> Double {
        var maxValue = -Double.infinity
        for v in row { maxValue = max(maxValue, Double(v)) }
        var sum = 0.0
        for v in row { sum += exp(Double(v) - maxValue) }
        return log(sum) + maxValue - Double(row[row.startIndex + target])
    }
}
