// The one list of training methods. Adding a method: its file in Methods/, a case here and its line in
// `type`; the compiler points at anything else (the CLI's option groups switch over this enum too).

public enum MethodName: String, CaseIterable, Codable, Sendable {
    case ict, lct, edm, ctm, ect

    public var type: any TrainingMethod.Type {
        switch self {
        case .ict: return ICT.self
        case .lct: return LatentCT.self
        case .edm: return EDM.self
        case .ctm: return CTM.self
        case .ect: return ECT.self
        }
    }
}
