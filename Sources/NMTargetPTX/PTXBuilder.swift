/// Accumulates the body of one PTX kernel: fresh virtual registers by kind, instructions, and
/// the register declarations they need (ptxas allocates the physical registers).
struct PTXBuilder {
    private(set) var body: [String] = []
    private var counts: [String: Int] = [:]
    private var labels = 0

    /// A fresh register: "r" .b32, "rd" .b64, "f" .f32, "p" .pred, "h" .b16.
    mutating func reg(_ kind: String) -> String {
        let n = counts[kind, default: 0]
        counts[kind] = n + 1
        return "%\(kind)\(n)"
    }

    mutating func regs(_ kind: String, _ count: Int) -> [String] { (0..<count).map { _ in reg(kind) } }

    mutating func label(_ stem: String) -> String {
        labels += 1
        return "\(stem.uppercased())_\(labels)"
    }

    mutating func emit(_ line: String) { body.append("    " + line) }
    mutating func place(_ label: String) { body.append("\(label):") }

    /// A b32 register holding a constant.
    mutating func constant(_ value: UInt32) -> String {
        let r = reg("r")
        emit("mov.b32 \(r), \(hex(value));")
        return r
    }

    func hex(_ v: UInt32) -> String { "0x" + String(v, radix: 16, uppercase: true) }

    var declarations: [String] {
        let types = ["p": ".pred", "h": ".b16", "r": ".b32", "rd": ".b64", "f": ".f32"]
        return counts.keys.sorted().map { "    .reg \(types[$0]!) %\($0)<\(counts[$0]!)>;" }
    }
}
