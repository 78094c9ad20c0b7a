/// An error from the HTTP layer: a transport failure (libcurl's code and text) or, where a caller asks for
/// it, an HTTP status. The URL in `reason` is the request's ``HTTPRequest/displayURL``: no credentials,
/// no query.
public struct CurlError: ClassifiedError, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String { case initFailed, transport, timeout, status, aborted, tooLarge }
        private let base: Base
        public static let initFailed = Code(base: .initFailed)
        /// Connection refused or reset, DNS, TLS, a truncated body.
        public static let transport = Code(base: .transport)
        public static let timeout = Code(base: .timeout)
        /// The server answered with a status the caller treats as an error.
        public static let status = Code(base: .status)
        /// A body callback threw.
        public static let aborted = Code(base: .aborted)
        /// The response body exceeded the request's ``HTTPRequest/maxBodyBytes``.
        public static let tooLarge = Code(base: .tooLarge)
        public var description: String { base.rawValue }
    }

    public let code: Code
    /// libcurl's CURLcode, 0 for `.status`.
    public let curlCode: Int
    /// The HTTP status, when one was received.
    public let status: Int?
    public let reason: String
    public let errorClass: ErrorClass
    let file: String
    let line: UInt

    init(_ code: Code, curlCode: Int = 0, status: Int? = nil, _ reason: String, class errorClass: ErrorClass,
         file: String = #fileID, line: UInt = #line) {
        self.code = code
        self.curlCode = curlCode
        self.status = status
        self.reason = reason
        self.errorClass = errorClass
        self.file = file
        self.line = line
    }

    public var description: String { "CurlError.\(code): \(reason) (\(file):\(line))" }

    /// The class of an HTTP status: 408, 425, 429 and 5xx are worth retrying; other 4xx are not.
    public static func classify(status: Int) -> ErrorClass {
        switch status {
        case 408, 425, 429, 500...599: return .transient
        default: return .permanent
        }
    }
}
