// Minimal plots to PNG with no external libraries: line plots (loss / metric vs steps) and 2-D scatter plots.
import CKTensor
import Glibc

/// One named curve of a line plot.
public struct PlotSeries: Sendable {
    public var name: String
    public var x: [Double], y: [Double]
    public init(name: String, x: [Double], y: [Double]) {
        precondition(x.count == y.count, "PlotSeries \(name): \(x.count) x values but \(y.count) y values")
        self.name = name; self.x = x; self.y = y
    }
}

public enum Plot {
    // MARK: - Line plot

    /// Several series on shared axes, with tick labels, axis labels, a title and a legend (top right).
    /// `logY` plots log10(y); non-positive and non-finite values break the line. An x axis of integers (step
    /// counts, evaluations) gets integer ticks. `markers` draw labelled vertical lines (e.g. where a
    /// curriculum changes). Labels too long for the plot are cut with "..." so that they fit.
    public static func lines(_ series: [PlotSeries], title: String = "", xLabel: String = "", yLabel: String = "",
                             logY: Bool = false, markers: [(x: Double, label: String)] = [],
                             width: Int = 640, height: Int = 400) -> Bitmap {
        let ty: (Double) -> Double? = { v in
            guard v.isFinite else { return nil }
            if logY { return v > 0 ? log10Double(v) : nil }
            return v
        }
        let xs = series.flatMap(\.x).filter(\.isFinite)
        let ys = series.flatMap { $0.y.compactMap(ty) }
        var (xlo, xhi) = range(xs), (ylo, yhi) = range(ys)
        let integerX = !xs.isEmpty && xs.allSatisfy { $0 == $0.rounded() }
        let xTicks = niceTicks(&xlo, &xhi, maxCount: 7, minimumStep: integerX ? 1 : 0)
        let yTicks = logY ? logTicks(&ylo, &yhi) : niceTicks(&ylo, &yhi, maxCount: 6)
        let yStep = yTicks.count > 1 ? yTicks[1] - yTicks[0] : 1, xStep = xTicks.count > 1 ? xTicks[1] - xTicks[0] : 1
        let yLabels = yTicks.map { logY ? formatNumber(pow10(Int($0.rounded())), step: pow10(Int($0.rounded()))) : formatNumber($0, step: yStep) }
        let labelW = yLabels.map { BitmapFont.size(of: $0).width }.max() ?? 0

        let left = 14 + labelW + (yLabel.isEmpty ? 0 : 12), right = 16
        let top = title.isEmpty ? 12 : 26, bottom = xLabel.isEmpty ? 26 : 40
        let pw = width - left - right, ph = height - top - bottom
        precondition(pw > 20 && ph > 20, "Plot.lines: \(width)x\(height) is too small")
        var canvas = Canvas(width: width, height: height)
        let px = { (x: Double) in left + Int(((x - xlo) / (xhi - xlo) * Double(pw - 1)).rounded()) }
        let py = { (y: Double) in top + Int(((1 - (y - ylo) / (yhi - ylo)) * Double(ph - 1)).rounded()) }

        for (t, label) in zip(yTicks, yLabels) {
            let y = py(t)
            canvas.line(left, y, left + pw - 1, y, .lightGray)
            canvas.line(left - 4, y, left - 1, y, .black)
            let w = BitmapFont.size(of: label).width
            canvas.text(label, x: left - 6 - w, y: y - 3)
        }
        for t in xTicks {
            let x = px(t)
            canvas.line(x, top, x, top + ph - 1, .lightGray)
            canvas.line(x, top + ph, x, top + ph + 3, .black)
            let label = formatNumber(t, step: xStep), w = BitmapFont.size(of: label).width
            canvas.text(label, x: x - w / 2, y: top + ph + 6)
        }
        canvas.strokeRect(x: left - 1, y: top - 1, width: pw + 2, height: ph + 2, .black)

        for (k, s) in series.enumerated() {
            let color = RGB.palette[k % RGB.palette.count]
            var last: (Int, Int)? = nil
            for (x, y) in zip(s.x, s.y) {
                guard x.isFinite, let v = ty(y) else { last = nil; continue }
                let p = (px(x), py(v))
                if let q = last { canvas.line(q.0, q.1, p.0, p.1, color, thickness: 2) } else { canvas.dot(p.0, p.1, radius: 1, color) }
                last = p
            }
        }
        for (i, marker) in markers.enumerated() where marker.x >= xlo && marker.x <= xhi {
            let x = px(marker.x)
            var y = top + 1
            while y < top + ph - 1 { canvas.line(x, y, x, min(y + 3, top + ph - 2), .gray); y += 7 }
            // Labels alternate between two rows so that close markers do not overprint.
            canvas.text(fitting(marker.label, width: 60), x: x + 3, y: top + ph - 12 - 9 * (i % 2), .gray)
        }
        if !title.isEmpty {
            let text = fitting(title, width: width - 8), w = BitmapFont.size(of: text).width
            canvas.text(text, x: max(4, left + (pw - w) / 2), y: 9)
        }
        if !xLabel.isEmpty {
            let text = fitting(xLabel, width: pw), w = BitmapFont.size(of: text).width
            canvas.text(text, x: left + (pw - w) / 2, y: height - 12)
        }
        if !yLabel.isEmpty {
            let text = fitting(yLabel, width: ph), w = BitmapFont.size(of: text).width
            canvas.verticalText(text, x: 3, y: top + (ph - w) / 2)
        }
        legend(&canvas, names: series.map(\.name), right: left + pw - 6, top: top + 6)
        return canvas.bitmap
    }

    // MARK: - Scatter plot

    /// Point sets (each (N, 2)) on [-limit, limit]^2, one colour per set, semi-transparent dots; points
    /// outside the square are not drawn.
    public static func scatter(_ sets: [(name: String, points: Tensor)], limit: Double = 1.5, size: Int = 480,
                               title: String = "", pointRadius: Int = 1, alpha: Float = 0.35) -> Bitmap {
        var lo = -limit, hi = limit
        let ticks = niceTicks(&lo, &hi, maxCount: 6, expand: false)
        let step = ticks.count > 1 ? ticks[1] - ticks[0] : 1
        let labels = ticks.map { formatNumber($0, step: step) }
        let labelW = labels.map { BitmapFont.size(of: $0).width }.max() ?? 0
        let left = 12 + labelW, top = title.isEmpty ? 10 : 24, bottom = 22, right = 10
        let side = min(size - left - right, size - top - bottom)
        precondition(side > 20, "Plot.scatter: size \(size) is too small")
        var canvas = Canvas(width: left + side + right, height: top + side + bottom)
        let map = { (v: Double) in (v + limit) / (2 * limit) * Double(side - 1) }
        for (t, label) in zip(ticks, labels) {
            let a = left + Int(map(t).rounded()), b = top + side - 1 - Int(map(t).rounded())
            canvas.line(a, top, a, top + side - 1, .lightGray)
            canvas.line(left, b, left + side - 1, b, .lightGray)
            let w = BitmapFont.size(of: label).width
            canvas.text(label, x: a - w / 2, y: top + side + 6)
            canvas.text(label, x: left - 6 - w, y: b - 3)
        }
        canvas.strokeRect(x: left - 1, y: top - 1, width: side + 2, height: side + 2, .black)
        for (k, set) in sets.enumerated() {
            precondition(set.points.rank == 2 && set.points.shape[1] == 2,
                         "Plot.scatter: \(set.name) has shape \(set.points.shape), expected (N, 2)")
            let color = RGB.palette[k % RGB.palette.count], p = set.points.storage
            for i in 0..<set.points.shape[0] {
                let x = Double(p[2 * i]), y = Double(p[2 * i + 1])
                guard abs(x) <= limit, abs(y) <= limit else { continue }
                canvas.dot(left + Int(map(x).rounded()), top + side - 1 - Int(map(y).rounded()),
                           radius: pointRadius, color, alpha: alpha)
            }
        }
        if !title.isEmpty {
            let w = BitmapFont.size(of: title).width
            canvas.text(title, x: left + (side - w) / 2, y: 8)
        }
        if sets.count > 1 || !(sets.first?.name.isEmpty ?? true) {
            legend(&canvas, names: sets.map(\.name), right: left + side - 6, top: top + 6)
        }
        return canvas.bitmap
    }

    /// A single point set.
    public static func scatter(_ points: Tensor, limit: Double = 1.5, size: Int = 480, title: String = "") -> Bitmap {
        scatter([(name: "", points: points)], limit: limit, size: size, title: title)
    }

    // MARK: - Pieces

    private static func legend(_ canvas: inout Canvas, names: [String], right: Int, top: Int) {
        guard !names.isEmpty else { return }
        let textW = names.map { BitmapFont.size(of: $0).width }.max() ?? 0
        let w = 24 + textW + 8, h = names.count * 12 + 6, x = right - w
        canvas.fillRect(x: x, y: top, width: w, height: h, .white)
        canvas.strokeRect(x: x, y: top, width: w, height: h, .gray)
        for (k, name) in names.enumerated() {
            let color = RGB.palette[k % RGB.palette.count], y = top + 4 + 12 * k
            canvas.fillRect(x: x + 5, y: y + 2, width: 12, height: 3, color)
            canvas.text(name, x: x + 22, y: y)
        }
    }

    /// Finite (lo, hi) of `v` with a non-empty width; (0, 1) for no values.
    static func range(_ v: [Double]) -> (Double, Double) {
        guard var lo = v.min(), var hi = v.max() else { return (0, 1) }
        if hi - lo < 1e-12 * max(1, abs(lo)) { let d = max(abs(lo) * 0.1, 0.5); lo -= d; hi += d }
        return (lo, hi)
    }

    /// Ticks at 1, 2 or 5 times a power of ten; with `expand`, [lo, hi] grows to the outer ticks.
    static func niceTicks(_ lo: inout Double, _ hi: inout Double, maxCount: Int, expand: Bool = true,
                          minimumStep: Double = 0) -> [Double] {
        let rough = (hi - lo) / Double(max(1, maxCount)), mag = pow10(Int(log10Double(rough).rounded(.down)))
        let norm = rough / mag
        let step = max((norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag, minimumStep)
        if expand { lo = (lo / step).rounded(.down) * step; hi = (hi / step).rounded(.up) * step }
        var ticks: [Double] = []
        var k = (lo / step - 1e-9).rounded(.up)
        while k * step <= hi + 1e-9 * step { ticks.append(k * step); k += 1 }
        return ticks
    }

    /// Ticks at integer log10 values covering [lo, hi] (in log10 units), at least two.
    static func logTicks(_ lo: inout Double, _ hi: inout Double) -> [Double] {
        lo = (lo - 1e-9).rounded(.down); hi = (hi + 1e-9).rounded(.up)
        if hi <= lo { hi = lo + 1 }
        let every = max(1, Int((hi - lo) / 6) + 1)
        return stride(from: lo, through: hi, by: Double(every)).map { $0 }
    }

    /// A tick label: fixed decimals enough for `step`, or `1.5e-4` style for very small or large values.
    public static func formatNumber(_ v: Double, step: Double) -> String {
        guard v.isFinite else { return "\(v)" }
        if v == 0 { return "0" }
        let mag = abs(v)
        if mag >= 1e6 || mag < 1e-3 || abs(step) < 1e-4 {
            let e = Int(log10Double(mag).rounded(.down))
            let m = v / pow10(e)
            let digits = max(0, min(3, -Int(log10Double(abs(step) / pow10(e)).rounded(.down))))
            return fixed(m, decimals: digits) + "e\(e)"
        }
        let decimals = max(0, min(6, -Int(log10Double(abs(step)).rounded(.down))))
        return fixed(v, decimals: decimals)
    }

    static func fixed(_ v: Double, decimals: Int) -> String {
        let scale = pow10(decimals)
        let n = Int((abs(v) * scale).rounded())
        let sign = v < 0 && n != 0 ? "-" : ""
        if decimals == 0 { return sign + "\(n)" }
        let whole = n / Int(scale), frac = n % Int(scale)
        var f = String(frac)
        while f.count < decimals { f = "0" + f }
        while f.hasSuffix("0") { f.removeLast() }
        return sign + "\(whole)" + (f.isEmpty ? "" : "." + f)
    }

    /// `text` cut with "..." to fit `width` pixels of the bitmap font.
    static func fitting(_ text: String, width: Int) -> String {
        guard BitmapFont.size(of: text).width > width else { return text }
        var cut = text
        while !cut.isEmpty && BitmapFont.size(of: cut + "...").width > width { cut.removeLast() }
        return cut + "..."
    }

    static func pow10(_ e: Int) -> Double { Glibc.pow(10, Double(e)) }

    static func log10Double(_ v: Double) -> Double { Glibc.log10(v) }
}
