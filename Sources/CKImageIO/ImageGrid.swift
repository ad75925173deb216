// Sample grids: a batch (N, C, H, W) tiled into one picture, and labelled grids side by side.
import CKTensor

public enum ImageGrid {
    /// Tiles a batch (N, C, H, W) with values in [-1, 1], C = 1 (gray) or 3 (RGB), into rows of `columns`.
    /// Sample t sits in row t / columns, column t % columns; tile (r, c) has its top-left pixel at
    /// (padding + (H + padding) r, padding + (W + padding) c). Padding between tiles and around the
    /// border is black (0); pixel = round((clamp(x, -1, 1) + 1) * 127.5).
    public static func bitmap(_ batch: Tensor, columns: Int = 8, padding: Int = 2) -> Bitmap {
        precondition(batch.rank == 4 && (batch.shape[1] == 1 || batch.shape[1] == 3),
                     "ImageGrid: expected (N, C, H, W) with C 1 or 3, got \(batch.shape)")
        precondition(columns > 0 && padding >= 0, "ImageGrid: columns \(columns), padding \(padding)")
        let (n, c, h, w) = (batch.shape[0], batch.shape[1], batch.shape[2], batch.shape[3])
        let cols = max(1, min(columns, n)), rows = max(1, (n + cols - 1) / cols)
        let gw = padding + cols * (w + padding), gh = padding + rows * (h + padding)
        var grid = Bitmap(width: gw, height: gh, channels: c, fill: 0)
        batch.storage.withUnsafeBufferPointer { src in
            grid.pixels.withUnsafeMutableBufferPointer { dst in
                for t in 0..<n {
                    let y0 = padding + (h + padding) * (t / cols), x0 = padding + (w + padding) * (t % cols)
                    for ch in 0..<c {
                        let plane = (t * c + ch) * h * w
                        for y in 0..<h {
                            for x in 0..<w {
                                dst[((y0 + y) * gw + x0 + x) * c + ch] = PixelMapping.byte(src[plane + y * w + x])
                            }
                        }
                    }
                }
            }
        }
        return grid
    }

    /// Writes `bitmap(batch, columns:, padding:)` as a PNG.
    public static func write(_ batch: Tensor, to path: String, columns: Int = 8, padding: Int = 2) throws {
        try PNG.write(bitmap(batch, columns: columns, padding: padding), to: path)
    }

    /// Several pictures side by side on a black background, each with its label centred above it
    /// in white (bitmap font, `scale` 1 = 7-pixel capitals). Gray pictures stay gray if all are gray.
    public static func sideBySide(_ panels: [(label: String, image: Bitmap)], gap: Int = 8, scale: Int = 1) -> Bitmap {
        precondition(!panels.isEmpty, "ImageGrid.sideBySide: no panels")
        let labelHeight = BitmapFont.glyphHeight * scale + gap + 2      // gap/2 + 1 above and below the text
        // A column is as wide as its picture or its label plus one blank glyph each side, whichever is wider.
        let columnWidth = { (p: (label: String, image: Bitmap)) in
            max(p.image.width, BitmapFont.size(of: p.label, scale: scale).width + 2 * BitmapFont.advance * scale)
        }
        let width = gap + panels.reduce(0) { $0 + columnWidth($1) + gap }
        let height = labelHeight + panels.map(\.image.height).max()! + gap
        var canvas = Canvas(width: width, height: height, background: .black)
        var x = gap
        for (label, image) in panels {
            let textWidth = BitmapFont.size(of: label, scale: scale).width
            let column = columnWidth((label, image))
            canvas.text(label, x: x + (column - textWidth) / 2, y: gap / 2 + 1, .white, scale: scale)
            canvas.draw(image, x: x + (column - image.width) / 2, y: labelHeight)
            x += column + gap
        }
        return panels.allSatisfy({ $0.image.channels == 1 }) ? gray(canvas.bitmap) : canvas.bitmap
    }

    /// A grid with one row per label and the label, in white capitals, left of its row (class grids:
    /// `batch` holds `columns` samples of each class in turn).
    public static func labelledRows(_ batch: Tensor, labels: [String], columns: Int, padding: Int = 2, scale: Int = 1) -> Bitmap {
        precondition(batch.rank == 4 && batch.shape[0] == labels.count * columns,
                     "ImageGrid.labelledRows: \(labels.count) rows of \(columns) for a batch of \(batch.shape)")
        let grid = bitmap(batch, columns: columns, padding: padding)
        let texts = labels.map { $0.uppercased() }
        let labelWidth = texts.map { BitmapFont.size(of: $0, scale: scale).width }.max()! + 2 * BitmapFont.advance * scale
        var canvas = Canvas(width: labelWidth + grid.width, height: grid.height, background: .black)
        canvas.draw(grid, x: labelWidth, y: 0)
        let rowHeight = batch.shape[2] + padding
        for (r, text) in texts.enumerated() {
            let y = padding + r * rowHeight + (batch.shape[2] - BitmapFont.glyphHeight * scale) / 2
            canvas.text(text, x: labelWidth - BitmapFont.size(of: text, scale: scale).width - BitmapFont.advance * scale, y: y,
                        .white, scale: scale)
        }
        return grid.channels == 1 ? gray(canvas.bitmap) : canvas.bitmap
    }

    /// An RGB canvas whose pixels are all gray, as one channel.
    private static func gray(_ rgb: Bitmap) -> Bitmap {
        Bitmap(width: rgb.width, height: rgb.height, channels: 1, pixels: (0..<(rgb.width * rgb.height)).map { rgb.pixels[3 * $0] })
    }
}

/// A picture of samples: images as a grid, 2-D points as a scatter plot.
public enum SamplePicture {
    public static func bitmap(_ samples: Tensor, columns: Int = 8, title: String = "") -> Bitmap {
        SampleKind(batch: samples) == .points ? Plot.scatter(samples, title: title) : ImageGrid.bitmap(samples, columns: columns)
    }

    public static func write(_ samples: Tensor, to path: String, columns: Int = 8, title: String = "") throws {
        try PNG.write(bitmap(samples, columns: columns, title: title), to: path)
    }
}
