// Reading the inputs of `cmkit edit`: one PNG is one image (not a grid), folders and .npy arrays are batches,
// (N, H, W) arrays are gray, RGB pictures of gray images come back gray for gray models; masks as pixel / 255.
import XCTest
import Foundation
import CKTensor
import CKImageIO
import CKDatasets

final class EditInputFilesTests: XCTestCase {
    func testImagesFromAPictureAFolderAndAnArray() throws {
        let dir = try scratchDirectory(self)
        func path(_ name: String) -> String { (dir as NSString).appendingPathComponent(name) }
        let rgb = Tensor(shape: [3, 4, 4], storage: (0..<48).map { PixelMapping.value(UInt8($0 * 5)) })
        try PNG.write(rgb, to: path("one.png"))
        let one = try SampleFiles.images(path("one.png"), channels: 3)
        XCTAssertEqual(one.shape, [1, 3, 4, 4])
        XCTAssertEqual(one.storage, rgb.storage)

        // A gray picture saved as RGB (R = G = B) is gray for a gray model, RGB for a colour one.
        let gray = Array(rgb.storage[0..<16])
        try PNG.write(Tensor(shape: [3, 4, 4], storage: gray + gray + gray), to: path("gray.png"))
        XCTAssertEqual(try SampleFiles.images(path("gray.png"), channels: 1).shape, [1, 1, 4, 4])
        XCTAssertEqual(try SampleFiles.images(path("gray.png"), channels: 3).shape, [1, 3, 4, 4])

        try FileManager.default.createDirectory(atPath: path("folder"), withIntermediateDirectories: true)
        try PNG.write(rgb, to: path("folder/a.png"))
        try PNG.write(rgb, to: path("folder/b.png"))
        XCTAssertEqual(try SampleFiles.images(path("folder"), channels: 3).shape, [2, 3, 4, 4])

        // (N, H, W) arrays are gray images.
        try NPY.write(Tensor(zeros: [5, 4, 4]), to: path("gray.npy"))
        XCTAssertEqual(try SampleFiles.images(path("gray.npy"), channels: 1).shape, [5, 1, 4, 4])

        XCTAssertThrowsError(try SampleFiles.images(path("none.png"), channels: 1)) { XCTAssertTrue("\($0)".contains("no such file")) }
        try NPY.write(Tensor(zeros: [5]), to: path("flat.npy"))
        XCTAssertThrowsError(try SampleFiles.images(path("flat.npy"), channels: 1)) { XCTAssertTrue("\($0)".contains("is not a batch of images")) }
        try NPY.write(Tensor(shape: [1, 1, 1, 2], storage: [0, .nan]), to: path("nan.npy"))
        XCTAssertThrowsError(try SampleFiles.images(path("nan.npy"), channels: 1)) { XCTAssertTrue("\($0)".contains("NaN")) }
        try "x".write(toFile: path("a.txt"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try SampleFiles.images(path("a.txt"), channels: 1)) { XCTAssertTrue("\($0)".contains("give a .png image")) }
    }

    func testMasksArePixelsOver255() throws {
        let dir = try scratchDirectory(self)
        let file = (dir as NSString).appendingPathComponent("mask.png")
        try PNG.write(Bitmap(width: 3, height: 2, channels: 1, pixels: [0, 255, 255, 0, 128, 255]), to: file)
        let mask = try SampleFiles.mask(file)
        XCTAssertEqual(mask.shape, [1, 2, 3])
        XCTAssertEqual(mask.storage, [0, 1, 1, 0, Float(128) / 255, 1])
        // RGB with equal channels is one channel; unequal channels stay three (a mask per channel).
        try PNG.write(Bitmap(width: 2, height: 1, channels: 3, pixels: [255, 255, 255, 0, 0, 0]), to: file)
        XCTAssertEqual(try SampleFiles.mask(file).shape, [1, 1, 2])
        try PNG.write(Bitmap(width: 2, height: 1, channels: 3, pixels: [255, 0, 255, 0, 0, 0]), to: file)
        let perChannel = try SampleFiles.mask(file)
        XCTAssertEqual(perChannel.shape, [3, 1, 2])
        XCTAssertEqual(perChannel.storage, [1, 0, 0, 0, 1, 0])
    }
}
