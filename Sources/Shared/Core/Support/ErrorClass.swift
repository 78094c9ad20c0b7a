/// Whether retrying can help: the one distinction every layer's error makes, and the one the fleet acts on
/// (transient → delayed retry; permanent → the failed queue at once).
package enum ErrorClass: String, Sendable, Hashable, CustomStringConvertible {
    case transient
    case permanent
    package var description: String { rawValue }

    /// The class of any error: a ``ClassifiedError`` says its own; a task cancelled (shutdown) is transient;
    /// anything else (a decoding error, a bug) is permanent, so it is parked where an operator sees it
    /// instead of being retried blindly — nothing falls through unclassified.
    package static func of(_ error: any Error) -> ErrorClass {
        if let classified = error as? any ClassifiedError { return classified.errorClass }
        if error is CancellationError { return .transient }
        return .permanent
    }
}

/// An error that knows its class: the one shape every layer's error has (`AMQPError`, `CurlError`, `S3Error`,
/// `PQError`, `GzipError`, `APIError`, `JSONError`, `ConversionError`, `ConfigError`, `JobError`, `LoadError`):
/// a class, and a `description` that is safe to log (no secrets, no message bodies).
package protocol ClassifiedError: Error, Sendable, CustomStringConvertible {
    var errorClass: ErrorClass { get }
}

extension ClassifiedError {
    package var isRetriable: Bool { errorClass == .transient }
}
