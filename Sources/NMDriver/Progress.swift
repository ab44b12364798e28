import Foundation

/// A progress line on standard error, redrawn in place, shown only when stderr is a terminal
/// (logs and pipes stay clean).
public final class ProgressLine {
    private let label: String
    private let total: Int
    private let enabled: Bool
    private let started = Date()

    public init(_ label: String, total: Int, enabled: Bool = isatty(2) != 0) {
        self.label = label
        self.total = total
        self.enabled = enabled
    }

    public func update(_ done: Int, detail: String = "") {
        guard enabled else { return }
        let width = 30
        let filled = total > 0 ? min(width, done * width / total) : 0
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let elapsed = Date().timeIntervalSince(started)
        let line = "\r\(label) [\(bar)] \(done)/\(total) \(String(format: "%.1fs", elapsed)) \(detail)"
        FileHandle.standardError.write(Data(line.utf8))
    }

    public func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}
