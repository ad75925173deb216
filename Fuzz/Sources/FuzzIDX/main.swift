// libFuzzer harness: IDX.read (gzip or plain) either succeeds consistently or throws DatasetError.
import CKDatasets
import FuzzSupport

@_cdecl("LLVMFuzzerTestOneInput")  // also the symbol libFuzzer's own main (linked in) refers to
public func fuzzIDX(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let path = inputFile(data, size, suffix: ".idx")
    do {
        let (dims, bytes) = try IDX.read(path)
        var n = 1
        for d in dims { n = n.multipliedReportingOverflow(by: d).partialValue }
        precondition(n == bytes.count, "IDX dims \(dims) but \(bytes.count) values")
    } catch is DatasetError {} catch { unexpected(error, "IDX") }
    return 0
}

runFuzzer { data, size in fuzzIDX(data, size) }
