/// A parsed `amqp://user:password@host:port/vhost` or `amqps://…` URI (RabbitMQ's URI spec: the vhost is
/// percent-decoded, `%2f` is `/`, an empty path is the default vhost `/`).
package struct AMQPURL: Sendable, Hashable, CustomStringConvertible {
    var tls: Bool
    package var host: String
    package var port: Int
    package var user: String
    package var password: Secret
    package var vhost: String
    var heartbeatSeconds: Int
    /// amqps: the CA bundle that signs the broker's certificate (`?cacertfile=PATH`, as RabbitMQ's URI spec has it);
    /// nil: the system's CA bundle.
    var caCertFile: String?

    package init(_ text: String) throws {
        let lower = text.lowercased()
        let rest: Substring
        if lower.hasPrefix("amqps://") {
            tls = true
            rest = text.dropFirst(8)
        } else if lower.hasPrefix("amqp://") {
            tls = false
            rest = text.dropFirst(7)
        } else {
            throw AMQPError(.badURL, "expected amqp:// or amqps://", class: .permanent)
        }
        var authority = rest
        var path: Substring = ""
        var query: Substring = ""
        if let q = authority.firstIndex(of: "?") {
            query = authority[authority.index(after: q)...]
            authority = authority[..<q]
        }
        if let slash = authority.firstIndex(of: "/") {
            path = authority[authority.index(after: slash)...]
            authority = authority[..<slash]
        }
        user = "guest"
        password = Secret("guest")
        if let at = authority.lastIndex(of: "@") {
            let userinfo = authority[..<at]
            authority = authority[authority.index(after: at)...]
            if let colon = userinfo.firstIndex(of: ":") {
                user = try AMQPURL.decode(userinfo[..<colon])
                password = Secret(try AMQPURL.decode(userinfo[userinfo.index(after: colon)...]))
            } else {
                user = try AMQPURL.decode(userinfo)
            }
        }
        port = tls ? 5671 : 5672
        if authority.hasPrefix("[") {  // [ipv6]:port
            guard let close = authority.firstIndex(of: "]") else {
                throw AMQPError(.badURL, "unclosed [ in host", class: .permanent)
            }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") { port = try AMQPURL.port(after.dropFirst()) }
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            port = try AMQPURL.port(authority[authority.index(after: colon)...])
        } else {
            host = String(authority)
        }
        if host.isEmpty { host = "localhost" }
        vhost = path.isEmpty ? "/" : try AMQPURL.decode(path)
        heartbeatSeconds = 10  // a node that hangs is noticed within ~20 s (two missed heartbeats), and left
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2, parts[0] == "heartbeat" {
                guard let value = Int(parts[1]), value >= 0 else {
                    throw AMQPError(.badURL, "heartbeat must be a whole number of seconds", class: .permanent)
                }
                heartbeatSeconds = value
            } else if parts.count == 2, parts[0] == "cacertfile" {
                caCertFile = try AMQPURL.decode(parts[1])
            }
        }
    }

    private static func port(_ text: Substring) throws -> Int {
        guard let port = Int(text), (1...65535).contains(port) else {
            throw AMQPError(.badURL, "port must be 1–65535", class: .permanent)
        }
        return port
    }

    static func decode(_ text: Substring) throws -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let h = iterator.next(), let l = iterator.next(), let hi = hexValue(h), let lo = hexValue(l) else {
                    throw AMQPError(.badURL, "bad percent-encoding", class: .permanent)
                }
                bytes.append(hi << 4 | lo)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// The URL with the password redacted: safe for logs.
    package var description: String {
        let vhostText = vhost == "/" ? "%2f" : vhost
        return "\(tls ? "amqps" : "amqp")://\(user):<redacted>@\(host):\(port)/\(vhostText)"
    }
}
