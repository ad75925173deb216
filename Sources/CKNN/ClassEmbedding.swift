// Class conditioning: a learned vector per class joins the noise embedding (as in openai/guided-diffusion's
// label_emb), plus one for "no class" so the same network also samples unconditionally (classifier-free
// guidance, Ho & Salimans 2022).
import CKTensor

/// A table of (classCount + 1) vectors; row `classCount` is the null class. Drawn N(0, 1), as PyTorch's
/// nn.Embedding starts: distinct classes from the first step, so the network learns to read them at once
/// (a table started at zero must first grow apart, and after a ten-minute run its classes were barely used).
public struct ClassEmbedding: Layer {
    public let table: Parameter          // (classCount + 1, width)
    public let classCount: Int

    public init(classCount: Int, width: Int = 256, name: String, rng: inout some RandomNumberGenerator) {
        precondition(classCount >= 1, "ClassEmbedding: needs at least one class")
        self.classCount = classCount
        table = Parameter(name: join(name, "weight"), value: Tensor.normal(shape: [classCount + 1, width], rng: &rng))
    }

    public var parameters: [Parameter] { [table] }

    /// The label of "no class".
    public var nullLabel: Int { classCount }

    /// labels: N values in 0...classCount -> (N, width). A one-hot product, so the table's gradient
    /// (each row the sum over the samples of its class) comes from the matrix product's backward.
    public func callAsFunction(_ labels: [Int]) -> Tensor {
        let rows = classCount + 1
        var oneHot = [Float](repeating: 0, count: labels.count * rows)
        for (i, label) in labels.enumerated() {
            precondition((0...classCount).contains(label), "ClassEmbedding: label \(label) outside 0...\(classCount)")
            oneHot[i * rows + label] = 1
        }
        return Tensor(shape: [labels.count, rows], storage: oneHot).matmul(table.value)
    }
}

/// A class-conditional network bound to the labels of the rows it will see, so that the algorithms,
/// which call F(x, sigma) and know nothing of classes, train and sample it unchanged.
/// With `guidance` w != 1 it returns F(x, null) + w (F(x, c) - F(x, null)): the denoiser D = c_skip x +
/// c_out F is then guided the same way, which is classifier-free guidance for EDM's sampler.
public struct LabelledNetwork: Backbone {
    public enum Labels: Sendable, Equatable {
        /// One label per row of every call (a training batch or shard).
        case rows([Int])
        /// The same label for every row (sampling one class).
        case every(Int)
    }

    public let base: any Backbone
    public let labels: Labels
    public let guidance: Float

    public init(_ base: any Backbone, labels: Labels, guidance: Float = 1) {
        precondition(base.classCount > 0, "LabelledNetwork: the network is not class-conditional")
        self.base = base
        self.labels = labels
        self.guidance = guidance
    }

    public var sampleShape: [Int] { base.sampleShape }
    public var conditionsOnTarget: Bool { base.conditionsOnTarget }
    public var outputWeight: Parameter { base.outputWeight }
    public var classCount: Int { base.classCount }
    public var stacksConsistencyPairs: Bool { base.stacksConsistencyPairs }
    public var parameters: [Parameter] { base.parameters }

    /// The labels for a call on `count` rows.
    public func labels(count: Int) -> [Int] {
        switch labels {
        case .rows(let l):
            precondition(l.count == count, "LabelledNetwork: \(l.count) labels for \(count) rows")
            return l
        case .every(let label): return Array(repeating: label, count: count)
        }
    }

    public func callAsFunction(_ scaledInput: Tensor, sigma: Tensor, target: Tensor?, labels given: [Int]?) -> Tensor {
        let n = scaledInput.shape[0]
        let labels = given ?? labels(count: n)
        let conditional = base(scaledInput, sigma: sigma, target: target, labels: labels)
        guard guidance != 1 else { return conditional }
        let unconditional = base(scaledInput, sigma: sigma, target: target, labels: Array(repeating: classCount, count: n))
        return unconditional + (conditional - unconditional) * guidance
    }
}

extension Backbone {
    /// The same network bound to the labels of another (CTM's teacher and target see the student's rows'
    /// labels); itself when `other` carries none.
    public func labelled(like other: any Backbone) -> any Backbone {
        guard let bound = other as? LabelledNetwork, classCount > 0 else { return self }
        return LabelledNetwork(self, labels: bound.labels, guidance: bound.guidance)
    }

    /// The network for a batch of its rows twice over (a consistency pair's students, then its teachers): labels
    /// bound per row repeat.
    public func forStackedRows() -> any Backbone {
        guard let bound = self as? LabelledNetwork, case .rows(let labels) = bound.labels else { return self }
        return LabelledNetwork(bound.base, labels: .rows(labels + labels), guidance: bound.guidance)
    }
}
