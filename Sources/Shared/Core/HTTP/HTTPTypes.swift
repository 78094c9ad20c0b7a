import Foundation
/// An HTTP request for ``HTTPClient``.
public struct HTTPRequest: Sendable {
    public enum Method: String, Sendable { case GET, PUT, POST, DELETE, HEAD }

    public var method: Method
    public var url: String
    public var headers: [(String, String)]
    public var body: [UInt8]?
    /// HTTP Basic credentials.
    public var basicAuth: (user: String, password: Secret)?
    /// libcurl's `CURLOPT_AWS_SIGV4` provider string (`aws:amz:REGION:s3`) with the key pair to sign with.
    public var awsSigV4: (provider: String, accessKey: String, secretKey: Secret)?
    public var connectTimeout: Double
    /// The whole request, body included.
    public var timeout: Double
    /// Abort when fewer than `lowSpeedBytes` per second arrive for `lowSpeedSeconds` (stalled streams).
    public var lowSpeedSeconds: Int
    /// What logs and errors show instead of `url` (for APIs that put a key in the path).
    public var displayURL: String
    /// The most body bytes accepted (nil: no limit); more is a permanent ``CurlError/Code/tooLarge``.
    public var maxBodyBytes: Int?
    /// Further secrets this request carries (a key in the URL path): scrubbed from every error text.
    public var redact: [Secret] = []

    public init(method: Method = .GET, url: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
                connectTimeout: Double = 10, timeout: Double = 300, displayURL: String? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.connectTimeout = connectTimeout
        self.timeout = timeout
        self.lowSpeedSeconds = 60
        self.displayURL = displayURL ?? HTTPRequest.stripQuery(url)
    }

    /// `url` without its query string and userinfo: the default for logs.
    package static func stripQuery(_ url: String) -> String {
        var text = Substring(url)
        if let q = text.firstIndex(of: "?") { text = text[..<q] }
        if let scheme = text.range(of: "://"), let at = text[scheme.upperBound...].firstIndex(of: "@"),
           !text[scheme.upperBound..<at].contains("/") {
            text = text[..<scheme.upperBound] + text[text.index(after: at)...]
        }
        return String(text)
    }
}

/// Status and headers of a response.
public struct HTTPResponseHead: Sendable {
    public var status: Int
    /// Header names lower-cased, in arrival order (the last response's headers after redirects or 100-continue).
    public var headers: [(String, String)]

    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.last(where: { $0.0 == lower })?.1
    }
}

/// A response with its whole body.
public struct HTTPResponse: Sendable {
    public var head: HTTPResponseHead
    public var body: [UInt8]
    public init(head: HTTPResponseHead, body: [UInt8]) {
        self.head = head
        self.body = body
    }

    public var status: Int { head.status }
    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}
