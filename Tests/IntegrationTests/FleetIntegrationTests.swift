import Foundation
import HuskimoTesting
import SandboxKit
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

/// The fleet as users run it: planner, extract workers and a loader as separate processes on the real broker.
@Suite(.serialized, .ownThreads, .timeLimit(.minutes(5)))
struct FleetIntegrationTests {
    static let days = [TestDays.day(20), TestDays.day(21)]
    static let range = [
        "--from", TestDays.text(20), "--to", TestDays.text(21), "--resource", "calls", "--resource", "messages",
        "--resource", "recordings",
    ]

    static func threeChannels() -> [(String, SandboxAccount)] {
        [("us", SandboxAccount.defaults[0]), ("eu", SandboxAccount.defaults[1]), ("asia", SandboxAccount.defaults[2])]
    }

    @Test(arguments: ["postgres", "redshift"]) func twoWorkersShareTheWorkAndPlanningTwiceDuplicatesNothing(target: String) throws {
        let fleet = try FleetHarness(accounts: Self.threeChannels(), target: target)
        defer { fleet.cleanUp() }
        fleet.api.setFaults(SandboxFaults(latencyMs: 40))
        try fleet.applyDDL()
        try fleet.plan(Self.range)
        let a = try fleet.worker("a.log", concurrency: 2), b = try fleet.worker("b.log", concurrency: 2)
        let loader = try fleet.loader()
        #expect(fleet.wait(a) == 0 && fleet.wait(b) == 0 && fleet.wait(loader) == 0)
        let aJobs = fleet.log("a.log").components(separatedBy: "job succeeded").count - 1
        let bJobs = fleet.log("b.log").components(separatedBy: "job succeeded").count - 1
        #expect(aJobs > 0 && bJobs > 0, "both workers processed jobs: \(aJobs) and \(bJobs)")
        #expect(aJobs + bJobs == 18)
        try fleet.expectExact(days: Self.days)
        // Every target (one here) has loaded every object: the staged objects and their markers are gone.
        let s3 = S3Client(try TestServices.s3(bucket: fleet.id))
        #expect(try s3.list(prefix: "stage/").isEmpty, "staged objects are deleted once loaded everywhere")

        // The same days planned again: replaced, not duplicated.
        try fleet.plan(Self.range)
        let c = try fleet.worker("c.log"), loader2 = try fleet.loader("loader2.log")
        #expect(fleet.wait(c) == 0 && fleet.wait(loader2) == 0)
        try fleet.expectExact(days: Self.days)
    }

    @Test func aWorkerKilledMidJobHasItsJobsRedeliveredAndTheDataEndsExact() throws {
        let fleet = try FleetHarness(accounts: Self.threeChannels())
        defer { fleet.cleanUp() }
        fleet.api.setFaults(SandboxFaults(latencyMs: 300))
        try fleet.applyDDL()
        try fleet.plan(Self.range)
        let victim = try fleet.worker("victim.log", concurrency: 4)
        // Let it take jobs and get into the middle of them, then SIGKILL it.
        let deadline = Date().addingTimeInterval(30)
        while fleet.api.currentStats.requests < 6, Date() < deadline { usleep(50_000) }
        kill(victim, SIGKILL)
        #expect(fleet.wait(victim) == 128 + SIGKILL)
        fleet.api.setFaults(SandboxFaults(latencyMs: 10))
        let rescuer = try fleet.worker("rescuer.log"), loader = try fleet.loader()
        #expect(fleet.wait(rescuer) == 0 && fleet.wait(loader) == 0)
        try fleet.expectExact(days: Self.days)
        let status = try fleet.run("huskimo-planner", ["status", "--config", fleet.configPath])
        #expect(status.0 == 0, "no failed jobs: \(status.1)")
    }

    @Test(arguments: ["postgres", "redshift"]) func aCorruptStagedObjectIsParkedWithItsReasonAndTheNextLoadsGoOn(target: String) throws {
        let fleet = try FleetHarness(accounts: [("us", SandboxAccount.defaults[0])], target: target)
        defer { fleet.cleanUp() }
        try fleet.applyDDL()
        try fleet.plan(["--from", TestDays.text(20), "--to", TestDays.text(21), "--resource", "calls"])
        let worker = try fleet.worker("w.log")
        #expect(fleet.wait(worker) == 0)
        // Damage the staged object of day 20 (bit rot, a partial upload, a tool that rewrote it).
        let s3 = S3Client(try TestServices.s3(bucket: fleet.id))
        let staged = try s3.list(prefix: "stage/twilio_calls/us/\(TestDays.text(20))/")
        #expect(staged.count == 1)
        let key = try #require(staged.first).key
        let original = try s3.get(key)
        try s3.put(key, Array("this is not gzip at all".utf8))
        let loader = try fleet.loader()
        #expect(fleet.wait(loader) == 0, "the loader neither stops nor retries the batch forever")
        // The damaged day is parked with a reason that names the object; the other day is loaded.
        #expect(
            try fleet.rows("twilio_calls", channel: "us")
                == SandboxAPI.expected(SandboxAccount.defaults[0], "calls", day: TestDays.day(21)).count)
        let status = try fleet.run("huskimo-planner", ["status", "--config", fleet.configPath])
        #expect(status.0 == 1, "status exits 1 while a load is parked")
        #expect(status.1.contains("1 × permanent in us (\(fleet.id).load.local.failed)"), "\(status.1)")
        let json = try fleet.run("huskimo-planner", ["status", "--config", fleet.configPath, "--json"])
        // Warnings (sslmode disable on the local stack) go first, on stderr: the document starts at its brace.
        let document = try JSONSerialization.jsonObject(with: Data(json.1[json.1.firstIndex(of: "{")!...].utf8)) as? [String: Any]
        let failures = document?["failures"] as? [[String: Any]] ?? []
        #expect(failures.count == 1 && failures.first?["count"] as? Int == 1)
        let reason = failures.first?["newestMessage"] as? String ?? ""
        if target == "postgres" {
            #expect(reason.contains("\(key): the staged object is not valid gzip"), "\(json.1)")
        } else {
            #expect(reason.contains("stl_load_errors") || reason.lowercased().contains("gzip"), "Redshift's COPY names it: \(reason)")
        }
        #expect(fleet.log("loader.log").contains("load failed"))

        // The object restored (from a backup, or re-extracted), the operator re-drives the target's failed loads.
        try s3.put(key, original)
        let requeue = try fleet.run("huskimo-planner", ["requeue", "--config", fleet.configPath, "--loads", "local"])
        #expect(requeue.0 == 0 && requeue.1.contains("requeued 1"), "\(requeue.1)")
        let again = try fleet.loader("loader2.log")
        #expect(fleet.wait(again) == 0)
        try fleet.expectExact(days: [TestDays.day(20), TestDays.day(21)], resources: [.calls], channels: ["us"])
        #expect(try fleet.run("huskimo-planner", ["status", "--config", fleet.configPath]).0 == 0, "nothing parked any more")
    }

    @Test(arguments: ["postgres", "redshift"]) func theNextNightsSettlePassPicksUpWhatChangedAndDuplicatesNothing(target: String) throws {
        let account = SandboxAccount.defaults[0]
        let fleet = try FleetHarness(accounts: [("us", account)], target: target)
        defer { fleet.cleanUp() }
        fleet.settleDays = 2
        try fleet.writeConfig()
        try fleet.applyDDL()
        let pg = try PostgresConnection(try TestServices.postgres())
        func count(_ table: String, _ column: String, _ day: String, _ condition: String = "true") throws -> Int {
            Int(
                try pg.query(
                    """
                    SELECT count(*) FROM \(fleet.id).\(table) WHERE channel_name = 'us' AND \(column) >= $1::timestamp
                    AND \(column) < $1::timestamp + interval '1 day' AND (\(condition))
                    """, [day])[0][0]!)!
        }
        let days = [TestDays.text(18), TestDays.text(19), TestDays.text(20), TestDays.text(21)]
        func night(_ runDay: String, _ name: String) throws {
            try fleet.plan(["--date", runDay, "--resource", "calls", "--resource", "messages"])
            let w = try fleet.worker("w-\(name).log"), l = try fleet.loader("l-\(name).log")
            #expect(fleet.wait(w) == 0 && fleet.wait(l) == 0)
        }

        // Night one (run day 20): days 18 … 20 as Twilio first answers them: calls still in progress, messages
        // without a price.
        try night(TestDays.text(20), "1")
        for day in days.prefix(3) {
            #expect(try count("twilio_calls", "start_time", day) == SandboxAPI.expected(account, "calls", day: Day(day)).count)
            #expect(try count("twilio_messages", "date_sent", day) == SandboxAPI.expected(account, "messages", day: Day(day)).count)
        }
        var unsettled: [String: Int] = [:]  // "table day" → records the settle pass must change
        for day in days.prefix(3) {
            unsettled["twilio_calls \(day)"] = try count("twilio_calls", "start_time", day, "status = 'in-progress'")
            unsettled["twilio_messages \(day)"] = try count("twilio_messages", "date_sent", day, "price IS NULL")
        }
        #expect(unsettled.values.reduce(0, +) > 0, "the first read holds unsettled records")
        func reports(after loadedAt: String) throws -> [String: [String?]] {
            let rows = try pg.query(
                """
                SELECT table_name || ' ' || partition_key, outcome, rows_before::text, rows_after::text, rows_changed::text,
                       rows_added::text, rows_removed::text FROM \(fleet.id).load_reports WHERE channel_name = 'us' AND loaded_at > $1::timestamptz
                """, [loadedAt])
            return Dictionary(rows.map { ($0[0]!, Array($0.dropFirst())) }) { a, _ in a }
        }
        let afterNightOne = try pg.query("SELECT to_char(max(loaded_at), 'YYYY-MM-DD HH24:MI:SS.US TZH') FROM \(fleet.id).load_reports")[0][
            0]!

        // The data settles: calls complete and are priced, messages are priced, a late message appears per day.
        fleet.api.setFaults(SandboxFaults(twilioRevision: 1))
        // Night two (run day 21): days 19 … 21 read again; day 18 is out of the window and stays as it was.
        try night(TestDays.text(21), "2")
        for day in days.dropFirst() {
            #expect(
                try count("twilio_calls", "start_time", day) == SandboxAPI.expected(account, "calls", day: Day(day), revision: 1).count,
                "\(day)")
            #expect(
                try count("twilio_messages", "date_sent", day)
                    == SandboxAPI.expected(account, "messages", day: Day(day), revision: 1).count, "\(day)")
            #expect(try count("twilio_calls", "start_time", day, "status = 'in-progress' OR price IS NULL") == 0, "\(day) calls settled")
            #expect(try count("twilio_messages", "date_sent", day, "price IS NULL") == 0, "\(day) messages priced")
        }
        #expect(try count("twilio_messages", "date_sent", days[0]) == SandboxAPI.expected(account, "messages", day: Day(days[0])).count)
        #expect(try fleet.duplicates("twilio_calls") == 0 && fleet.duplicates("twilio_messages") == 0)

        // The change report: per reloaded day, exactly the records that settled, and the late message as added.
        let second = try reports(after: afterNightOne)
        #expect(second.count == 6, "3 days × 2 tables reported: \(second.keys.sorted())")
        for day in days[1...2] {
            let calls = SandboxAPI.expected(account, "calls", day: Day(day)).count
            let messages = SandboxAPI.expected(account, "messages", day: Day(day)).count
            #expect(
                second["twilio_calls \(day)"] == ["replaced", "\(calls)", "\(calls)", "\(unsettled["twilio_calls \(day)"]!)", "0", "0"])
            #expect(
                second["twilio_messages \(day)"]
                    == ["replaced", "\(messages)", "\(messages + 1)", "\(unsettled["twilio_messages \(day)"]!)", "1", "0"])
        }
        let newDay = SandboxAPI.expected(account, "calls", day: Day(days[3]), revision: 1).count
        #expect(second["twilio_calls \(days[3])"] == ["replaced", "0", "\(newDay)", "0", "\(newDay)", "0"], "a first load: all added")
        let (passText, passJSON) = try (
            fleet.run("huskimo-planner", ["status", "--config", fleet.configPath]).1,
            fleet.run("huskimo-planner", ["status", "--config", fleet.configPath, "--json"]).1
        )
        let status = try JSONDecoder().decode(FleetStatus.self, from: Data(passJSON[passJSON.firstIndex(of: "{")!...].utf8))
        let messagesPass = try #require(status.reloads.first { $0.pass.table == "twilio_messages" }?.pass)
        #expect((messagesPass.replaced, messagesPass.newPartitions, messagesPass.added, messagesPass.identical) == (2, 1, 2, 0))
        #expect(messagesPass.changed == unsettled["twilio_messages \(days[1])"]! + unsettled["twilio_messages \(days[2])"]!)
        #expect(
            passText.contains("local / twilio_messages / us: 2 replaced (\(messagesPass.changed) changed, 2 added, 0 removed)"),
            "\(passText)")
        #expect(fleet.log("l-2.log").contains("partition replaced"))

        // Night three, nothing settled since: every re-read is identical, skipped, and the rows stay as loaded.
        let retrieved = try pg.query("SELECT max(when_retrieved)::text, count(*) FROM \(fleet.id).twilio_messages")[0]
        let afterNightTwo = try pg.query("SELECT to_char(max(loaded_at), 'YYYY-MM-DD HH24:MI:SS.US TZH') FROM \(fleet.id).load_reports")[0][
            0]!
        try night(TestDays.text(21), "3")
        let third = try reports(after: afterNightTwo)
        #expect(third.count == 6 && third.values.allSatisfy { $0[0] == "identical" && $0[3] == "0" }, "\(third)")
        #expect(
            try pg.query("SELECT max(when_retrieved)::text, count(*) FROM \(fleet.id).twilio_messages")[0] == retrieved,
            "identical re-reads leave the rows untouched")
        #expect(fleet.log("l-3.log").contains("reload identical, skipped"))
        #expect(try fleet.duplicates("twilio_calls") == 0 && fleet.duplicates("twilio_messages") == 0)
    }

    @Test(arguments: ["postgres", "redshift"]) func aRevokedChannelFailsPermanentlyAtOnceAndLoadsAfterRequeue(target: String) throws {
        var channels = Self.threeChannels()
        channels[1].0 = "revoked"
        let fleet = try FleetHarness(accounts: channels, tokens: ["revoked": "wrong-token-9z"], target: target)
        defer { fleet.cleanUp() }
        try fleet.applyDDL()
        try fleet.plan(Self.range)
        let w = try fleet.worker("w.log"), l = try fleet.loader()
        #expect(fleet.wait(w) == 0 && fleet.wait(l) == 0)
        try fleet.expectExact(days: Self.days, channels: ["us", "asia"])
        #expect(try fleet.rows("twilio_calls", channel: "revoked") == 0)

        let topology = FleetTopology(try fleet.config.queue, targets: ["local"])
        let client = QueueClient(url: try TestServices.amqpURL(), retryWindow: 5, logger: TestServices.logger)
        var parked: [AMQPDelivery] = []
        try client.drainBlocking(topology.failedQueue) {
            parked.append($0)
            return .keep
        }
        // Distinct jobs: other suites restart the broker while this one runs, and a park whose ack the killed broker
        // never persisted is parked again on redelivery (AMQP is at-least-once; requeue is idempotent).
        #expect(Set(parked.compactMap { $0.headers["x-id"]?.stringValue }).count == 6 && parked.count >= 6)
        #expect(parked.allSatisfy { $0.headers["x-error-class"] == .string("permanent") && $0.headers["x-attempts"] == .int(1) })
        #expect(parked.allSatisfy { $0.headers["x-channel"] == .string("revoked") })
        #expect(parked.allSatisfy { ($0.headers["x-error-message"]?.stringValue ?? "").contains("20003") })
        #expect(!fleet.log("w.log").contains("wrong-token-9z"), "the token never reaches the logs")

        let status = try fleet.run("huskimo-planner", ["status", "--config", fleet.configPath, "--json"])
        #expect(status.0 == 1, "status exits 1 while jobs are failed")
        let json = try #require(status.1.firstIndex(of: "{").map { String(status.1[$0...]) })
        let report = try JSONDecoder().decode(FleetStatus.self, from: Data(json.utf8))
        #expect(report.failures.map(\.errorClass) == ["permanent"])
        #expect(report.failures.first?.channel == "revoked" && report.failures.first?.count == 6)
        #expect(report.queues.contains { $0.name == topology.failedQueue && $0.ready == 6 })

        // The operator fixes the token and re-drives the channel's failed jobs.
        fleet.accounts[1].token = SandboxAccount.defaults[1].token
        try fleet.writeConfig()
        let dry = try fleet.run("huskimo-planner", ["requeue", "--config", fleet.configPath, "--channel", "revoked", "--dry-run"])
        #expect(dry.1.contains("would requeue 6"))
        let requeue = try fleet.run("huskimo-planner", ["requeue", "--config", fleet.configPath, "--channel", "revoked"])
        #expect(requeue.0 == 0 && requeue.1.contains("requeued 6"))
        let w2 = try fleet.worker("w2.log"), l2 = try fleet.loader("l2.log")
        #expect(fleet.wait(w2) == 0 && fleet.wait(l2) == 0)
        try fleet.expectExact(days: Self.days)
        #expect(try client.depthBlocking(topology.failedQueue).ready == 0)
    }

    @Test func sigtermDuringAJobExitsCleanlyAndLosesNothing() throws {
        let fleet = try FleetHarness(accounts: Self.threeChannels())
        defer { fleet.cleanUp() }
        fleet.api.setFaults(SandboxFaults(latencyMs: 200))
        try fleet.applyDDL()
        try fleet.plan(Self.range)
        let w = try fleet.worker("w.log", concurrency: 3, idle: 30)
        let deadline = Date().addingTimeInterval(30)
        while fleet.api.currentStats.requests < 4, Date() < deadline { usleep(50_000) }
        kill(w, SIGTERM)
        #expect(fleet.wait(w, timeout: 40) == 0, "a clean exit on SIGTERM")
        #expect(fleet.log("w.log").contains("shutting down"))
        fleet.api.setFaults(SandboxFaults())
        let w2 = try fleet.worker("w2.log"), l = try fleet.loader()
        #expect(fleet.wait(w2) == 0 && fleet.wait(l) == 0)
        try fleet.expectExact(days: Self.days)
    }

    @Test func aSecondSignalExitsAtOnceAndTheJobsComeBack() throws {
        let fleet = try FleetHarness(accounts: Self.threeChannels())
        defer { fleet.cleanUp() }
        fleet.api.setFaults(SandboxFaults(latencyMs: 4000))
        try fleet.applyDDL()
        try fleet.plan(Self.range)
        let w = try fleet.worker("w.log", concurrency: 3, idle: 30)
        let deadline = Date().addingTimeInterval(30)
        while fleet.api.currentStats.requests < 3, Date() < deadline { usleep(50_000) }
        kill(w, SIGTERM)
        usleep(300_000)
        kill(w, SIGTERM)
        // Exit code 143 and no graceful summary: the second signal ended it, not the end of its jobs.
        #expect(fleet.wait(w, timeout: 10) == 143, "the operator insisted")
        #expect(fleet.log("w.log").contains("second signal, exiting now"))
        #expect(!fleet.log("w.log").contains("extract worker stopped"))
        fleet.api.setFaults(SandboxFaults())
        let w2 = try fleet.worker("w2.log"), l = try fleet.loader()
        #expect(fleet.wait(w2) == 0 && fleet.wait(l) == 0)
        try fleet.expectExact(days: Self.days)
    }

    @Test func aBrokerRestartMidRunDoesNotStopTheRun() throws {
        let fleet = try FleetHarness(accounts: Self.threeChannels())
        defer { fleet.cleanUp() }
        fleet.api.setFaults(SandboxFaults(latencyMs: 150))
        try fleet.applyDDL()
        try fleet.plan(Self.range)
        let w = try fleet.worker("w.log", concurrency: 2, idle: 15), l = try fleet.loader(idle: 20)
        let deadline = Date().addingTimeInterval(30)
        while fleet.api.currentStats.requests < 4, Date() < deadline { usleep(50_000) }
        try TestServices.stack("restart-rabbitmq")
        fleet.api.setFaults(SandboxFaults(latencyMs: 10))
        #expect(fleet.wait(w, timeout: 150) == 0 && fleet.wait(l, timeout: 150) == 0)
        try fleet.expectExact(days: Self.days)
    }
}
