// Linear observations for zero-shot editing (Song et al. 2023, "Consistency Models", Section 6 and Algorithm 4):
// what is known of an image is y = A x; editing keeps the model's output consistent with y by projection.
import Glibc
import CKTensor

/// A linear observation A of samples (N, sampleShape...), with its pseudo-inverse.
public protocol EditOperator {
    /// A x: what the observation keeps of x.
    func apply(_ x: Tensor) -> Tensor
    /// A⁺ y: the least-norm sample whose observation is y.
    func pseudoInverse(_ y: Tensor) -> Tensor
    /// x + A⁺(y − A x): x with its part in A's row space replaced by the observation y and the rest kept,
    /// so that apply(project(x, onto: y)) == y (up to float rounding).
    func project(_ x: Tensor, onto y: Tensor) -> Tensor
}

extension EditOperator {
    public func project(_ x: Tensor, onto y: Tensor) -> Tensor { x + pseudoInverse(y - apply(x)) }

    /// One image (C, H, W) where each observation in y (N rows) leaves the sample open: A⁺y + (I − A⁺A) image, for every
    /// row (the training-mean fill of inpainting's baseline, and of an edit's start).
    public func filled(with image: Tensor, onto y: Tensor) -> Tensor {
        let n = y.shape[0]
        let repeated = Tensor(shape: [n] + image.shape, storage: Array((0..<n).map { _ in image.storage }.joined()))
        return project(repeated, onto: y)
    }
}

// MARK: - Inpainting

/// A = a binary mask (1 = known). A is its own pseudo-inverse (a diagonal of 0 and 1); the observation is the
/// sample with its unknown elements at 0.
public struct Inpainting: EditOperator {
    /// (1, H, W) for all channels of an image, or one sample's full shape; values 0 and 1.
    public let mask: Tensor
    /// The mask over one sample's elements, channels expanded.
    private let keep: [Bool]

    /// Checks that `mask` fits samples of `sampleShape` and holds only 0 and 1.
    public init(mask: Tensor, sampleShape: [Int]) throws {
        let perChannel = sampleShape.count == 3 && mask.shape == [1] + sampleShape.dropFirst()
        guard mask.shape == sampleShape || perChannel else { throw EditError.maskShape(mask: mask.shape, samples: sampleShape) }
        let other = mask.storage.reduce(0) { $0 + ($1 == 0 || $1 == 1 ? 0 : 1) }
        guard other == 0 else { throw EditError.maskNotBinary(otherValues: other, total: mask.count) }
        self.mask = mask
        let plane = mask.storage.map { $0 == 1 }
        keep = perChannel ? Array(repeating: plane, count: sampleShape[0]).flatMap { $0 } : plane
    }

    /// Known elements per sample.
    public var knownCount: Int { keep.reduce(0) { $0 + ($1 ? 1 : 0) } }

    public func apply(_ x: Tensor) -> Tensor { select(known: x, unknown: nil, shape: x.shape) }
    public func pseudoInverse(_ y: Tensor) -> Tensor { select(known: y, unknown: nil, shape: y.shape) }

    /// Known elements copied from y, the others kept from x: bit for bit, not through arithmetic.
    public func project(_ x: Tensor, onto y: Tensor) -> Tensor {
        precondition(x.shape == y.shape, "Inpainting.project: shape mismatch \(x.shape) vs \(y.shape)")
        return select(known: y, unknown: x, shape: x.shape)
    }

    /// Per element: `known` where the mask is 1, else `unknown` (0 when nil).
    private func select(known: Tensor, unknown: Tensor?, shape: [Int]) -> Tensor {
        let per = keep.count
        precondition(shape.count >= 1 && shape.dropFirst().reduce(1, *) == per, "Inpainting: samples \(shape) for a mask of \(per) elements")
        return Tensor(shape: shape) { out in
            for i in 0..<out.count {
                out[i] = keep[i % per] ? known.storage[i] : unknown?.storage[i] ?? 0
            }
        }
    }
}

// MARK: - Super-resolution

/// A = the mean of each factor x factor block of (N, C, H, W), giving (N, C, H / factor, W / factor).
/// A A^T = I / factor^2, so A⁺ = factor^2 A^T = nearest-neighbour upsampling, and the projection
/// x + up(y − down(x)) sets every block's mean to y and keeps the detail inside it.
public struct BlockAveraging: EditOperator {
    public let factor: Int

    /// Checks that `factor` divides the images' height and width.
    public init(factor: Int, sampleShape: [Int]) throws {
        guard sampleShape.count == 3 else { throw EditError.needsImages(sampleShape: sampleShape) }
        guard factor >= 2, sampleShape[1] % factor == 0, sampleShape[2] % factor == 0 else {
            throw EditError.factorDoesNotDivide(factor: factor, height: sampleShape[1], width: sampleShape[2])
        }
        self.factor = factor
    }

    public func apply(_ x: Tensor) -> Tensor {
        precondition(x.rank == 4 && x.shape[2] % factor == 0 && x.shape[3] % factor == 0, "BlockAveraging.apply: \(x.shape) by \(factor)")
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2] / factor, x.shape[3] / factor)
        return x.reshaped([n, c, h, factor, w, factor]).mean(alongAxes: [3, 5])
    }

    public func pseudoInverse(_ y: Tensor) -> Tensor {
        precondition(y.rank == 4, "BlockAveraging.pseudoInverse: needs (N, C, h, w), got \(y.shape)")
        let (n, c, h, w) = (y.shape[0], y.shape[1], y.shape[2], y.shape[3])
        return y.reshaped([n, c, h, 1, w, 1]).broadcasted(to: [n, c, h, factor, w, factor]).reshaped([n, c, h * factor, w * factor])
    }
}

// MARK: - Colorization

/// A = the luminance of each RGB pixel along a fixed unit vector q (BT.601 weights normalised, as
/// openai/consistency_models' `iterative_colorization`): A x = q · (R, G, B), (N, 3, H, W) -> (N, 1, H, W).
/// A A^T = q · q = 1, so A⁺ y = q y and the projection x + q (y − q · x) is exact up to rounding.
public struct Luminance: EditOperator {
    /// Luma weights of ITU-R BT.601 (R, G, B).
    public static let weights: [Double] = [0.2989, 0.5870, 0.1140]
    static let norm = weights.map { $0 * $0 }.reduce(0, +).squareRoot()
    /// q = weights / |weights|, rounded once to Float.
    public static let direction: [Float] = weights.map { Float($0 / norm) }

    public init(sampleShape: [Int]) throws {
        guard sampleShape.count == 3 else { throw EditError.needsImages(sampleShape: sampleShape) }
        guard sampleShape[0] == 3 else { throw EditError.needsColor(channels: sampleShape[0]) }
    }

    /// The observation of gray images whose value is the luminance L = weights · (R, G, B): L / |weights|.
    public static func observation(ofGray gray: Tensor) -> Tensor { gray * Float(1 / norm) }

    /// weights · (R, G, B) per pixel: (N, 3, H, W) -> (N, 1, H, W), what a gray picture of the image shows.
    public static func luminance(_ x: Tensor) -> Tensor { mix(x, weights.map { Float($0) }) }

    public func apply(_ x: Tensor) -> Tensor { Self.mix(x, Self.direction) }

    public func pseudoInverse(_ y: Tensor) -> Tensor {
        precondition(y.rank == 4 && y.shape[1] == 1, "Luminance.pseudoInverse: needs (N, 1, H, W), got \(y.shape)")
        let q = Tensor(shape: [1, 3, 1, 1], storage: Self.direction)
        return y * q
    }

    /// sum_c w_c x[:, c]: (N, 3, H, W) -> (N, 1, H, W).
    private static func mix(_ x: Tensor, _ w: [Float]) -> Tensor {
        precondition(x.rank == 4 && x.shape[1] == 3, "Luminance: needs (N, 3, H, W), got \(x.shape)")
        let (n, plane) = (x.shape[0], x.shape[2] * x.shape[3])
        return Tensor(shape: [n, 1, x.shape[2], x.shape[3]]) { out in
            for i in 0..<n {
                for j in 0..<plane {
                    let base = i * 3 * plane + j
                    out[i * plane + j] = w[0] * x.storage[base] + w[1] * x.storage[base + plane] + w[2] * x.storage[base + 2 * plane]
                }
            }
        }
    }
}
