package import HuskimoCore

/// A record that cannot be converted: permanent (retrying fetches the same data), naming the field.
package struct ConversionError: ClassifiedError {
    package let table: String
    package let field: String
    let recordSID: String?
    package let reason: String
    package var errorClass: ErrorClass { .permanent }
    package var description: String {
        "cannot convert \(table).\(field) of record \(recordSID ?? "?"): \(reason)"
    }
}
