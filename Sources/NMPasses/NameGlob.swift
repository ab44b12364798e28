/// A shell-style pattern over weight names: `*` matches any run of characters (dots included,
/// so `blk.*` matches `blk.0.attn_q.weight`), `?` exactly one character, anything else itself.
/// Used by pass options such as `nm-prune{include=blk.1?.* exclude=output.weight}`.
public struct NameGlob: Hashable, Sendable, CustomStringConvertible {
    public let pattern: String
    private let scalars: [Unicode.Scalar]

    public init(_ pattern: String) {
        self.pattern = pattern
        scalars = Array(pattern.unicodeScalars)
    }

    public var description: String { pattern }

    /// Whether the whole of `name` matches. Greedy with one backtracking point (the last `*`),
    /// which is enough for `*` and `?`: linear in practice, O(pattern · name) at worst.
    public func matches(_ name: String) -> Bool {
        let text = Array(name.unicodeScalars)
        var p = 0, t = 0
        var star: Int? = nil, starText = 0
        while t < text.count {
            if p < scalars.count, scalars[p] == "*" {
                star = p
                starText = t
                p += 1
            } else if p < scalars.count, scalars[p] == "?" || scalars[p] == text[t] {
                p += 1
                t += 1
            } else if let s = star {
                // Let the last `*` swallow one more character and retry from there.
                p = s + 1
                starText += 1
                t = starText
            } else {
                return false
            }
        }
        while p < scalars.count, scalars[p] == "*" { p += 1 }
        return p == scalars.count
    }

    /// The globs of a comma-separated list (`token_embd.weight,output.weight`); empty entries
    /// and surrounding spaces are ignored, so an empty list matches nothing.
    public static func list(_ text: String) -> [NameGlob] {
        text.split(separator: ",").map(trim).filter { !$0.isEmpty }.map(NameGlob.init)
    }

    /// `s` without leading and trailing spaces and tabs.
    static func trim(_ s: Substring) -> String {
        var s = s
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
        return String(s)
    }
}

extension [NameGlob] {
    /// Whether any glob of the list matches `name`.
    public func anyMatches(_ name: String) -> Bool { contains { $0.matches(name) } }
}
