import Foundation
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet
import HuskimoTesting

/// What arrives from outside, refused with a named error: paging links, messages, requests to a port.
@Suite struct BoundaryTests {
    @Test func pageLinksStayOnTheConfiguredOrigin() throws {
        let links = try PageLinks(base: "https://api.twilio.com/")
        #expect(try links.resolve("/2010-04-01/Accounts/AC1/Calls.json?PageToken=PA1") == "https://api.twilio.com/2010-04-01/Accounts/AC1/Calls.json?PageToken=PA1")
        #expect(try links.resolve("https://API.twilio.com:443/x") == "https://API.twilio.com:443/x")
        for bad in ["@evil.com/x", ".evil.com/x", "//evil.com/x", "http://api.twilio.com/x", "https://api.twilio.com:8443/x",
                    "https://user:pw@api.twilio.com/x", "https://api.twilio.com.evil.com/x", "https://evil.com\\@api.twilio.com/x",
                    "javascript:alert(1)", "", "/x\ny", "/ü"] {
            #expect(throws: PagingError.self, "\(bad)") { try links.resolve(bad) }
        }
        // A proxy's path prefix is kept for absolute paths.
        #expect(try PageLinks(base: "http://127.0.0.1:8080/twilio").resolve("/2010-04-01/x") == "http://127.0.0.1:8080/twilio/2010-04-01/x")
        #expect(throws: PagingError.self) { try PageLinks(base: "https://user:pw@api.twilio.com") }
    }

    @Test func pageLoopsAndEndlessPagingAreRefused() throws {
        var links = try PageLinks(base: "https://api.twilio.com", maxPages: 3)
        try links.visit("https://api.twilio.com/a")
        #expect(throws: PagingError.self) { try links.visit("https://api.twilio.com/a") }
        try links.visit("https://api.twilio.com/b")
        try links.visit("https://api.twilio.com/c")
        let error = #expect(throws: PagingError.self) { try links.visit("https://api.twilio.com/d") }
        #expect(error?.reason.contains("more than 3 pages") == true)
    }

    @Test func jobMessagesOutOfRangeAreRefusedNotTrappedOn() throws {
        let job = ExtractJob(runID: "r", channel: "us", resource: .calls, day: Day("2026-11-20"), plannedAt: "p")
        func encoded(_ change: (inout [String: Any]) -> Void) throws -> [UInt8] {
            var object = try JSONSerialization.jsonObject(with: Data(MessageCodec.encode(job))) as! [String: Any]
            change(&object)
            return Array(try JSONSerialization.data(withJSONObject: object))
        }
        #expect(try MessageCodec.decodeJob(encoded { _ in }).jobID == job.jobID)
        let cases: [(String, (inout [String: Any]) -> Void)] = [
            ("out of range", { $0["attempt"] = -1 }), ("out of range", { $0["attempt"] = 9_000_000_000_000_000_000 as Double }),
            ("out of range", { $0["attempt"] = 1001 }), ("version", { $0["version"] = 0 }), ("version", { $0["version"] = 2 }),
            ("does not match", { $0["job_id"] = "twilio/other/calls/2026-11-20" }), ("needs a day", { $0["day"] = NSNull(); $0["job_id"] = "twilio/us/calls/snapshot" }),
        ]
        for (expected, change) in cases {
            do {
                _ = try MessageCodec.decodeJob(try encoded(change))
                Issue.record("accepted: \(expected)")
            } catch let error as JobError {
                #expect(error.errorClass == .permanent && error.message.contains(expected), "\(error)")
            } catch {
                // Not representable as the field's type (an attempt beyond Int): a decoding error, classified permanent.
                #expect(ErrorClass.of(error) == .permanent)
            }
        }
        #expect(throws: JobError.self) { try MessageCodec.decodeJob([UInt8](repeating: 0x20, count: 70_000)) }
    }

    /// Sends raw bytes to 127.0.0.1:`port` and returns what came back before the server closed or went quiet.
    static func exchange(_ port: Int, _ bytes: [UInt8], wait: Double = 2) -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return "" }
        var timeout = timeval()
        timeout.tv_sec = Int(wait)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            out += chunk[0..<n]
            if out.count > 1 << 16 { break }
        }
        return String(decoding: out, as: UTF8.self)
    }

    @Test func theMetricsPortSurvivesHostileRequests() throws {
        let server = try MetricsServer(port: 0) { true }
        defer { server.stop() }
        let port = server.port
        func get(_ path: String) -> String { Self.exchange(port, Array("GET \(path) HTTP/1.1\r\nConnection: close\r\n\r\n".utf8)) }
        #expect(get("/healthz").hasPrefix("HTTP/1.1 200"))
        for (length, status) in [("-1", "400"), ("abc", "400"), ("+5", "400"), ("99999999999999999999", "400"), ("104857600", "413")] {
            let answer = Self.exchange(port, Array("POST /metrics HTTP/1.1\r\nContent-Length: \(length)\r\n\r\n".utf8))
            #expect(answer.hasPrefix("HTTP/1.1 \(status)"), "Content-Length \(length): \(answer.prefix(40))")
        }
        let chunked = Self.exchange(port, Array("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".utf8))
        #expect(chunked.hasPrefix("HTTP/1.1 501"))
        let bigHead = Self.exchange(port, Array("GET / HTTP/1.1\r\nX-Pad: \(String(repeating: "a", count: 100_000))\r\n\r\n".utf8))
        #expect(bigHead.hasPrefix("HTTP/1.1 431"))
        #expect(get("/healthz").hasPrefix("HTTP/1.1 200"), "still serving after the abuse")
    }

    @Test func idleConnectionsBeyondTheLimitAreTurnedAway() throws {
        var limits = HTTPServer.Limits()
        limits.maxConnections = 8
        limits.ioTimeout = 1
        let server = HTTPServer(limits: limits) { _ in .ok(status: 200, headers: [], body: Array("ok".utf8)) }
        let port = try server.start()
        defer { server.stop() }
        var idle: [Int32] = []
        for _ in 0..<8 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            idle.append(fd)
        }
        usleep(200_000)
        #expect(Self.exchange(port, Array("GET / HTTP/1.1\r\n\r\n".utf8)).hasPrefix("HTTP/1.1 503"), "the ninth is refused, not queued")
        // The idle ones time out (ioTimeout 1 s) and their slots come back.
        usleep(1_500_000)
        #expect(Self.exchange(port, Array("GET / HTTP/1.1\r\nConnection: close\r\n\r\n".utf8)).hasPrefix("HTTP/1.1 200"))
        for fd in idle { close(fd) }
    }
}
