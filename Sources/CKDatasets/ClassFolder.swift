// `folder:PATH` with classes: one subfolder per class, its name the class name, its PNGs the class's images.
import CKTensor
import Glibc

extension ImageFolder {
    /// Every subfolder of `directory` (sorted by name, hidden ones skipped) as a class: all images, their
    /// labels (the subfolder's index) and the class names. Every image must have the same size and channels.
    public static func loadClasses(_ directory: String) throws -> (images: Tensor, labels: [Int], classNames: [String]) {
        let names = try subfolderNames(in: directory)
        guard names.count >= 2 else {
            throw DatasetError("image folder \(directory): class-conditional training needs one subfolder per class, at least two; "
                               + "found \(names.count) (\(names.joined(separator: ", ")))")
        }
        let loose = try pngNames(in: directory)
        guard loose.isEmpty else {
            throw DatasetError("image folder \(directory): \(loose.count) PNG file(s) lie beside the class subfolders (e.g. \(loose[0])), "
                               + "so their class is unknown; move each into its class's subfolder")
        }
        var values = [Float](), labels = [Int](), shape: [Int]? = nil
        for (label, name) in names.enumerated() {
            let images = try load("\(directory)/\(name)").images
            let itemShape = Array(images.shape.dropFirst())
            if let shape, shape != itemShape {
                throw DatasetError("image folder \(directory): class \(name) has images of shape \(itemShape) but \(names[0]) has "
                                   + "\(shape); all images must have the same size and channel count")
            }
            shape = itemShape
            values += images.storage
            labels += Array(repeating: label, count: images.shape[0])
        }
        return (Tensor(shape: [labels.count] + shape!, storage: values), labels, names)
    }

    /// The class folders as an epoch-shuffled labelled dataset.
    public static func classDataset(_ directory: String) throws -> TensorDataset {
        let (images, labels, names) = try loadClasses(directory)
        return TensorDataset(images, labels: labels, classNames: names)
    }

    static func subfolderNames(in directory: String) throws -> [String] {
        try entryNames(in: directory).filter { name in
            var info = stat()
            return stat("\(directory)/\(name)", &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
        }
    }
}
