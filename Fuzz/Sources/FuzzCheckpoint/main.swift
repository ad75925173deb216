// libFuzzer harness: Checkpoint.read either succeeds consistently or throws CheckpointError; what it reads
// loads into parameters of the same shapes (or is refused as non-finite).
import CKNN
import CKTensor
import Foundation
import FuzzSupport

@_cdecl("LLVMFuzzerTestOneInput")  // also the symbol libFuzzer's own main (linked in) refers to
public func fuzzCheckpoint(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let path = inputFile(data, size, suffix: ".safetensors")
    do {
        let c = try Checkpoint.read(from: URL(fileURLWithPath: path))
        for (name, t) in c.tensors { precondition(t.shape.reduce(1, *) == t.storage.count, "tensor \(name): shape \(t.shape)") }
        let parameters = c.tensors.map { Parameter(name: $0.name, value: Tensor(zeros: $0.tensor.shape)) }
        do { try c.load(into: parameters) } catch let e as CheckpointError {
            guard case .nonFinite = e.kind else { fatalError("load after read: \(e)") }
        }
    } catch is CheckpointError {} catch { unexpected(error, "checkpoint") }
    return 0
}

runFuzzer { data, size in fuzzCheckpoint(data, size) }
