import Foundation
import NMIR

/// Bytes of a model's linear-layer weights, before and after compression: per weight and in
/// total, with bits per original weight. A linear weight `@W` is either stored as a tensor
/// (`@W`) or packed (`@W.q` with `@W.scales` and, when asymmetric, `@W.zeros`).
public struct StorageReport {
    public struct Row {
        public var name: String
        /// Weights of the original matrix (rows × columns).
        public var parameters: Int
        public var bytesBefore: Int
        public var bytesAfter: Int
        /// How it is stored now: `f32`, `f32 2:4`, `i4 g128`, `i4 g128 2:4` …
        public var format: String
        public var bitsPerWeight: Double { parameters > 0 ? Double(bytesAfter * 8) / Double(parameters) : 0 }
    }

    public var rows: [Row]
    public var totalParameters: Int { rows.reduce(0) { $0 + $1.parameters } }
    public var totalBefore: Int { rows.reduce(0) { $0 + $1.bytesBefore } }
    public var totalAfter: Int { rows.reduce(0) { $0 + $1.bytesAfter } }
    public var bitsPerWeight: Double { totalParameters > 0 ? Double(totalAfter * 8) / Double(totalParameters) : 0 }
    public var reduction: Double { totalAfter > 0 ? Double(totalBefore) / Double(totalAfter) : 0 }

    /// Bytes of every other weight after compression (embedding table, norms …).
    public var otherBytes: Int

    /// The linear weights of `before` (read by `nn.linear` ops only — a table shared with
    /// `nn.embedding`, like a tied output head, counts as other) and what they became in `after`.
    public init(before: Module, after: Module) {
        var names: [String] = []
        var shared = Set<String>()
        for f in before.functions {
            var weightOf: [String: String] = [:]
            for op in f.body {
                if op.name == "nn.weight", let n = op.attributes["name"]?.symbolValue, let r = op.result { weightOf[r.name] = n }
                for (i, v) in op.operands.enumerated() {
                    guard let w = weightOf[v.name] else { continue }
                    if op.name == "nn.linear", i == 1 { if !names.contains(w) { names.append(w) } } else { shared.insert(w) }
                }
            }
        }
        names.removeAll { shared.contains($0) }
        rows = names.compactMap { name in
            guard let original = before.weights[name], case .tensor(let t) = original.type, let count = t.elementCount,
                  let bytesBefore = WeightStore.storageByteCount(of: original.type) else { return nil }
            if let packed = after.weights[name + ".q"], case .packed(let p) = packed.type {
                let parts = [packed, after.weights[name + ".scales"], after.weights[name + ".zeros"]].compactMap { $0 }
                let bytes = parts.reduce(0) { $0 + (WeightStore.storageByteCount(of: $1.type) ?? 0) }
                let format = "\(p.storage) g\(p.group)" + (p.zeroPoint ? " asym" : "") + (p.nm.map { " \($0)" } ?? "")
                return Row(name: name, parameters: count, bytesBefore: bytesBefore, bytesAfter: bytes, format: format)
            }
            let now = after.weights[name] ?? original
            let format = (now.type.tensor.map { "\($0.dtype)" + ($0.nm.map { " \($0)" } ?? "") }) ?? "\(now.type)"
            return Row(name: name, parameters: count, bytesBefore: bytesBefore,
                       bytesAfter: WeightStore.storageByteCount(of: now.type) ?? bytesBefore, format: format)
        }
        let counted = Set(rows.flatMap { [$0.name, $0.name + ".q", $0.name + ".scales", $0.name + ".zeros"] })
        otherBytes = after.weights.entries.filter { !counted.contains($0.name) && !$0.name.contains(".calib.") }
            .reduce(0) { $0 + (WeightStore.storageByteCount(of: $1.type) ?? 0) }
    }

    /// A table: one row per weight (with `perTensor`), then the totals and bits per weight.
    public func text(perTensor: Bool) -> String {
        var out = ""
        if perTensor {
            out += "weight".padding(toLength: 32, withPad: " ", startingAt: 0) + "       before        after  bits/w  format\n"
            for r in rows {
                out += r.name.padding(toLength: 32, withPad: " ", startingAt: 0)
                    + pad(String(r.bytesBefore), 13) + pad(String(r.bytesAfter), 13) + pad(String(format: "%.3f", r.bitsPerWeight), 8)
                    + "  " + r.format + "\n"
            }
        }
        out += String(format: "linear weights: %d matrices, %d weights: %@ → %@ (%.2f× smaller), %.3f bits per weight (values, N:M indices, scales and zero points counted)\n",
                      rows.count, totalParameters, ModelCommands.formatBytes(totalBefore), ModelCommands.formatBytes(totalAfter),
                      reduction, bitsPerWeight)
        out += "other weights (embedding table, norms): \(ModelCommands.formatBytes(otherBytes)), kept as they were\n"
        return out
    }

    private func pad(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }
}
