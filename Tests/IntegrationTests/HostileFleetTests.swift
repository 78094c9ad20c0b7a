import Foundation
import HuskimoTesting
import SandboxKit
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

/// One account whose API turns hostile on some days (a next page on another host, a page loop, a body over the
/// limit, Retry-After: 999999999, invalid UTF-8), while someone abuses the worker's metrics port: the worker
/// stays up, its peak RSS stays bounded, the hostile days are parked with their reasons, and the healthy days
/// of the same account load exactly.
@Suite(.serialized, .ownThreads, .timeLimit(.minutes(5)))
struct HostileFleetTests {
    /// VmHWM of a process, in KiB (nil once it is gone).
    static func peakRSS(_ pid: pid_t) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
        else { return nil }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    }

    @Test func aWorkerUnderAbuseStaysUpBoundedAndLoadsTheHealthyDaysExactly() throws {
        let account = SandboxAccount.defaults[0]
        let fleet = try FleetHarness(accounts: [("us", account)])
        defer { fleet.cleanUp() }
        fleet.maxAttempts = 3
        fleet.maxResponseMiB = 1
        try fleet.writeConfig()
        try fleet.applyDDL()
        let hostile = [
            TestDays.text(2): "other-host", TestDays.text(3): "loop", TestDays.text(4): "huge", TestDays.text(5): "retry-after",
            TestDays.text(6): "bad-utf8",
        ]
        fleet.api.setFaults(SandboxFaults(twilioHostileDays: hostile))
        try fleet.plan(["--from", TestDays.text(1), "--to", TestDays.text(7), "--resource", "calls"])
        let port = TestServices.freePort()
        let worker = try fleet.worker("w.log", concurrency: 3, idle: 8, extra: ["--metrics-port", String(port)])
        defer { kill(worker, SIGKILL) }
        usleep(500_000)

        // The metrics port, abused while the worker extracts.
        for length in ["-1", "99999999999999999999", "104857600"] {
            _ = RawSocket.exchange(port, Array("POST /metrics HTTP/1.1\r\nContent-Length: \(length)\r\n\r\n".utf8), wait: 1)
        }
        let flood = RawSocket.connect(port)  // a 100 MB header, sent until the server cuts it off
        var sent = 0
        let line = [UInt8](Array("X-Flood: ".utf8) + [UInt8](repeating: 0x61, count: 65_000) + Array("\r\n".utf8))
        _ = Array("GET / HTTP/1.1\r\n".utf8).withUnsafeBytes { send(flood, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        while sent < 100 << 20 {
            let n = line.withUnsafeBytes { send(flood, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }
            sent += n
        }
        close(flood)
        #expect(sent < 100 << 20, "the server stopped reading a header it would never accept (after \(sent) bytes)")
        var idle = (0..<200).map { _ in RawSocket.connect(port) }  // hundreds of idle connections
        usleep(300_000)
        #expect(kill(worker, 0) == 0, "the worker is up under the abuse")
        for fd in idle { close(fd) }
        idle = []
        // The slots come back as the server sees the closed connections (at the latest after its 30 s I/O timeout).
        var healthy = false
        let recovered = Date().addingTimeInterval(35)
        while !healthy, Date() < recovered {
            healthy = RawSocket.exchange(port, Array("GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n".utf8)).hasPrefix("HTTP/1.1 200")
            if !healthy { usleep(200_000) }
        }
        #expect(healthy, "the probe answers again once the idle connections are gone")

        var peak = 0
        let deadline = Date().addingTimeInterval(120)
        while kill(worker, 0) == 0, Date() < deadline {
            if let rss = Self.peakRSS(worker) { peak = max(peak, rss) }
            var status: Int32 = 0
            if waitpid(worker, &status, WNOHANG) == worker { break }
            usleep(100_000)
        }
        #expect(peak > 0 && peak < 128 << 10, "peak RSS \(peak / 1024) MiB (bound 128 MiB)")
        print("hostile: the worker's peak RSS \(peak / 1024) MiB; a 100 MB header cut off after \(sent) bytes; 200 idle connections")
        let loader = try fleet.loader()
        #expect(fleet.wait(loader) == 0)

        // The healthy days of the same account, exactly; the day with invalid UTF-8 loaded with U+FFFD, counted.
        let pg = try PostgresConnection(try TestServices.postgres())
        for day in [TestDays.text(1), TestDays.text(6), TestDays.text(7)] {
            let sids = try pg.query(
                """
                SELECT sid FROM \(fleet.id).twilio_calls WHERE channel_name = 'us' AND start_time >= $1::timestamp
                AND start_time < $1::timestamp + interval '1 day' ORDER BY sid
                """, [day]
            ).map { $0[0] ?? "" }
            #expect(sids == SandboxData.records(account, "calls", day: Day(day)!.ordinal).map(\.sid).sorted(), "\(day): every call, once")
        }
        #expect(try fleet.duplicates("twilio_calls") == 0)
        #expect(
            try pg.query("SELECT count(*) FROM \(fleet.id).twilio_calls WHERE api_version LIKE '\u{FFFD}%'")[0][0]
                == String(SandboxAPI.expected(account, "calls", day: TestDays.day(6)).count), "the invalid bytes became U+FFFD")
        #expect(fleet.log("w.log").contains("values replaced with U+FFFD"))
        // The hostile days are parked, each with its reason.
        let topology = FleetTopology(try fleet.config.queue, targets: ["local"])
        let client = QueueClient(url: try TestServices.amqpURL(), retryWindow: 5, logger: TestServices.logger)
        defer { client.close() }
        var reasons: [String: String] = [:]
        try client.drainBlocking(topology.failedQueue) { delivery in
            let parked = ParkedHeaders(delivery.headers)
            reasons[parked.day ?? "?"] = parked.message
            return .keep
        }
        #expect(reasons[TestDays.text(2)]?.contains("not the configured") == true, "\(reasons)")
        #expect(reasons[TestDays.text(3)]?.contains("page loop") == true, "\(reasons)")
        #expect(reasons[TestDays.text(4)].map { $0.contains("1 MiB") || $0.lowercased().contains("large") } == true, "\(reasons)")
        #expect(reasons[TestDays.text(5)]?.contains("Retry-After") == true, "\(reasons)")
        #expect(reasons.count == 4)
        #expect(!fleet.log("w.log").contains(account.token), "no token in the log")
    }
}
