import Foundation
import HuskimoTesting
import Synchronization
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

/// What arrives from outside, refused with a named error: paging links, messages, requests to a port.
@Suite struct BoundaryTests {
    @Test func pageLinksStayOnTheConfiguredOrigin() throws {
        let links = try PageLinks(base: "https://api.twilio.com/")
        #expect(
            try links.resolve("/2010-04-01/Accounts/AC1/Calls.json?PageToken=PA1")
                == "https://api.twilio.com/2010-04-01/Accounts/AC1/Calls.json?PageToken=PA1")
        #expect(try links.resolve("https://API.twilio.com:443/x") == "https://API.twilio.com:443/x")
        for bad in [
            "@evil.com/x", ".evil.com/x", "//evil.com/x", "http://api.twilio.com/x", "https://api.twilio.com:8443/x",
            "https://user:pw@api.twilio.com/x", "https://api.twilio.com.evil.com/x", "https://evil.com\\@api.twilio.com/x",
            "javascript:alert(1)", "", "/x\ny", "/ü",
        ] {
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
        let job = ExtractJob(runID: ExtractJob.fixtureRunID, channel: "us", resource: .calls, day: Day("2026-11-20"), plannedAt: "p")
        func encoded(_ change: (inout [String: Any]) -> Void) throws -> [UInt8] {
            var object = try JSONSerialization.jsonObject(with: Data(MessageCodec.encode(job))) as! [String: Any]
            change(&object)
            return Array(try JSONSerialization.data(withJSONObject: object))
        }
        #expect(try MessageCodec.decodeJob(encoded { _ in }).jobID == job.jobID)
        let cases: [(String, (inout [String: Any]) -> Void)] = [
            ("out of range", { $0["attempt"] = -1 }), ("out of range", { $0["attempt"] = 9_000_000_000_000_000_000 as Double }),
            ("out of range", { $0["attempt"] = 1001 }), ("version", { $0["version"] = 0 }), ("version", { $0["version"] = 3 }),
            ("does not match", { $0["job_id"] = "twilio/other/calls/2026-11-20" }),
            (
                "needs a day",
                {
                    $0["day"] = NSNull()
                    $0["job_id"] = "twilio/us/calls/snapshot"
                }
            ),
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

    /// One account's job: version 2, the account in its id; an account that does not match the id, or is not a plain
    /// token, is refused.
    @Test func aJobOfOneAccountCarriesItInItsIdAndIsCheckedLikeTheRest() throws {
        let sid = "AC" + String(repeating: "0", count: 31) + "1"
        let job = ExtractJob(
            runID: ExtractJob.fixtureRunID, channel: "us", resource: .calls, day: Day("2026-11-20"), plannedAt: "p", account: sid)
        #expect(job.version == 2 && job.jobID == "twilio/us/calls/2026-11-20/\(sid)")
        #expect(try MessageCodec.decodeJob(MessageCodec.encode(job)) == job)
        #expect(ExtractJob(runID: "r", channel: "us", resource: .calls, day: Day("2026-11-20"), plannedAt: "p").version == 1)
        for (account, id) in [("AC2", job.jobID), ("../x", "twilio/us/calls/2026-11-20/../x"), ("", "twilio/us/calls/2026-11-20/")] {
            var object = try JSONSerialization.jsonObject(with: Data(MessageCodec.encode(job))) as! [String: Any]
            object["account"] = account
            object["job_id"] = id
            #expect(throws: JobError.self, "\(account)") {
                try MessageCodec.decodeJob(Array(try JSONSerialization.data(withJSONObject: object)))
            }
        }
        let load = LoadMessage(job: job, objects: [], extractedAt: "2026-11-21T00:00:00.000Z")
        #expect(load.version == 2 && load.account == sid && load.ledgerChannel == "us/\(sid)")
        #expect(
            LoadMessage(
                job: ExtractJob(runID: "r", channel: "us", resource: .calls, day: nil, plannedAt: "p"), objects: [], extractedAt: "x"
            ).ledgerChannel == "us")
    }

    @Test func s3CallsRetryTransientAnswersInPlaceAndNothingElse() throws {
        func answer(_ status: Int) -> HTTPResponse { HTTPResponse(head: HTTPResponseHead(status: status, headers: []), body: []) }
        // One 503, then 200: answered after one pause, not handed up (a job is not re-extracted for it).
        var calls = 0
        let ok = try S3Client.retrying(delays: [0.01, 0.01, 0.01]) {
            calls += 1
            return answer(calls == 1 ? 503 : 200)
        }
        #expect(ok.status == 200 && calls == 2)
        // A dropped connection is retried the same way; a 403 is not retried at all.
        calls = 0
        _ = try S3Client.retrying(delays: [0.01]) {
            calls += 1
            if calls == 1 { throw CurlError(.transport, curlCode: 56, "connection reset", class: .transient) }
            return answer(200)
        }
        #expect(calls == 2)
        calls = 0
        #expect(
            try S3Client.retrying(delays: [0.01, 0.01]) {
                calls += 1
                return answer(403)
            }.status == 403 && calls == 1)
        // After the last delay the last answer is what the caller sees.
        calls = 0
        #expect(
            try S3Client.retrying(delays: [0.01, 0.01]) {
                calls += 1
                return answer(503)
            }.status == 503 && calls == 3)
    }

    @Test func theMetricsPortSurvivesHostileRequests() throws {
        let server = try MetricsServer(port: 0) { true }
        defer { server.stop() }
        let port = server.port
        func get(_ path: String) -> String { RawSocket.exchange(port, Array("GET \(path) HTTP/1.1\r\nConnection: close\r\n\r\n".utf8)) }
        #expect(get("/healthz").hasPrefix("HTTP/1.1 200"))
        for (length, status) in [("-1", "400"), ("abc", "400"), ("+5", "400"), ("99999999999999999999", "400"), ("104857600", "413")] {
            let answer = RawSocket.exchange(port, Array("POST /metrics HTTP/1.1\r\nContent-Length: \(length)\r\n\r\n".utf8))
            #expect(answer.hasPrefix("HTTP/1.1 \(status)"), "Content-Length \(length): \(answer.prefix(40))")
        }
        let chunked = RawSocket.exchange(port, Array("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".utf8))
        #expect(chunked.hasPrefix("HTTP/1.1 501"))
        let bigHead = RawSocket.exchange(port, Array("GET / HTTP/1.1\r\nX-Pad: \(String(repeating: "a", count: 100_000))\r\n\r\n".utf8))
        #expect(bigHead.hasPrefix("HTTP/1.1 431"))
        #expect(get("/healthz").hasPrefix("HTTP/1.1 200"), "still serving after the abuse")
    }

    @Test func idleConnectionsBeyondTheLimitAreTurnedAway() throws {
        var limits = HTTPServer.Limits()
        limits.maxConnections = 8
        limits.maxPerAddress = 8
        limits.reserveSlots = 2
        limits.reserveDeadline = 4
        // Long enough that the idle connections still hold their slots on a loaded machine when the eleventh comes.
        limits.ioTimeout = 4
        let server = HTTPServer(limits: limits) { _ in .ok(status: 200, headers: [], body: Array("ok".utf8)) }
        let port = try server.start()
        defer { server.stop() }
        var idle: [Int32] = []
        for _ in 0..<8 { idle.append(RawSocket.connect(port)) }
        usleep(200_000)
        // Past the regular slots, the reserve still serves a prompt request (a probe)…
        #expect(RawSocket.exchange(port, Array("GET / HTTP/1.1\r\n\r\n".utf8)).hasPrefix("HTTP/1.1 200"), "the reserve serves one request")
        // …and when idle connections hold the reserve too, the next is refused, not queued.
        for _ in 0..<2 { idle.append(RawSocket.connect(port)) }
        usleep(200_000)
        #expect(
            RawSocket.exchange(port, Array("GET / HTTP/1.1\r\n\r\n".utf8)).hasPrefix("HTTP/1.1 503"), "the eleventh is refused, not queued")
        // The idle ones time out (ioTimeout and the reserve's deadline, 4 s) and their slots come back.
        usleep(4_500_000)
        #expect(RawSocket.exchange(port, Array("GET / HTTP/1.1\r\nConnection: close\r\n\r\n".utf8)).hasPrefix("HTTP/1.1 200"))
        for fd in idle { close(fd) }
    }

    /// Slowloris against the probe port: 64 connections from one host trickle a request a byte at a time (reconnecting
    /// whenever the server cuts them off) for 90 s, while the kubelet (another address) asks `/healthz` every second with
    /// its 1 s timeout. Every probe is answered 200: one host holds at most its share of the slots, a request must be
    /// whole within its deadline, and probes beyond the slots get the reserve.
    @Test(.timeLimit(.minutes(3))) func slowClientsNeverStarveTheProbes() throws {
        let server = try MetricsServer(port: 0) { true }
        defer { server.stop() }
        let port = server.port
        let stop = Atomic<Bool>(false)
        let attack = Thread {
            var fds = [Int32](repeating: -1, count: 64)
            while !stop.load(ordering: .relaxed) {
                for i in fds.indices {
                    if fds[i] < 0 {
                        fds[i] = RawSocket.connect(port)
                        _ = Array("GET /healthz HTTP/1.1\r\nX-Slow: ".utf8).withUnsafeBytes {
                            send(fds[i], $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
                        }
                    } else if [UInt8(ascii: "a")].withUnsafeBytes({ send(fds[i], $0.baseAddress, 1, Int32(MSG_NOSIGNAL)) }) != 1 {
                        close(fds[i])
                        fds[i] = -1
                    }
                }
                usleep(3_000_000)  // a byte every 3 s: well inside the 30 s read timeout
            }
            for fd in fds where fd >= 0 { close(fd) }
        }
        attack.start()
        defer { stop.store(true, ordering: .relaxed) }
        usleep(1_000_000)
        var answered = 0
        var failed: [String] = []
        let until = Date().addingTimeInterval(90)
        while Date() < until {
            let reply = RawSocket.exchange(
                port, Array("GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n".utf8), wait: 1, from: "127.0.0.2")
            if reply.hasPrefix("HTTP/1.1 200") { answered += 1 } else { failed.append(String(reply.prefix(40))) }
            usleep(1_000_000)
        }
        #expect(failed.isEmpty && answered >= 60, "\(answered) probes answered, \(failed.count) not: \(failed.prefix(5))")
        // The kubelet and the slow clients share an address in some clusters: the reserve answers it too.
        #expect(
            RawSocket.exchange(port, Array("GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n".utf8), wait: 1).hasPrefix("HTTP/1.1 200"))
    }
}
