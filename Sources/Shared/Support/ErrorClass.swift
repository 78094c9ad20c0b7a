/// Whether retrying can help: the one distinction every layer's error makes, and the one the fleet acts on
/// (transient → delayed retry; permanent → the failed queue at once).
public enum ErrorClass: String, Sendable, Hashable, CustomStringConvertible {
    case transient
    case permanent
    public var description: String { rawValue }
}

/// An error that knows its class. Every layer's error (`AMQPError`, `CurlError`, `S3Error`, `PQError`,
/// `ConfigError`) conforms.
public protocol ClassifiedError: Error, CustomStringConvertible {
    var errorClass: ErrorClass { get }
}

extension ClassifiedError {
    public var isRetriable: Bool { errorClass == .transient }
}
