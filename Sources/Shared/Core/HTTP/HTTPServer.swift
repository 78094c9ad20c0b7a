import Foundation
import Synchronization

/// One parsed HTTP request.
package struct ServerRequest: Sendable {
    package var method: String
    package var path: String
    /// Query parameters, percent-decoded, in order.
    package var query: [(String, String)]
    package var rawQuery: String
    package var headers: [String: String]
    package var body: [UInt8]

    package func parameter(_ name: String) -> String? { query.first { $0.0 == name }?.1 }
}

/// What to send back: an answer, or (`.raw`) exactly these bytes and then, with `close`, the end of the connection —
/// what a test server builds its faults from (SandboxKit's `drop` and `truncate`); the server itself has none.
package enum ServerResponse: Sendable {
    case ok(status: Int, headers: [(String, String)], body: [UInt8])
    case raw(bytes: [UInt8], close: Bool)

    package static func json(_ status: Int, _ body: [UInt8], headers: [(String, String)] = []) -> ServerResponse {
        .ok(status: status, headers: [("Content-Type", "application/json; charset=utf-8")] + headers, body: body)
    }
}

/// A small HTTP/1.1 server on POSIX sockets for the sandbox and the metrics endpoint: one thread per connection, keep-alive,
/// Content-Length bodies. Enough for libcurl and curl(1); not a general web server. Whatever a client sends is
/// bounded: the head's size, the body's declared length (a negative, malformed or oversized `Content-Length` is
/// answered 400 / 413 and the connection closed), the number of open connections, and the time a connection may
/// sit idle or trickle bytes.
package final class HTTPServer: @unchecked Sendable {  // listener state is set once in start()
    /// What one client may take of the server.
    package struct Limits: Sendable {
        var maxHeadBytes = 16 << 10
        package var maxBodyBytes = 1 << 20
        package var maxConnections = 64
        /// Of `maxConnections`, the most one client address may hold, so one host cannot take every slot (nil: no
        /// share: the sandbox, whose one client is the fleet on this host; the probe port sets 48 of 64).
        package var maxPerAddress: Int?
        /// Connections beyond `maxConnections` (or beyond an address's share) that are still served, one request
        /// each, within `reserveDeadline` seconds: a probe is answered while slow clients hold the other slots.
        package var reserveSlots = 8
        package var reserveDeadline = 2.0
        /// Seconds a read or write may block before the connection is closed (also how long a kept-alive connection may
        /// wait for its next request).
        package var ioTimeout = 30.0
        /// Seconds from a request's first byte to its last: a client trickling bytes cannot hold a slot longer.
        package var requestDeadline = 10.0
        package init() {}
    }

    private var listener: Int32 = -1
    package private(set) var port: Int = 0
    private let handler: @Sendable (ServerRequest) -> ServerResponse
    private let running = Atomic<Bool>(false)
    private let connections = Atomic<Int>(0)
    private let reserved = Atomic<Int>(0)
    /// Connections per client address (IPv4, network order).
    private let perAddress = Mutex<[UInt32: Int]>([:])
    package let limits: Limits

    package init(limits: Limits = Limits(), handler: @escaping @Sendable (ServerRequest) -> ServerResponse) {
        self.limits = limits
        self.handler = handler
    }

    /// Connections open now.
    var openConnections: Int { connections.load(ordering: .relaxed) }

    /// Binds 127.0.0.1:`port` (0: any free port) and starts accepting. Returns the bound port.
    @discardableResult
    package func start(host: String = "127.0.0.1", port: Int = 0) throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr(host)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 512) == 0 else {
            close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EADDRINUSE)
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.port = Int(UInt16(bigEndian: actual.sin_port))
        self.listener = fd
        running.store(true, ordering: .relaxed)
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "sandbox-accept"
        thread.start()
        return self.port
    }

    package func stop() {
        running.store(false, ordering: .relaxed)
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func acceptLoop() {
        while running.load(ordering: .relaxed) {
            var peer = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let client = withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(listener, $0, &length) }
            }
            guard client >= 0 else {
                switch errno {
                case EINTR, ECONNABORTED, EPROTO, EPERM: continue  // one client's trouble, not the listener's
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    // Out of descriptors or memory: wait for connections to close instead of giving up listening.
                    usleep(100_000)
                    continue
                default:
                    if running.load(ordering: .relaxed) { usleep(100_000) }
                    continue
                }
            }
            let address = peer.sin_addr.s_addr
            let lane: Lane
            if connections.add(1, ordering: .relaxed).newValue <= limits.maxConnections, take(address) {
                lane = .regular
            } else {
                connections.subtract(1, ordering: .relaxed)
                guard reserved.add(1, ordering: .relaxed).newValue <= limits.reserveSlots else {
                    // Over every limit: refuse at once rather than hold a thread for it.
                    reserved.subtract(1, ordering: .relaxed)
                    _ = write(client, head: HTTPServer.head(503, [], 0, keepAlive: false), body: [])
                    close(client)
                    continue
                }
                lane = .reserve
            }
            var one: Int32 = 1
            setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            var timeout = timeval(seconds: lane == .regular ? limits.ioTimeout : limits.reserveDeadline)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let thread = Thread { [self] in
                serve(client, lane: lane) {
                    // Before the socket closes: a client that has seen the close finds the slot free again.
                    if lane == .regular {
                        connections.subtract(1, ordering: .relaxed)
                        perAddress.withLock { counts in
                            counts[address, default: 1] -= 1
                            if counts[address] == 0 { counts[address] = nil }
                        }
                    } else {
                        reserved.subtract(1, ordering: .relaxed)
                    }
                }
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// A regular slot or one of the reserve: the reserve serves one request within `reserveDeadline`, then closes.
    private enum Lane { case regular, reserve }

    /// Takes one of `address`'s share of the regular slots. - Returns: false when it holds its share already.
    private func take(_ address: UInt32) -> Bool {
        perAddress.withLock { counts in
            guard counts[address, default: 0] < limits.maxPerAddress ?? Int.max else { return false }
            counts[address, default: 0] += 1
            return true
        }
    }

    private func serve(_ fd: Int32, lane: Lane, release: () -> Void) {
        defer {
            release()
            close(fd)
        }
        var buffer = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65536)
        let started = ContinuousClock.now
        // The reserve's one request is due `reserveDeadline` after the connection; a regular request `requestDeadline`
        // after its first byte (a kept-alive connection waits up to `ioTimeout` for it).
        var deadline: ContinuousClock.Instant? = lane == .reserve ? started + .seconds(limits.reserveDeadline) : nil
        var armed = lane == .reserve ? limits.reserveDeadline : limits.ioTimeout
        /// Reads what has arrived, waiting no later than the request's deadline. - Returns: bytes read (0: closed or late).
        func receive() -> Int {
            if deadline == nil, !buffer.isEmpty { deadline = ContinuousClock.now + .seconds(limits.requestDeadline) }
            if let deadline {
                let left = (deadline - ContinuousClock.now).seconds
                guard left > 0 else { return 0 }
                if left < armed - 0.05 {
                    var timeout = timeval(seconds: left)
                    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                    armed = left
                }
            }
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0, deadline == nil { deadline = ContinuousClock.now + .seconds(limits.requestDeadline) }
            return n
        }
        while true {
            // Read until the end of the head.
            var headEnd: Int?
            while headEnd == nil {
                headEnd = HTTPServer.findHeadEnd(buffer)
                if headEnd != nil { break }
                let n = receive()
                if n <= 0 { return }
                buffer.append(contentsOf: chunk[0..<n])
                if buffer.count > limits.maxHeadBytes, HTTPServer.findHeadEnd(buffer) == nil {
                    refuse(fd, 431)
                    return
                }
            }
            guard headEnd! <= limits.maxHeadBytes else {
                refuse(fd, 431)
                return
            }
            let parsed: Head
            switch HTTPServer.parseHead(buffer[0..<headEnd!], limits: limits) {
            case .failure(let refusal):
                if refusal.status > 0 { refuse(fd, refusal.status) }
                return
            case .success(let head):
                parsed = head
            }
            let (requestLine, headers, bodyLength) = (parsed.requestLine, parsed.headers, parsed.bodyLength)
            let bodyStart = headEnd! + 4
            while buffer.count < bodyStart + bodyLength {
                let n = receive()
                if n <= 0 { return }
                buffer.append(contentsOf: chunk[0..<n])
            }
            let body = Array(buffer[bodyStart..<(bodyStart + bodyLength)])
            buffer.removeSubrange(0..<(bodyStart + bodyLength))
            let target = String(requestLine[1])
            let (path, rawQuery) =
                target.firstIndex(of: "?").map { (String(target[..<$0]), String(target[target.index(after: $0)...])) }
                ?? (target, "")
            let request = ServerRequest(
                method: String(requestLine[0]), path: HTTPServer.percentDecode(path), query: HTTPServer.parseQuery(rawQuery),
                rawQuery: rawQuery, headers: headers, body: body)
            let keepAlive = headers["connection"]?.lowercased() != "close"
            switch handler(request) {
            case .ok(let status, let extra, let body):
                guard write(fd, head: HTTPServer.head(status, extra, body.count, keepAlive: keepAlive), body: body[...]) else { return }
            case .raw(let bytes, let close):
                guard bytes.isEmpty || write(fd, head: bytes, body: []) else { return }
                if close { return }
            }
            if !keepAlive || lane == .reserve { return }
            // The next request gets its own deadline, from its first byte; until then the connection may idle.
            deadline = nil
            if armed != limits.ioTimeout, buffer.isEmpty {
                var timeout = timeval(seconds: limits.ioTimeout)
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                armed = limits.ioTimeout
            }
        }
    }

    /// A request head, parsed and checked against the limits.
    package struct Head: Sendable {
        var requestLine: [Substring]
        package var headers: [String: String]
        var bodyLength: Int
    }

    /// Why a head is refused: the status to answer (0: just close).
    package struct Refusal: Error, Sendable {
        package var status: Int
    }

    /// Parses a request head (the bytes before CRLF CRLF): the request line, headers (lower-cased names), and a
    /// Content-Length of digits only within the body limit. Pure: what the fuzzer drives.
    package static func parseHead(_ bytes: ArraySlice<UInt8>, limits: Limits) -> Result<Head, Refusal> {
        guard bytes.count <= limits.maxHeadBytes else { return .failure(Refusal(status: 431)) }
        let head = String(decoding: bytes, as: UTF8.self)
        var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
        guard !lines.isEmpty else { return .failure(Refusal(status: 0)) }
        let requestLine = lines.removeFirst().split(separator: " ")
        guard requestLine.count >= 2 else { return .failure(Refusal(status: 0)) }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        // Chunked bodies are not supported; refusing beats misreading the stream.
        if headers["transfer-encoding"] != nil { return .failure(Refusal(status: 501)) }
        let declared = headers["content-length"] ?? "0"
        guard !declared.isEmpty, declared.utf8.count <= 12, declared.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            let bodyLength = Int(declared)
        else { return .failure(Refusal(status: 400)) }
        guard bodyLength <= limits.maxBodyBytes else { return .failure(Refusal(status: 413)) }
        return .success(Head(requestLine: requestLine, headers: headers, bodyLength: bodyLength))
    }

    /// Answers `status` with no body and lets the caller close the connection.
    private func refuse(_ fd: Int32, _ status: Int) {
        _ = write(fd, head: HTTPServer.head(status, [], 0, keepAlive: false), body: [])
    }

    private func write(_ fd: Int32, head: [UInt8], body: ArraySlice<UInt8>) -> Bool {
        var out = head
        out.append(contentsOf: body)
        var offset = 0
        while offset < out.count {
            let n = out.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    package static func head(_ status: Int, _ headers: [(String, String)], _ length: Int, keepAlive: Bool) -> [UInt8] {
        var text = "HTTP/1.1 \(status) \(reason(status))\r\nContent-Length: \(length)\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        if !keepAlive { text += "Connection: close\r\n" }
        text += "\r\n"
        return Array(text.utf8)
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 404: return "Not Found"
        case 413: return "Content Too Large"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        default: return "Status"
        }
    }

    static func findHeadEnd(_ buffer: [UInt8]) -> Int? {
        guard buffer.count >= 4 else { return nil }
        for i in 0...(buffer.count - 4) where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 {
            return i
        }
        return nil
    }

    static func parseQuery(_ raw: String) -> [(String, String)] {
        raw.split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = percentDecode(String(parts[0]).replacingOccurrences(of: "+", with: " "))
            let value = parts.count > 1 ? percentDecode(String(parts[1]).replacingOccurrences(of: "+", with: " ")) : ""
            return (name, value)
        }
    }

    static func percentDecode(_ text: String) -> String {
        guard text.contains("%") else { return text }
        var out: [UInt8] = []
        var bytes = Array(text.utf8)[...]
        while let b = bytes.popFirst() {
            if b == 0x25, bytes.count >= 2, let v = UInt8(String(decoding: bytes.prefix(2), as: UTF8.self), radix: 16) {
                out.append(v)
                bytes = bytes.dropFirst(2)
            } else {
                out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
