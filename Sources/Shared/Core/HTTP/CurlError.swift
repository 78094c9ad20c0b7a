/// An error from the HTTP layer: a transport failure (libcurl's code and text) or, where a caller asks for
/// it, an HTTP status. The URL in `reason` is the request's ``HTTPRequest/displayURL``: no credentials,
/// no query.
package struct CurlError: ClassifiedError, Sendable {
    package struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String { case initFailed, transport, timeout, status, aborted, tooLarge }
        private let base: Base
        static let initFailed = Code(base: .initFailed)
        /// Connection refused or reset, DNS, TLS, a truncated body.
        package static let transport = Code(base: .transport)
        package static let timeout = Code(base: .timeout)
        /// The server answered with a status the caller treats as an error.
        package static let status = Code(base: .status)
        /// A body callback threw.
        static let aborted = Code(base: .aborted)
        /// The response body exceeded the request's ``HTTPRequest/maxBodyBytes``.
        static let tooLarge = Code(base: .tooLarge)
        package var description: String { base.rawValue }
    }

    package let code: Code
    /// libcurl's CURLcode, 0 for `.status`.
    let curlCode: Int
    /// The HTTP status, when one was received.
    package let status: Int?
    package let reason: String
    package let errorClass: ErrorClass
    let file: String
    let line: UInt

    init(
        _ code: Code, curlCode: Int = 0, status: Int? = nil, _ reason: String, class errorClass: ErrorClass,
        file: String = #fileID, line: UInt = #line
    ) {
        self.code = code
        self.curlCode = curlCode
        self.status = status
        self.reason = reason
        self.errorClass = errorClass
        self.file = file
        self.line = line
    }

    package var description: String { "CurlError.\(code): \(reason) (\(file):\(line))" }

    /// The class of an HTTP status: 408, 425, 429 and 5xx are worth retrying; other 4xx are not.
    package static func classify(status: Int) -> ErrorClass {
        switch status {
        case 408, 425, 429, 500...599: return .transient
        default: return .permanent
        }
    }
}
