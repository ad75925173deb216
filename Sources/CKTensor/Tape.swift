// Reverse-mode autodiff: a define-by-run graph of nodes; gradients summed over fan-out here only.

/// One recorded operation. Holds its inputs' nodes and the pullback that maps the
/// output's gradient to one gradient per input (nil where an input needs none).
public final class TapeNode {
    let inputs: [TapeNode?]
    let pullback: ((Tensor) -> [Tensor?])?
    public let shape: [Int]
    /// Whether the pullback takes a gradient that covers only the output's leading rows (see LeadingRows.swift);
    /// other pullbacks get it padded with zero rows first.
    let takesLeadingRows: Bool

    init(leafShape: [Int]) {
        inputs = []
        pullback = nil
        shape = leafShape
        takesLeadingRows = false
    }

    init(shape: [Int], inputs: [TapeNode?], takesLeadingRows: Bool, pullback: @escaping (Tensor) -> [Tensor?]) {
        self.shape = shape
        self.inputs = inputs
        self.takesLeadingRows = takesLeadingRows
        self.pullback = pullback
    }
}

public enum Tape {
    /// When off, no op records a node (sampling, teacher forwards). One switch for the process, except
    /// inside the jobs of `Parallel.onCores`, where each job has its own.
    public static var isRecording: Bool {
        get { CoreWorker.current?.isRecording ?? processIsRecording }
        set {
            if let worker = CoreWorker.current { worker.isRecording = newValue } else { processIsRecording = newValue }
        }
    }
    nonisolated(unsafe) private static var processIsRecording = true

    /// Runs `body` with recording off, the equivalent of `torch.no_grad()`.
    public static func withoutRecording<T>(_ body: () throws -> T) rethrows -> T {
        let was = isRecording
        isRecording = false
        defer { isRecording = was }
        return try body()
    }

    /// Gradients of `output` (seeded with ones unless `seed` is given) with respect to each of
    /// `inputs`. An input that `output` does not depend on gets a zero tensor. Inside, a gradient may cover
    /// only the leading rows of its tensor (LeadingRows.swift); the ones returned have their tensors' shapes.
    public static func gradients(of output: Tensor, seed: Tensor? = nil, wrt inputs: [Tensor]) -> [Tensor] {
        let wanted = inputs.map { t -> ObjectIdentifier? in t.node.map(ObjectIdentifier.init) }
        guard let root = output.node else { return inputs.map { Tensor(zeros: $0.shape) } }
        // Pullbacks compute with plain ops; nothing they do should itself be recorded.
        let was = isRecording
        isRecording = false
        defer { isRecording = was }

        let order = topologicalOrder(from: root)
        var grads: [ObjectIdentifier: Tensor] = [:]
        grads[ObjectIdentifier(root)] = seed ?? Tensor(repeating: 1, shape: output.shape)
        var wantedSet = Set(wanted.compactMap { $0 })

        for node in order.reversed() {
            let id = ObjectIdentifier(node)
            guard let g = grads[id] else { continue }
            if !wantedSet.contains(id) { grads[id] = nil }   // free as we go
            guard let pullback = node.pullback else { continue }
            let inputGrads = pullback(node.takesLeadingRows ? g : g.withRows(of: node.shape))
            precondition(inputGrads.count == node.inputs.count, "pullback returned \(inputGrads.count) gradients for \(node.inputs.count) inputs")
            for (input, gi) in zip(node.inputs, inputGrads) {
                guard let input, let gi else { continue }
                precondition(gi.shape == input.shape || gi.coversLeadingRows(of: input.shape),
                             "pullback: gradient shape \(gi.shape) for input of shape \(input.shape)")
                let key = ObjectIdentifier(input)
                if var acc = grads.removeValue(forKey: key) {
                    acc.addGradient(gi)
                    grads[key] = acc
                } else {
                    grads[key] = gi.detached()
                }
            }
        }
        wantedSet.removeAll()
        return inputs.indices.map { k in wanted[k].flatMap { grads[$0]?.withRows(of: inputs[k].shape) } ?? Tensor(zeros: inputs[k].shape) }
    }

    /// Nodes reachable from `root`, each after all of its inputs.
    static func topologicalOrder(from root: TapeNode) -> [TapeNode] {
        var order: [TapeNode] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(TapeNode, Int)] = [(root, 0)]
        visited.insert(ObjectIdentifier(root))
        while let (node, next) = stack.popLast() {
            if next < node.inputs.count {
                stack.append((node, next + 1))
                if let child = node.inputs[next], visited.insert(ObjectIdentifier(child)).inserted {
                    stack.append((child, 0))
                }
            } else {
                order.append(node)
            }
        }
        return order
    }
}

extension Tensor {
    /// Attaches a node to `self` (an op's output) when recording is on and any input is on the graph.
    /// `pullback` maps the gradient of `self` to one gradient per input.
    /// `takesLeadingRows`: the pullback also accepts a gradient of fewer rows than `self` (the rest zero) and
    /// then returns gradients of the same kind or whole ones (LeadingRows.swift).
    public func recorded(inputs: [Tensor], takesLeadingRows: Bool = false, pullback: @escaping (Tensor) -> [Tensor?]) -> Tensor {
        guard Tape.isRecording, inputs.contains(where: { $0.node != nil }) else { return detachedIfNeeded() }
        var y = self
        y.node = TapeNode(shape: shape, inputs: inputs.map(\.node), takesLeadingRows: takesLeadingRows, pullback: pullback)
        return y
    }

    @inline(__always) func detachedIfNeeded() -> Tensor { node == nil ? self : detached() }

    /// self += other (same shape), without recording. Used to sum gradients.
    public mutating func addInPlace(_ other: Tensor) {
        precondition(shape == other.shape, "addInPlace: \(shape) vs \(other.shape)")
        addToLeadingValues(other)
    }

    /// self's first `other.count` values += other's values.
    mutating func addToLeadingValues(_ other: Tensor) {
        let n = other.count
        storage.withUnsafeMutableBufferPointer { a in
            other.storage.withUnsafeBufferPointer { b in
                for i in 0..<n { a[i] += b[i] }
            }
        }
    }
}
