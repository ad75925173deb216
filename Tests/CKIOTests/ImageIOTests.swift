// PNG round trips and errors, grid layout, labelled grids, plots.
@testable import CKImageIO
import CKTensor
import CKTestSupport
import Foundation
import XCTest

final class ImageIOTests: XCTestCase {
    // MARK: - PNG

    func testGrayRoundTripIsExact() throws {
        let dir = try scratchDirectory(self)
        var rng = SplitMix64(seed: 3)
        // Every byte value appears, plus random ones: 13 x 23 = 299 pixels.
        let px = (0..<299).map { $0 < 256 ? UInt8($0) : UInt8.random(in: 0...255, using: &rng) }
        let image = Bitmap(width: 13, height: 23, channels: 1, pixels: px)
        try PNG.write(image, to: "\(dir)/g.png")
        XCTAssertEqual(try PNG.readBitmap("\(dir)/g.png"), image)
        // As floats: byte / 127.5 - 1, shape (1, H, W).
        let t = try PNG.read("\(dir)/g.png")
        XCTAssertEqual(t.shape, [1, 23, 13])
        assertClose(t.storage, px.map { Float($0) / 127.5 - 1 }, atol: 1e-6)
        XCTAssertEqual(Bitmap(tensor: t), image, "float -> byte must invert byte -> float")
    }

    /// PNG and NPY files are written beside the target and renamed: an old file is replaced whole, nothing
    /// temporary is left, and a folder that does not exist is named in the error.
    func testWritesReplaceWholeAndLeaveNothingBehind() throws {
        let dir = try scratchDirectory(self)
        try PNG.write(Bitmap(width: 4, height: 3, channels: 1, fill: 10), to: "\(dir)/a.png")
        try PNG.write(Bitmap(width: 5, height: 2, channels: 3, fill: 200), to: "\(dir)/a.png")
        XCTAssertEqual(try PNG.readBitmap("\(dir)/a.png"), Bitmap(width: 5, height: 2, channels: 3, fill: 200))
        try NPY.write(Tensor(shape: [2], storage: [1, 2]), to: "\(dir)/a.npy")
        try NPY.write(Tensor(shape: [3], storage: [4, 5, 6]), to: "\(dir)/a.npy")
        XCTAssertEqual(try NPY.read("\(dir)/a.npy").tensor.storage, [4, 5, 6])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(), ["a.npy", "a.png"])
        XCTAssertThrowsError(try PNG.write(Bitmap(width: 2, height: 2, channels: 1), to: "\(dir)/no/such/b.png")) {
            XCTAssertTrue("\($0)".contains("no/such/b.png"), "\($0)")
        }
        XCTAssertThrowsError(try NPY.write(Tensor(shape: [1], storage: [0]), to: "\(dir)/no/such/b.npy")) {
            XCTAssertTrue("\($0)".contains("no/such/b.npy") && "\($0)".contains("check the folder"), "\($0)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(), ["a.npy", "a.png"])
    }

    func testRGBRoundTripIsExact() throws {
        let dir = try scratchDirectory(self)
        var rng = SplitMix64(seed: 4)
        let (w, h) = (17, 9)
        let px = (0..<(w * h * 3)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let image = Bitmap(width: w, height: h, channels: 3, pixels: px)
        try PNG.write(image, to: "\(dir)/c.png")
        XCTAssertEqual(try PNG.readBitmap("\(dir)/c.png"), image)
        let t = try PNG.read("\(dir)/c.png")
        XCTAssertEqual(t.shape, [3, h, w])
        // Channel planes: t[c, y, x] comes from the interleaved pixel (y, x), channel c.
        for (c, y, x) in [(0, 0, 0), (1, 4, 7), (2, 8, 16)] {
            XCTAssertEqual(t.storage[(c * h + y) * w + x], Float(px[(y * w + x) * 3 + c]) / 127.5 - 1, accuracy: 1e-6)
        }
    }

    func testTensorWriteUsesTheGridPixelRule() throws {
        let dir = try scratchDirectory(self)
        // round((clamp(x, -1, 1) + 1) * 127.5): -1 -> 0, -0.5 -> 63.75 -> 64, 0 -> 127.5 -> 128, 1 -> 255, 3 -> 255, -7 -> 0.
        let x = Tensor(shape: [1, 1, 6], storage: [-1, -0.5, 0, 1, 3, -7])
        try PNG.write(x, to: "\(dir)/m.png")
        XCTAssertEqual(try PNG.readBitmap("\(dir)/m.png").pixels, [0, 64, 128, 255, 255, 0])
    }

    func testAlphaIsDropped() throws {
        let dir = try scratchDirectory(self)
        let rgba: [UInt8] = [10, 20, 30, 0, 40, 50, 60, 128, 70, 80, 90, 255, 1, 2, 3, 4]     // 2 x 2
        try handMadePNG(width: 2, height: 2, colorType: 6, pixels: rgba).write(to: URL(fileURLWithPath: "\(dir)/rgba.png"))
        let b = try PNG.readBitmap("\(dir)/rgba.png")
        XCTAssertEqual(b.channels, 3)
        XCTAssertEqual(b.pixels, [10, 20, 30, 40, 50, 60, 70, 80, 90, 1, 2, 3])
        let ga: [UInt8] = [200, 0, 100, 255, 5, 9]                                             // 3 x 1
        try handMadePNG(width: 3, height: 1, colorType: 4, pixels: ga).write(to: URL(fileURLWithPath: "\(dir)/ga.png"))
        XCTAssertEqual(try PNG.readBitmap("\(dir)/ga.png"), Bitmap(width: 3, height: 1, channels: 1, pixels: [200, 100, 5]))
        // A hand-made RGB file reads as written (the reader is not only checked against our writer).
        let rgb: [UInt8] = [255, 0, 0, 0, 255, 0, 0, 0, 255]
        try handMadePNG(width: 1, height: 3, colorType: 2, pixels: rgb).write(to: URL(fileURLWithPath: "\(dir)/rgb.png"))
        XCTAssertEqual(try PNG.readBitmap("\(dir)/rgb.png").pixels, rgb)
    }

    func testBadFilesThrowNamingTheFile() throws {
        let dir = try scratchDirectory(self)
        try Data("this is not a png at all".utf8).write(to: URL(fileURLWithPath: "\(dir)/text.png"))
        let good = handMadePNG(width: 16, height: 16, colorType: 0, pixels: [UInt8](repeating: 7, count: 256))
        try good.prefix(good.count / 2).write(to: URL(fileURLWithPath: "\(dir)/truncated.png"))
        var broken = good
        broken[broken.count / 2] ^= 0xFF                                                      // CRC / zlib failure
        try broken.write(to: URL(fileURLWithPath: "\(dir)/flipped.png"))
        for name in ["text.png", "truncated.png", "flipped.png", "missing.png"] {
            XCTAssertThrowsError(try PNG.read("\(dir)/\(name)"), name) { error in
                XCTAssertTrue("\(error)".contains(name), "message should name the file: \(error)")
            }
        }
        // A file cut short says so once, whether the cut is in the header or in the image data.
        for (name, length) in [("cut-header.png", 40), ("cut-data.png", good.count / 2)] {
            try good.prefix(length).write(to: URL(fileURLWithPath: "\(dir)/\(name)"))
            XCTAssertThrowsError(try PNG.read("\(dir)/\(name)"), name) { error in
                XCTAssertEqual("\(error)".components(separatedBy: "truncated").count - 1, 1, "\(error)")
            }
        }
        XCTAssertThrowsError(try PNG.write(Bitmap(width: 2, height: 2, channels: 1), to: "\(dir)/no/such/dir/x.png")) { error in
            XCTAssertTrue("\(error)".contains("x.png"), "\(error)")
        }
    }

    // MARK: - Grid

    func testGridLayout() {
        // 10 tiles of 1 x 5 x 4 in rows of 4: 3 rows. Tile t is filled with the level whose byte is 20 t + 10.
        let (n, h, w, cols) = (10, 5, 4, 4)
        let level = { (t: Int) in Float(20 * t + 10) / 127.5 - 1 }
        let batch = Tensor(shape: [n, 1, h, w]) { out in for i in 0..<out.count { out[i] = level(i / (h * w)) } }
        let g = ImageGrid.bitmap(batch, columns: cols)
        XCTAssertEqual(g.width, 2 + cols * (w + 2))
        XCTAssertEqual(g.height, 2 + 3 * (h + 2))
        XCTAssertEqual(g.channels, 1)
        var expected = [UInt8](repeating: 0, count: g.width * g.height)
        for t in 0..<n {
            let (r, c) = (t / cols, t % cols)
            let top = 2 + (h + 2) * r, left = 2 + (w + 2) * c
            for y in top..<(top + h) { for x in left..<(left + w) { expected[y * g.width + x] = UInt8(20 * t + 10) } }
        }
        XCTAssertEqual(g.pixels, expected, "tiles at (2 + (H+2) r, 2 + (W+2) c), padding 0 elsewhere")
    }

    func testGridRGBAndPeerSize() {
        // The peer's Fashion-MNIST layout: 64 tiles of 28 x 28, 8 per row -> 242 x 242.
        XCTAssertEqual(ImageGrid.bitmap(Tensor(zeros: [64, 1, 28, 28])).width, 242)
        XCTAssertEqual(ImageGrid.bitmap(Tensor(zeros: [64, 1, 28, 28])).height, 242)
        // RGB: tile 1 (row 0, col 1) of a 2-tile batch, channel planes red = 1, green = -1, blue = 0.
        var x = Tensor(zeros: [2, 3, 3, 3])
        for i in 0..<9 { x.storage[27 + i] = 1; x.storage[27 + 9 + i] = -1 }
        let g = ImageGrid.bitmap(x, columns: 8)
        XCTAssertEqual([g.width, g.height, g.channels], [2 + 2 * 5, 2 + 5, 3])
        let (top, left) = (2, 2 + 5)
        XCTAssertEqual([g[top, left, 0], g[top, left, 1], g[top, left, 2]], [255, 0, 128])
        XCTAssertEqual([g[top - 1, left, 0], g[top, left - 1, 1]], [0, 0], "padding is black")
    }

    func testSideBySideWithLabels() throws {
        let a = ImageGrid.bitmap(Tensor(repeating: 1, shape: [4, 1, 8, 8]), columns: 2)      // 22 x 22, white tiles
        let b = ImageGrid.bitmap(Tensor(repeating: 1, shape: [1, 1, 8, 8]))                  // 12 x 12
        let s = ImageGrid.sideBySide([(label: "1 STEP", image: a), (label: "2", image: b)], gap: 8)
        XCTAssertEqual(s.channels, 1, "gray panels stay gray")
        let labelHeight = 7 + 8 + 2
        XCTAssertEqual(s.height, labelHeight + 22 + 8)
        // Columns: max(picture, label + one blank glyph (6 px) each side). "1 STEP": 6 glyphs = 35 px.
        let textWidth = 6 * 6 - 1, column = textWidth + 12
        XCTAssertEqual(s.width, 8 + column + 8 + max(12, 5 + 12) + 8)
        // Some white text pixels in the label band above each panel, and the panel's white tiles below.
        let band = (0..<labelHeight).flatMap { y in (0..<s.width).map { s[y, $0, 0] } }
        XCTAssertTrue(band.contains(255) && band.contains(0))
        let aLeft = 8 + (column - 22) / 2
        XCTAssertEqual(s[labelHeight + 2, aLeft + 2, 0], 255)
        XCTAssertEqual(s[labelHeight + 1, aLeft + 2, 0], 0)
        XCTAssertEqual(ImageGrid.sideBySide([(label: "x", image: a.rgb())]).channels, 3)
        // For eyeballing: three random RGB grids with labels, as `cmkit compare` lays them out.
        var rng = SplitMix64(seed: 11)
        let panels = ["1 step", "2 steps", "4 steps: SW2=0.031"].map { label in
            (label: label, image: ImageGrid.bitmap(Tensor.uniform(shape: [16, 3, 12, 12], low: -1, high: 1, rng: &rng), columns: 4))
        }
        try PNG.write(ImageGrid.sideBySide(panels, scale: 2), to: "\(try keptOutputDirectory(self))/compare.png")
    }

    func testFontDrawsKnownGlyph() {
        // "1": row 0 "..#..", row 6 ".###.".
        var on: Set<[Int]> = []
        BitmapFont.render("1", x: 10, y: 20) { on.insert([$0, $1]) }
        XCTAssertTrue(on.contains([12, 20]) && !on.contains([11, 20]))
        XCTAssertEqual(on.filter { $0[1] == 26 }.map { $0[0] }.sorted(), [11, 12, 13])
        XCTAssertEqual(BitmapFont.rows(for: "a"), BitmapFont.rows(for: "A"))
        XCTAssertEqual(BitmapFont.size(of: "abc", scale: 2).width, (3 * 6 - 1) * 2)
    }

    // MARK: - Plots

    func testLinePlotDrawsSeriesColours() throws {
        let x = (0..<50).map(Double.init)
        let plot = Plot.lines([PlotSeries(name: "loss", x: x, y: x.map { 10 / (1 + $0) }),
                               PlotSeries(name: "ema", x: x, y: x.map { 8 / (1 + $0) + 0.5 })],
                              title: "loss vs step", xLabel: "step", yLabel: "loss", logY: true, width: 500, height: 320)
        XCTAssertEqual([plot.width, plot.height, plot.channels], [500, 320, 3])
        for c in RGB.palette.prefix(2) {
            XCTAssertTrue(colourCount(plot, c) > 100, "series colour \(c) should be drawn")
        }
        XCTAssertEqual(colourCount(plot, RGB.palette[2]), 0)
        let dir = try keptOutputDirectory(self)
        try PNG.write(plot, to: "\(dir)/lines.png")
        try PNG.write(Plot.lines([PlotSeries(name: "sw2", x: [0, 1000, 2000, 5000], y: [0.31, 0.12, 0.05, 0.02])],
                                 title: "SW2", xLabel: "iteration"), to: "\(dir)/lines_linear.png")
    }

    func testScatterPlacesPoints() throws {
        // One point at the origin, one at (limit, limit), one outside (not drawn).
        let pts = Tensor(shape: [3, 2], storage: [0, 0, 1.5, 1.5, 2, 0])
        let plot = Plot.scatter([(name: "", points: pts)], limit: 1.5, size: 300, alpha: 1)
        XCTAssertEqual(colourCount(plot, RGB.palette[0]), 2 * 9, "two dots of radius 1 (3 x 3 pixels each)")
        var rng = SplitMix64(seed: 1)
        let many = Tensor.normal(shape: [4096, 2], rng: &rng) * 0.5
        try PNG.write(Plot.scatter([(name: "data", points: many), (name: "shifted", points: many + 0.5)], title: "normal"),
                      to: "\(try keptOutputDirectory(self))/scatter.png")
    }

    func testTickLabels() {
        XCTAssertEqual(Plot.formatNumber(0.25, step: 0.05), "0.25")
        XCTAssertEqual(Plot.formatNumber(1000, step: 500), "1000")
        XCTAssertEqual(Plot.formatNumber(-2.5, step: 0.5), "-2.5")
        XCTAssertEqual(Plot.formatNumber(1e-4, step: 1e-5), "1e-4")
        XCTAssertEqual(Plot.formatNumber(2.5e7, step: 5e6), "2.5e7")
    }

    private func colourCount(_ b: Bitmap, _ c: RGB) -> Int {
        (0..<(b.width * b.height)).filter { b.pixels[3 * $0] == c.r && b.pixels[3 * $0 + 1] == c.g && b.pixels[3 * $0 + 2] == c.b }.count
    }
}

final class PlotLayoutTests: XCTestCase {
    func testIntegerAxesGetIntegerTicksAndLongLabelsFit() {
        // 1...4 network evaluations: the default step would be 0.5; integer axes keep step 1.
        var lo = 1.0, hi = 4.0
        XCTAssertEqual(Plot.niceTicks(&lo, &hi, maxCount: 7, minimumStep: 1), [1, 2, 3, 4])
        lo = 1; hi = 4
        XCTAssertTrue(Plot.niceTicks(&lo, &hi, maxCount: 7).contains(1.5), "without the minimum the ticks are halves")
        let long = "FRECHET DISTANCE ON FMNIST-CLASSIFIER.SAFETENSORS FEATURES VS 512 HELD-OUT IMAGES"
        let cut = Plot.fitting(long, width: 200)
        XCTAssertLessThanOrEqual(BitmapFont.size(of: cut).width, 200)
        XCTAssertTrue(cut.hasSuffix("...") && long.hasPrefix(String(cut.dropLast(3))), cut)
        XCTAssertEqual(Plot.fitting("LOSS", width: 200), "LOSS")
    }
}
