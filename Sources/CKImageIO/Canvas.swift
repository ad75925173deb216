// A small RGB drawing surface: pixels, rectangles, lines, dots and bitmap-font text.

public struct RGB: Equatable, Sendable {
    public var r: UInt8, g: UInt8, b: UInt8
    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { self.r = r; self.g = g; self.b = b }

    public static let black = RGB(0, 0, 0), white = RGB(255, 255, 255)
    public static let gray = RGB(128, 128, 128), lightGray = RGB(225, 225, 225)
    /// Distinguishable series colours (Tableau 10 order).
    public static let palette: [RGB] = [
        RGB(31, 119, 180), RGB(255, 127, 14), RGB(44, 160, 44), RGB(214, 39, 40), RGB(148, 103, 189),
        RGB(140, 86, 75), RGB(227, 119, 194), RGB(127, 127, 127), RGB(188, 189, 34), RGB(23, 190, 207),
    ]
}

/// An RGB bitmap with clipped drawing: anything outside the picture is silently skipped.
public struct Canvas {
    public private(set) var bitmap: Bitmap
    public var width: Int { bitmap.width }
    public var height: Int { bitmap.height }

    public init(width: Int, height: Int, background: RGB = .white) {
        var px = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) { px[3 * i] = background.r; px[3 * i + 1] = background.g; px[3 * i + 2] = background.b }
        bitmap = Bitmap(width: width, height: height, channels: 3, pixels: px)
    }

    @inline(__always)
    public mutating func set(_ x: Int, _ y: Int, _ c: RGB) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let i = (y * width + x) * 3
        bitmap.pixels[i] = c.r; bitmap.pixels[i + 1] = c.g; bitmap.pixels[i + 2] = c.b
    }

    /// Mixes `c` over the pixel with opacity `alpha` in [0, 1].
    @inline(__always)
    public mutating func blend(_ x: Int, _ y: Int, _ c: RGB, alpha: Float) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let i = (y * width + x) * 3, a = min(max(alpha, 0), 1)
        func mix(_ old: UInt8, _ new: UInt8) -> UInt8 { UInt8((Float(old) * (1 - a) + Float(new) * a).rounded()) }
        bitmap.pixels[i] = mix(bitmap.pixels[i], c.r)
        bitmap.pixels[i + 1] = mix(bitmap.pixels[i + 1], c.g)
        bitmap.pixels[i + 2] = mix(bitmap.pixels[i + 2], c.b)
    }

    public mutating func fillRect(x: Int, y: Int, width w: Int, height h: Int, _ c: RGB) {
        for yy in max(0, y)..<max(max(0, y), min(height, y + h)) {
            for xx in max(0, x)..<max(max(0, x), min(width, x + w)) { set(xx, yy, c) }
        }
    }

    public mutating func strokeRect(x: Int, y: Int, width w: Int, height h: Int, _ c: RGB) {
        line(x, y, x + w - 1, y, c); line(x, y + h - 1, x + w - 1, y + h - 1, c)
        line(x, y, x, y + h - 1, c); line(x + w - 1, y, x + w - 1, y + h - 1, c)
    }

    /// Bresenham line between two pixel centres, `thickness` pixels wide (square pen).
    public mutating func line(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, _ c: RGB, thickness: Int = 1) {
        var (x, y) = (x0, y0)
        let dx = abs(x1 - x0), dy = -abs(y1 - y0)
        let sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
        var err = dx + dy
        let lo = -(thickness - 1) / 2, hi = thickness / 2
        while true {
            for oy in lo...hi { for ox in lo...hi { set(x + ox, y + oy, c) } }
            if x == x1 && y == y1 { break }
            let e2 = 2 * err
            if e2 >= dy { err += dy; x += sx }
            if e2 <= dx { err += dx; y += sy }
        }
    }

    /// A filled disc of radius `r` pixels (r = 0: one pixel), drawn with opacity `alpha`.
    public mutating func dot(_ cx: Int, _ cy: Int, radius r: Int, _ c: RGB, alpha: Float = 1) {
        for oy in -r...r { for ox in -r...r where ox * ox + oy * oy <= r * r + r { blend(cx + ox, cy + oy, c, alpha: alpha) } }
    }

    public mutating func text(_ s: String, x: Int, y: Int, _ c: RGB = .black, scale: Int = 1) {
        BitmapFont.render(s, x: x, y: y, scale: scale) { px, py in set(px, py, c) }
    }

    /// Text rotated a quarter turn counter-clockwise (reads bottom to top), top-left of its box at (x, y).
    public mutating func verticalText(_ s: String, x: Int, y: Int, _ c: RGB = .black, scale: Int = 1) {
        let w = BitmapFont.size(of: s, scale: scale).width
        BitmapFont.render(s, x: 0, y: 0, scale: scale) { px, py in set(x + py, y + w - 1 - px, c) }
    }

    /// Copies `image` (gray or RGB) with its top-left corner at (x, y).
    public mutating func draw(_ image: Bitmap, x: Int, y: Int) {
        let src = image.rgb()
        for yy in 0..<src.height {
            for xx in 0..<src.width {
                let i = (yy * src.width + xx) * 3
                set(x + xx, y + yy, RGB(src.pixels[i], src.pixels[i + 1], src.pixels[i + 2]))
            }
        }
    }
}
