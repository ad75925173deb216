// Consistency training's shared core (iCT and latent CT): the curriculum settings, the sigma-pair tables,
// and one student/teacher pair per sample (Song & Dhariwal 2023, Algorithm 1 with the iCT changes).
import Foundation
import CKTensor
import CKNN

public struct ICTConfig: Sendable {
    public var curriculum: ICTCurriculum
    public var preconditioning = Preconditioning()
    public var pMean = -1.1, pStd = 2.0
    /// Pseudo-Huber c; nil means 0.00054 sqrt(d).
    public var huberC: Float? = nil
    /// A fixed number of sigma points instead of the curriculum (the benchmark uses N = 1281).
    public var fixedPointCount: Int? = nil

    /// N at iteration `step`.
    public func pointCount(atStep step: Int) -> Int { fixedPointCount ?? curriculum.pointCount(atStep: step) }

    public init(totalSteps: Int, s0: Int = 10, s1: Int = 1280) {
        curriculum = ICTCurriculum(totalSteps: totalSteps, s0: s0, s1: s1)
    }
}

/// Caches one SigmaPairTable per N (the curriculum changes N a handful of times). Locked: the pieces of a
/// batch (`CoreShards`) ask for the table at once.
public final class SigmaPairTables: @unchecked Sendable {
    private var tables: [Int: SigmaPairTable] = [:]
    private let lock = NSLock()
    public let pMean: Double, pStd: Double
    public init(pMean: Double = -1.1, pStd: Double = 2.0) { self.pMean = pMean; self.pStd = pStd }
    public func table(pointCount n: Int) -> SigmaPairTable {
        lock.lock()
        defer { lock.unlock() }
        if let t = tables[n] { return t }
        let t = SigmaPairTable(pointCount: n, pMean: pMean, pStd: pStd)
        tables[n] = t
        return t
    }
}

/// One consistency pair per sample: the student f(x + sigma_{i+1} z, sigma_{i+1}) with gradient and the
/// teacher f(x + sigma_i z, sigma_i) under stop-gradient (the same network and z), as iCT and latent CT share.
public struct ConsistencyPair {
    public let student: Tensor, teacher: Tensor
    /// Ascending 0-based index of each sample's teacher level (the student's is one higher), for the shard's rows.
    public let indices: [Int]
    public let table: SigmaPairTable
    /// The indices of the whole batch, and the shard these rows are.
    public let allIndices: [Int]
    public let shard: Shard
    public var studentSigmas: [Float] { indices.map { Float(table.sigmas[$0 + 1]) } }
    public var lambdas: Tensor { Tensor(shape: [indices.count], storage: indices.map { Float(table.lambdas[$0]) }) }

    /// Whether student and teacher run as one batch where the network takes it (`stacksConsistencyPairs`, the
    /// default) or always as two passes; `CK_PAIR_PASSES=two` picks the two passes, so that both can be timed in
    /// one build. Tests set it directly.
    nonisolated(unsafe) public static var stacksPasses = ProcessInfo.processInfo.environment["CK_PAIR_PASSES"] != "two"

    /// Whether this network's pairs run stacked.
    static func stacks(_ network: some Backbone) -> Bool { stacksPasses && network.stacksConsistencyPairs }
}

/// Student and teacher as one batch, the students' rows first: one product per layer for both instead of two,
/// and the gradient, which only the students' rows have, skips the teachers' rows on its way back
/// (LeadingRows.swift). The teachers' activations stay alive until the backward.
private func stackedPasses(_ network: some Backbone, _ x: Tensor, _ z: Tensor, student sigmaStudent: [Float],
                           teacher sigmaTeacher: [Float], _ p: Preconditioning) -> (student: Tensor, teacher: Tensor) {
    let rows = x.shape[0]
    let stacked = Tensor.concatenate([addNoise(x, z, sigma: sigmaStudent), addNoise(x, z, sigma: sigmaTeacher)], axis: 0)
    let both = p.consistency(network.forStackedRows(), stacked, sigma: sigmaStudent + sigmaTeacher)
    return (both.leadingRows(rows), both.detachedRows(rows..<2 * rows))
}

/// The teacher's pass unrecorded, then the student's.
private func separatePasses(_ network: some Backbone, _ x: Tensor, _ z: Tensor, student sigmaStudent: [Float],
                            teacher sigmaTeacher: [Float], _ p: Preconditioning) -> (student: Tensor, teacher: Tensor) {
    let teacher = Tape.withoutRecording {
        p.consistency(network, addNoise(x, z, sigma: sigmaTeacher), sigma: sigmaTeacher)
    }
    return (p.consistency(network, addNoise(x, z, sigma: sigmaStudent), sigma: sigmaStudent), teacher)
}

/// The draws are made for the whole batch `x`; the networks run on `shard` of it (all of it by default),
/// whose rows the pair holds.
public func consistencyPair(network: some Backbone, batch: Tensor, step: Int, config: ICTConfig, tables: SigmaPairTables,
                            noise: Tensor? = nil, shard: Shard? = nil, rng: inout some RandomNumberGenerator) -> ConsistencyPair {
    let n = batch.shape[0], shard = shard ?? .whole(n)
    let table = tables.table(pointCount: config.pointCount(atStep: step))
    let allIndices = (0..<n).map { _ in table.samplePair(rng: &rng) }
    let allNoise = noise ?? Tensor.normal(like: batch, rng: &rng)
    let x = shard.rows(batch), z = shard.rows(allNoise), indices = shard.values(allIndices)
    let sigmaTeacher = indices.map { Float(table.sigmas[$0]) }
    let sigmaStudent = indices.map { Float(table.sigmas[$0 + 1]) }
    let (student, teacher) = ConsistencyPair.stacks(network)
        ? stackedPasses(network, x, z, student: sigmaStudent, teacher: sigmaTeacher, config.preconditioning)
        : separatePasses(network, x, z, student: sigmaStudent, teacher: sigmaTeacher, config.preconditioning)
    return ConsistencyPair(student: student, teacher: teacher, indices: indices, table: table, allIndices: allIndices, shard: shard)
}
