import Foundation

/// An HTTP request for ``HTTPClient``.
package struct HTTPRequest: Sendable {
    package enum Method: String, Sendable { case GET, PUT, POST, DELETE, HEAD }

    package var method: Method
    package var url: String
    package var headers: [(String, String)]
    package var body: [UInt8]?
    /// HTTP Basic credentials.
    package var basicAuth: (user: String, password: Secret)?
    /// libcurl's `CURLOPT_AWS_SIGV4` provider string (`aws:amz:REGION:s3`) with the key pair to sign with.
    var awsSigV4: (provider: String, accessKey: String, secretKey: Secret)?
    var connectTimeout: Double
    /// The whole request, body included.
    package var timeout: Double
    /// Abort when fewer than `lowSpeedBytes` per second arrive for `lowSpeedSeconds` (stalled streams).
    var lowSpeedSeconds: Int
    /// What logs and errors show instead of `url` (for APIs that put a key in the path).
    package var displayURL: String
    /// The most body bytes accepted (nil: no limit); more is a permanent ``CurlError/Code/tooLarge``.
    package var maxBodyBytes: Int?
    /// Further secrets this request carries (a key in the URL path): scrubbed from every error text.
    package var redact: [Secret] = []
    /// Where a Bearer token comes from (OAuth): asked before every attempt, so a retry never sends an expired token.
    package var bearer: (any BearerTokenSource)?
    /// Statuses besides 200 that are an answer rather than a failure (a redirect read, never followed).
    package var alsoAccepted: Set<Int> = []

    package init(
        method: Method = .GET, url: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
        connectTimeout: Double = 10, timeout: Double = 300, displayURL: String? = nil
    ) {
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
            !text[scheme.upperBound..<at].contains("/")
        {
            text = text[..<scheme.upperBound] + text[text.index(after: at)...]
        }
        return String(text)
    }
}

/// Status and headers of a response.
package struct HTTPResponseHead: Sendable {
    package var status: Int
    /// Header names lower-cased, in arrival order (the last response's headers after redirects or 100-continue).
    package var headers: [(String, String)]

    package func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.last(where: { $0.0 == lower })?.1
    }
}

/// A response with its whole body.
package struct HTTPResponse: Sendable {
    package var head: HTTPResponseHead
    package var body: [UInt8]
    package init(head: HTTPResponseHead, body: [UInt8]) {
        self.head = head
        self.body = body
    }

    package var status: Int { head.status }
    var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// A source of OAuth 2.0 Bearer tokens, cached and renewed before they expire. Blocking.
package protocol BearerTokenSource: Sendable {
    /// A token valid for a while yet (fetched when the cached one is near its end).
    func current() throws -> Secret
    /// The API refused `token` (401): the next ``current()`` fetches a new one, unless another request already did.
    func refused(_ token: Secret)
}
