// NumPy .npy (format 1.0) writer for float32 arrays, so raw samples open with numpy.load.
import CKTensor
import Glibc

public enum NPY {
    /// Writes `tensor` as a little-endian float32 C-order array of the tensor's shape.
    public static func write(_ tensor: Tensor, to path: String) throws {
        let dims = tensor.shape.map(String.init).joined(separator: ", ") + (tensor.rank == 1 ? "," : "")
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(dims)), }"
        // magic (6) + version (2) + length (2) + header + newline: a multiple of 64 bytes
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        let length = UInt16(header.utf8.count)
        bytes += [UInt8(length & 0xFF), UInt8(length >> 8)]
        bytes += Array(header.utf8)
        for v in tensor.storage { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 } }
        guard let file = fopen(path, "wb") else { throw PNGError(path: path, message: "cannot open for writing") }
        defer { fclose(file) }
        guard fwrite(bytes, 1, bytes.count, file) == bytes.count else { throw PNGError(path: path, message: "write failed") }
    }
}
