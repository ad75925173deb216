// "shapes": a built-in procedural image set (3x32x32 RGB) that needs no download.
import CKTensor
import Glibc

/// One simple shape per image (disc, square, triangle or a patch of stripes) at a random place and size,
/// drawn in one of four styles that differ in palette, background and texture:
///
/// | style  | background                                | shape fill                                  |
/// |--------|-------------------------------------------|---------------------------------------------|
/// | sunset | vertical gradient purple -> orange        | solid warm yellow                            |
/// | ocean  | horizontal gradient navy -> teal          | diagonal stripes, white / light blue         |
/// | forest | flat dark green with fine pixel noise     | brick red with strong pixel noise            |
/// | paper  | diagonal gradient light beige -> gray     | dark checkerboard texture (2-pixel cells)    |
///
/// Colours are jittered by up to +-10% per image; edges are anti-aliased from a signed distance.
/// Image k of `batch(count:seed:)` depends only on (seed, k). Values are in [-1, 1].
public enum Shapes {
    public static let channels = 3, size = 32
    public static var sampleShape: [Int] { [channels, size, size] }

    public enum Kind: Int, CaseIterable, Sendable { case disc, square, triangle, stripes }
    public enum Style: Int, CaseIterable, Sendable { case sunset, ocean, forest, paper }

    /// `count` images (count, 3, 32, 32); image k is drawn from `SplitMix64(seed: seed).split(k)`.
    public static func batch(count: Int, seed: UInt64) -> Tensor { labelledBatch(count: count, seed: seed).images }

    /// The class label of a shapes image is its style: the four differ in palette, background and texture,
    /// so the label decides the whole picture, while the kind of shape is a detail a short run learns late.
    public static let classNames = Style.allCases.map { "\($0)" }

    /// `batch(count:seed:)` with each image's style (its class label).
    public static func labelledBatch(count: Int, seed: UInt64) -> (images: Tensor, labels: [Int]) {
        let base = SplitMix64(seed: seed), per = channels * size * size
        var labels = [Int](repeating: 0, count: count)
        let images = Tensor(shape: [count] + sampleShape) { out in
            for k in 0..<count {
                var rng = base.split(UInt64(k))
                labels[k] = render(into: UnsafeMutableBufferPointer(rebasing: out[(k * per)..<((k + 1) * per)]), rng: &rng).1.rawValue
            }
        }
        return (images, labels)
    }

    /// One image (3, 32, 32) with its shape kind and style.
    public static func image(rng: inout some RandomNumberGenerator) -> (image: Tensor, kind: Kind, style: Style) {
        var kind = Kind.disc, style = Style.sunset
        let t = Tensor(shape: sampleShape) { out in (kind, style) = render(into: out, rng: &rng) }
        return (t, kind, style)
    }

    // MARK: - Rendering

    private typealias Colour = (Double, Double, Double)

    /// Writes one image (channel planes) into `out` (3 * 32 * 32 floats).
    @discardableResult
    static func render(into out: UnsafeMutableBufferPointer<Float>, rng: inout some RandomNumberGenerator) -> (Kind, Style) {
        let style = Style(rawValue: Int.random(in: 0..<4, using: &rng))!
        let kind = Kind(rawValue: Int.random(in: 0..<4, using: &rng))!
        let cx = 10 + 12 * rng.uniformDouble(), cy = 10 + 12 * rng.uniformDouble()
        let r = 6 + 5 * rng.uniformDouble()
        let horizontal = rng.uniformDouble() < 0.5                        // stripes orientation
        func jitter(_ c: Colour) -> Colour {
            let j = 1 + 0.2 * (rng.uniformDouble() - 0.5)
            return (min(1, c.0 * j), min(1, c.1 * j), min(1, c.2 * j))
        }
        let (bgA, bgB, fgA, fgB): (Colour, Colour, Colour, Colour)
        switch style {
        case .sunset: (bgA, bgB, fgA, fgB) = (jitter((0.25, 0.05, 0.35)), jitter((0.95, 0.45, 0.15)), jitter((1.0, 0.9, 0.3)), (0, 0, 0))
        case .ocean: (bgA, bgB, fgA, fgB) = (jitter((0.02, 0.08, 0.3)), jitter((0.0, 0.5, 0.55)), jitter((0.95, 0.95, 1.0)), jitter((0.45, 0.7, 0.95)))
        case .forest: (bgA, bgB, fgA, fgB) = (jitter((0.1, 0.3, 0.12)), (0, 0, 0), jitter((0.75, 0.2, 0.15)), (0, 0, 0))
        case .paper: (bgA, bgB, fgA, fgB) = (jitter((0.92, 0.88, 0.8)), jitter((0.65, 0.65, 0.63)), jitter((0.1, 0.1, 0.15)), jitter((0.4, 0.4, 0.45)))
        }
        let plane = size * size
        for y in 0..<size {
            for x in 0..<size {
                let px = Double(x) + 0.5, py = Double(y) + 0.5
                let bgT: Double, bgNoise: Double
                switch style {
                case .sunset: bgT = py / Double(size); bgNoise = 0
                case .ocean: bgT = px / Double(size); bgNoise = 0
                case .forest: bgT = 0; bgNoise = 0.12 * (rng.uniformDouble() - 0.5)
                case .paper: bgT = (px + py) / Double(2 * size); bgNoise = 0
                }
                var bg = mix(bgA, bgB, bgT)
                bg = (bg.0 + bgNoise, bg.1 + bgNoise, bg.2 + bgNoise)
                let fg: Colour
                switch style {
                case .sunset: fg = fgA
                case .ocean: fg = Int(((px + py) / 3).rounded(.down)) % 2 == 0 ? fgA : fgB
                case .forest:
                    let n = 0.35 * (rng.uniformDouble() - 0.5)
                    fg = (fgA.0 + n, fgA.1 + n, fgA.2 + n)
                case .paper: fg = (x / 2 + y / 2) % 2 == 0 ? fgA : fgB
                }
                let d = signedDistance(kind, px - cx, py - cy, r, horizontal: horizontal)
                let a = min(max(0.5 - d, 0), 1)                              // coverage of this pixel
                let c = mix(bg, fg, a)
                let i = y * size + x
                out[i] = Float(2 * min(max(c.0, 0), 1) - 1)
                out[plane + i] = Float(2 * min(max(c.1, 0), 1) - 1)
                out[2 * plane + i] = Float(2 * min(max(c.2, 0), 1) - 1)
            }
        }
        return (kind, style)
    }

    private static func mix(_ a: Colour, _ b: Colour, _ t: Double) -> Colour {
        (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t, a.2 + (b.2 - a.2) * t)
    }

    /// Approximate signed distance in pixels (negative inside) from the shape centred at the origin.
    private static func signedDistance(_ kind: Kind, _ x: Double, _ y: Double, _ r: Double, horizontal: Bool) -> Double {
        switch kind {
        case .disc:
            return (x * x + y * y).squareRoot() - r
        case .square:
            return max(abs(x), abs(y)) - 0.85 * r
        case .triangle:
            // Upright isosceles triangle, apex (0, -r), base y = 0.8 r from x = -r to r: the largest of the
            // signed distances to the three edge lines (outward normals (+-1.8, -1)/len and (0, 1)).
            let len = (1.8 * 1.8 + 1).squareRoot()
            let right = (1.8 * x - (y + r)) / len, left = (-1.8 * x - (y + r)) / len
            return max(y - 0.8 * r, max(right, left))
        case .stripes:
            let box = max(abs(x), abs(y)) - r
            let t = (horizontal ? y : x) + r, period = 0.8 * r, width = period / 2
            let local = t - (t / period).rounded(.down) * period               // in [0, period)
            let stripe = local < width ? -min(local, width - local) : min(local - width, period - local)
            return max(box, stripe)
        }
    }
}

/// Fresh "shapes" images for every batch: (N, 3, 32, 32). Each batch draws one seed from `rng`;
/// image j of the batch comes from its own generator split from that seed.
public struct ShapesDataset: Dataset {
    public init() {}
    public var sampleShape: [Int] { Shapes.sampleShape }
    public var count: Int? { nil }
    public mutating func nextBatch(size: Int, rng: inout some RandomNumberGenerator) -> Tensor {
        Shapes.batch(count: size, seed: rng.next())
    }
    public var classNames: [String]? { Shapes.classNames }
    public mutating func nextLabelledBatch(size: Int, rng: inout some RandomNumberGenerator) -> (batch: Tensor, labels: [Int]?) {
        let (images, labels) = Shapes.labelledBatch(count: size, seed: rng.next())
        return (images, labels)
    }
}
