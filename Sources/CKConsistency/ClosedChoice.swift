// Closed choices stored in checkpoints: a value the file spells that names no case is a clear error
// listing the valid ones, never a fallback.

public protocol ClosedChoice: RawRepresentable, CaseIterable, Codable, Sendable where RawValue == String {}

extension ClosedChoice {
    public init(from decoder: Decoder) throws {
        let raw = try decoder.singleValueContainer().decode(String.self)
        guard let value = Self(rawValue: raw) else {
            throw TrainingError.unknownValue(field: decoder.codingPath.last?.stringValue ?? "\(Self.self)", value: raw,
                                             valid: Self.allCases.map(\.rawValue))
        }
        self = value
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}

extension NoiseAssignment: ClosedChoice {}
