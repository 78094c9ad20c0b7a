public import HuskimoCore

/// A record that cannot be converted: permanent (retrying fetches the same data), naming the field.
public struct ConversionError: ClassifiedError {
    public let table: String
    public let field: String
    public let recordSID: String?
    public let reason: String
    public var errorClass: ErrorClass { .permanent }
    public var description: String {
        "cannot convert \(table).\(field) of record \(recordSID ?? "?"): \(reason)"
    }
}
