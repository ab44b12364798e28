import Foundation

/// The sweep's SVG chart: latency per token (prefill and decode panels) against the pattern,
/// one bar per array size, for the configurations that fit the device.
enum SweepChart {
    static func svg(_ sweep: HLSSweep) -> String {
        let fitting = sweep.rows.filter(\.estimate.fits)
        var patterns: [String] = [], arrays: [String] = []
        for r in fitting {
            if !patterns.contains(r.estimate.pattern.name) { patterns.append(r.estimate.pattern.name) }
            if !arrays.contains(r.estimate.array.description) { arrays.append(r.estimate.array.description) }
        }
        let colors = ["#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377"]
        let panelWidth = 90 * max(patterns.count, 1) + 80, height = 320, top = 50
        var s = #"<svg xmlns="http://www.w3.org/2000/svg" width="\#(2 * panelWidth + 40)" height="\#(height + 90)" font-family="sans-serif" font-size="12">"#
        s += "\n<text x=\"10\" y=\"20\" font-size=\"15\">\(sweep.shapes.name) on \(sweep.device.name): latency per token (µs) by N:M pattern</text>\n"
        for (panel, title) in ["prefill (\(sweep.tokens) tokens)", "decode (1 token)"].enumerated() {
            let x0 = 60 + panel * (panelWidth + 20)
            let value: (PerformanceEstimate) -> Double = panel == 0 ? { $0.prefillMicrosecondsPerToken } : { $0.decodeMicrosecondsPerToken }
            let maxValue = fitting.map { value($0.estimate) }.max() ?? 1
            s += "<text x=\"\(x0)\" y=\"\(top - 10)\" font-weight=\"bold\">\(title)</text>\n"
            s += "<line x1=\"\(x0)\" y1=\"\(top + height - 50)\" x2=\"\(x0 + panelWidth - 60)\" y2=\"\(top + height - 50)\" stroke=\"black\"/>\n"
            for tick in 0...4 {
                let v = maxValue * Double(tick) / 4, y = Double(top + height - 50) - Double(height - 60) * Double(tick) / 4
                s += "<text x=\"\(x0 - 5)\" y=\"\(Int(y) + 4)\" text-anchor=\"end\">\(fmt(v))</text>\n"
            }
            for (pi, p) in patterns.enumerated() {
                let bx = x0 + 10 + pi * 90
                for (ai, a) in arrays.enumerated() {
                    guard let r = fitting.first(where: { $0.estimate.pattern.name == p && $0.estimate.array.description == a }) else { continue }
                    let h = Double(height - 60) * value(r.estimate) / maxValue
                    let x = bx + ai * (70 / max(arrays.count, 1))
                    s += "<rect x=\"\(x)\" y=\"\(Int(Double(top + height - 50) - h))\" width=\"\(max(70 / max(arrays.count, 1) - 2, 2))\" "
                    s += "height=\"\(Int(h.rounded(.up)))\" fill=\"\(colors[ai % colors.count])\"><title>\(a) \(p): \(fmt(value(r.estimate))) µs</title></rect>\n"
                }
                s += "<text x=\"\(bx + 35)\" y=\"\(top + height - 32)\" text-anchor=\"middle\">\(p)</text>\n"
            }
        }
        for (ai, a) in arrays.enumerated() {
            let x = 60 + ai * 110
            s += "<rect x=\"\(x)\" y=\"\(top + height)\" width=\"12\" height=\"12\" fill=\"\(colors[ai % colors.count])\"/>"
            s += "<text x=\"\(x + 16)\" y=\"\(top + height + 11)\">array \(a)</text>\n"
        }
        s += "</svg>\n"
        return s
    }
}

extension HLSSweep {
    public var svg: String { SweepChart.svg(self) }
}
