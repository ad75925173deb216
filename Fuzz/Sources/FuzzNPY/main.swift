// libFuzzer harness: NPY.read either succeeds consistently or throws NPYError.
import CKImageIO
import FuzzSupport

@_cdecl("LLVMFuzzerTestOneInput")  // also the symbol libFuzzer's own main (linked in) refers to
public func fuzzNPY(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let path = inputFile(data, size, suffix: ".npy")
    do {
        let (t, _) = try NPY.read(path)
        precondition(t.shape.reduce(1, *) == t.storage.count, "NPY shape \(t.shape) but \(t.storage.count) values")
    } catch is NPYError {} catch { unexpected(error, "NPY") }
    return 0
}

runFuzzer { data, size in fuzzNPY(data, size) }
