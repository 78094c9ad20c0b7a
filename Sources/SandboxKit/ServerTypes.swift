package import HuskimoCore

/// The sandbox speaks through Shared's small HTTP server.
package typealias SandboxRequest = ServerRequest
package typealias SandboxResponse = ServerResponse

extension ServerResponse {
    /// A fault: the connection closed without an answer.
    package static var drop: ServerResponse { .raw(bytes: [], close: true) }

    /// A fault: the head with the full Content-Length, then half the body, then the connection closed (a dropped
    /// connection mid-body).
    package static func truncate(status: Int, headers: [(String, String)], body: [UInt8]) -> ServerResponse {
        .raw(bytes: HTTPServer.head(status, headers, body.count, keepAlive: true) + body[0..<(body.count / 2)], close: true)
    }
}
