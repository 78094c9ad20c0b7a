import Foundation
import HuskimoTesting
import SandboxKit
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

/// Singular through the fleet into PostgreSQL, on the Reporting API v2.0 and on the legacy endpoints: the lookback
/// window, append-only snapshots, the latest retrieval per day, a broken day parked, the API key kept out of every
/// log and URL; v2's readiness, failed and stuck reports, and its fleet-wide report limit.
@Suite(.serialized, .ownThreads, .timeLimit(.minutes(8)))
struct SingularFleetTests {
    static let resources = ["--resource", "campaigns", "--resource", "creatives"]

    @Test(arguments: [("postgres", "legacy"), ("postgres", "v2"), ("redshift", "v2")])
    func aLookbackWindowLoadsEveryDayAndASecondRunAppendsANewerSnapshot(target: String, api: String) throws {
        let keys = SandboxSingular.keys
        let fleet = try FleetHarness(accounts: [], singular: [("spend-a", keys[0]), ("spend-b", keys[1])], lookback: 30, target: target)
        defer { fleet.cleanUp() }
        if api == "legacy" {
            fleet.singularOptions = ["spend-a": "api: legacy", "spend-b": "api: legacy"]
            try fleet.writeConfig()
        }
        let today = Day.today
        // The run day is yesterday; the window is the 30 days ending there.
        let window = (1...30).map { today.adding(days: -$0) }
        let broken = today.adding(days: -10)
        fleet.api.setFaults(SandboxFaults(rate: 0.05, singularBrokenDays: [broken.description]))
        try fleet.applyDDL()
        try fleet.plan(Self.resources)
        let w1 = try fleet.worker("w1.log", concurrency: 4)
        #expect(fleet.wait(w1, timeout: 240) == 0)
        let l1 = try fleet.loader("l1.log")
        #expect(fleet.wait(l1, timeout: 240) == 0)
        #expect(fleet.api.currentStats.faults > 0, "faults were injected")

        // The broken day is parked for both channels and resources, permanent, named; the other days loaded.
        let parked = try fleet.parkedJobs()
        // Distinct jobs: other suites restart the broker while this one runs, and a park whose ack the killed broker
        // never persisted is parked again on redelivery (AMQP is at-least-once; requeue is idempotent).
        #expect(Set(parked.compactMap { $0.headers["x-id"]?.stringValue }).count == 4 && parked.count >= 4)
        #expect(
            parked.allSatisfy { $0.headers["x-error-class"] == .string("permanent") && $0.headers["x-day"] == .string(broken.description) })
        #expect(Set(parked.compactMap { $0.headers["x-channel"]?.stringValue }) == ["spend-a", "spend-b"])
        // The broken record: 0.3's modification time "yesterday"; in v2's report, impressions "many".
        #expect(parked.allSatisfy { ($0.headers["x-error-message"]?.stringValue ?? "").contains(api == "legacy" ? "yesterday" : "many") })
        let good = window.filter { $0 != broken }
        try expectLatest(fleet, days: good, revision: 0, api: api)
        #expect(try snapshots(fleet, day: broken) == 0)
        let first = try latestRetrieval(fleet)

        // Singular restates spend; the next night's run (broken record fixed) appends a newer snapshot per day.
        fleet.api.setFaults(SandboxFaults(rate: 0.05, singularRevision: 1))
        try fleet.plan(Self.resources)
        // The loader once its worker is done: with faults and two cores shared with three broker nodes, the worker
        // can go quiet for longer than the loader's idle exit (CI saw the loader leave with 87 loads still to come).
        let w2 = try fleet.worker("w2.log", concurrency: 4)
        #expect(fleet.wait(w2, timeout: 240) == 0)
        let l2 = try fleet.loader("l2.log")
        #expect(fleet.wait(l2, timeout: 240) == 0)
        try expectLatest(fleet, days: window, revision: 1, api: api)
        #expect(try latestRetrieval(fleet) > first, "the second retrieval is stamped later")
        for day in good {
            let expected = keys.contains { !SandboxSingular.records(key: $0, resource: "stats", day: day.ordinal, revision: 0).isEmpty }
            // Exactly two, one per run: a job redelivered within its run (another suite restarts the broker, and delivery
            // is at-least-once) is read again, but the loader appends one retrieval per run and partition.
            if expected { #expect(try snapshots(fleet, day: day) == 2, "two retrievals of \(day)") }
        }
        #expect(try snapshots(fleet, day: broken) >= 1)

        // The key is part of every request path, yet appears in no log of either run.
        let logs = try FileManager.default.contentsOfDirectory(atPath: fleet.dir.path).filter { $0.hasSuffix(".log") }
        #expect(logs.count >= 4)
        for name in logs {
            let text = fleet.log(name)
            for key in keys { #expect(!text.contains(key.key), "\(name) must not contain the API key") }
        }
        let stats = fleet.api.currentStats
        if api == "v2" {
            // The key went only in the Authorization header, and never to the presigned download.
            #expect(stats.singularKeyInURL == 0 && stats.singularDownloadsWithCredentials == 0)
            #expect(stats.singularReportsCreated >= 4 * 30 && stats.singularAvailability >= 4 * 30)
        } else {
            #expect(stats.singularReportsCreated == 0)
        }
    }

    /// v2.0's own ways to fail, each ending right: a day whose sources are not complete is read again through the delay
    /// queues and then loaded; a report that fails twice is created again within the job; one that always fails is
    /// parked, permanent, with its id and Singular's message; a report stuck in the queue ends the attempt (transient)
    /// after report_wait_s, and the next attempt loads the day.
    @Test func notReadyFailedAndStuckReportsEndRight() throws {
        let key = SandboxSingular.keys[0]
        let fleet = try FleetHarness(accounts: [], singular: [("spend", key)], lookback: 4)
        defer { fleet.cleanUp() }
        fleet.singularOptions = ["spend": "report_poll_s: 0.02, report_wait_s: 1, report_attempts: 3"]
        try fleet.writeConfig()
        let days = (1...4).map { Day.today.adding(days: -$0) }
        let (notReady, failsTwice, alwaysFails, stuck) = (days[0], days[1], days[2], days[3])
        fleet.api.setFaults(
            SandboxFaults(
                singularNotReadyDays: [notReady.description: 2],
                singularFailingDays: [failsTwice.description: 2, alwaysFails.description: 99],
                singularStuckDays: [stuck.description: 1]))
        try fleet.applyDDL()
        try fleet.plan(Self.resources)
        let worker = try fleet.worker("w.log", concurrency: 2)
        #expect(fleet.wait(worker, timeout: 240) == 0)
        let loader = try fleet.loader("l.log")
        #expect(fleet.wait(loader, timeout: 240) == 0)

        let parked = try fleet.parkedJobs()
        #expect(Set(parked.compactMap { $0.headers["x-id"]?.stringValue }).count == 2, "both resources of the failing day, nothing else")
        for message in parked {
            let text = message.headers["x-error-message"]?.stringValue ?? ""
            #expect(
                message.headers["x-error-class"] == .string("permanent") && message.headers["x-day"] == .string(alwaysFails.description))
            #expect(
                text.contains("report rep") && text.contains("ended FAILED, 3 reports in a row") && text.contains("Query timed out"),
                "\(text)")
            #expect(!text.contains(key.key))
        }
        try expectLatest(fleet, days: [notReady, failsTwice, stuck], revision: 0, api: "v2", minimumRows: 10)
        #expect(try snapshots(fleet, day: alwaysFails) == 0)
        let log = fleet.log("w.log")
        #expect(log.contains("not complete yet") && log.contains("waiting for Facebook (PROCESSING)"))
        #expect(log.contains("still QUEUED after"))
        #expect(!log.contains(key.key))
    }

    /// Singular's limit on concurrent reports is the fleet's, not each worker's: two workers of four jobs each, a limit of
    /// two (the sandbox refuses a third running report), and not one report refused. Its limit on rows per report too:
    /// a day too large for one report is read source by source. The same key read through the legacy endpoints by
    /// another channel gives the same rows wherever v2 fills them: none lost, none twice.
    @Test func reportSlotsHoldAcrossWorkersAndBothAPIsGiveTheSameRows() throws {
        let key = SandboxSingular.keys[0]
        let fleet = try FleetHarness(accounts: [], singular: [("spend-v2", key), ("spend-legacy", key)], lookback: 8)
        defer { fleet.cleanUp() }
        fleet.singularOptions = ["spend-v2": "report_poll_s: 0.02, concurrent_reports: 2", "spend-legacy": "api: legacy"]
        try fleet.writeConfig()
        // A row limit no single source of these days exceeds, but some whole days do.
        var perSource = 0
        var largestDay = 0
        for day in (1...8).map({ Day.today.adding(days: -$0) }) {
            for resource in ["stats", "creative_stats"] {
                let records = SandboxSingular.records(key: key, resource: resource, day: day.ordinal, revision: 0)
                largestDay = max(largestDay, records.count)
                let networks = records.map { String(decoding: $0.json, as: UTF8.self) }.map { json in
                    SandboxSingular.sources.first { json.contains("\"ad_network\": \"\($0)\"") } ?? "?"
                }
                for network in Set(networks) { perSource = max(perSource, networks.filter { $0 == network }.count) }
            }
        }
        try #require(largestDay > perSource, "some day needs splitting")
        fleet.api.setFaults(SandboxFaults(latencyMs: 5, singularReportLimit: 2, singularRowsPerReport: perSource))
        try fleet.applyDDL()
        try fleet.plan(Self.resources)
        let w1 = try fleet.worker("w1.log", concurrency: 4)
        let w2 = try fleet.worker("w2.log", concurrency: 4)
        #expect(fleet.wait(w1, timeout: 240) == 0)
        #expect(fleet.wait(w2, timeout: 240) == 0)
        let loader = try fleet.loader("l.log")
        #expect(fleet.wait(loader, timeout: 240) == 0)
        let stats = fleet.api.currentStats
        #expect(stats.singularReportsCreated >= 16)
        #expect(stats.singularReportsRefused == 0, "no report beyond the limit was asked for")
        #expect((1...2).contains(stats.singularMaxRunningReports))
        #expect(stats.singularReportsTooLarge > 0, "days too large for one report were split")

        let pg = try PostgresConnection(try TestServices.postgres())
        for table in [SingularTable.campaigns, SingularTable.creatives] {
            let filled = table.columns.filter { $0.source.jsonKey.map(table.report.keys.contains) ?? false }.map {
                WarehouseSchema.quote($0.name)
            }
            let columns = filled.joined(separator: ", ")
            let count = { (channel: String) in
                try pg.query("SELECT count(*) FROM \(fleet.id).\(table.name) WHERE channel_name = $1", [channel])[0][0] ?? ""
            }
            let rows = try count("spend-v2")
            #expect(rows == (try count("spend-legacy")) && (Int(rows) ?? 0) > 20, "\(table.name): \(rows) rows")
            for (a, b) in [("spend-v2", "spend-legacy"), ("spend-legacy", "spend-v2")] {
                let differing = try pg.query(
                    "SELECT count(*) FROM (SELECT \(columns) FROM \(fleet.id).\(table.name) WHERE channel_name = $1 EXCEPT ALL SELECT \(columns) FROM \(fleet.id).\(table.name) WHERE channel_name = $2) x",
                    [a, b])
                #expect(differing[0][0] == "0", "\(table.name): rows of \(a) not in \(b)")
            }
        }
    }

    /// The latest retrieval of every (channel, day) equals the sandbox's records of `revision`, row for row
    /// (compared by PostgreSQL with the same column types, duplicates counted).
    /// With `api: v2`, the columns v2 cannot fill are expected NULL.
    func expectLatest(
        _ fleet: FleetHarness, days: [Day], revision: Int, api: String = "legacy", minimumRows: Int = 50,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let pg = try PostgresConnection(try TestServices.postgres())
        for (table, resource) in [(SingularTable.campaigns, "stats"), (SingularTable.creatives, "creative_stats")] {
            let filled = table.columns.dropFirst(2).map { column in
                api == "legacy" || column.source.jsonKey.map(table.report.keys.contains) ?? true
            }
            let expectedTable = "expected_\(table.name)"
            try pg.execute("DROP TABLE IF EXISTS \(expectedTable); CREATE TEMP TABLE \(expectedTable) (LIKE \(fleet.id).\(table.name))")
            var writer = TSVWriter()
            var count = 0
            for (channel, key) in fleet.singular {
                for day in days {
                    for record in SandboxSingular.records(key: key, resource: resource, day: day.ordinal, revision: revision) {
                        writer.text(channel)
                        writer.plain("2000-01-01 00:00:00")
                        for (value, filled) in zip(record.expected, filled) { writer.text(filled ? value : nil) }
                        writer.endRow()
                        count += 1
                    }
                }
            }
            let loaded = try pg.copyIn("COPY \(expectedTable) FROM STDIN") { write in try writer.buffer.withUnsafeBytes { try write($0) } }
            #expect(loaded == count, sourceLocation: sourceLocation)
            let columns = table.columnNames.filter { $0 != "when_retrieved" }.map { WarehouseSchema.quote($0) }.joined(separator: ", ")
            // The DDL's `<table>_latest` view: the newest retrieval of each (channel, reporting day).
            let latest = "SELECT \(columns) FROM \(fleet.id).\(table.name)_latest WHERE reporting_date::date = ANY($1::date[])"
            let dayList = "{" + days.map(\.description).joined(separator: ",") + "}"
            let missing = try pg.query("SELECT count(*) FROM (SELECT \(columns) FROM \(expectedTable) EXCEPT ALL (\(latest))) x", [dayList])
            let extra = try pg.query("SELECT count(*) FROM ((\(latest)) EXCEPT ALL SELECT \(columns) FROM \(expectedTable)) x", [dayList])
            #expect(
                missing[0][0] == "0" && extra[0][0] == "0",
                "\(table.name) revision \(revision): \(missing[0][0] ?? "?") expected rows missing, \(extra[0][0] ?? "?") unexpected",
                sourceLocation: sourceLocation)
            #expect(count > minimumRows, "the comparison covers real data (\(count) rows)", sourceLocation: sourceLocation)
        }
    }

    /// Distinct retrievals of one day in `singular_campaigns` of the first channel that has rows that day.
    func snapshots(_ fleet: FleetHarness, day: Day) throws -> Int {
        let pg = try PostgresConnection(try TestServices.postgres())
        let rows = try pg.query(
            """
            SELECT coalesce(max(n), 0) FROM (SELECT count(DISTINCT when_retrieved) n FROM \(fleet.id).singular_campaigns
            WHERE reporting_date = $1::timestamp GROUP BY channel_name) x
            """, [day.description])
        return Int(rows[0][0] ?? "0") ?? -1
    }

    func latestRetrieval(_ fleet: FleetHarness) throws -> String {
        let pg = try PostgresConnection(try TestServices.postgres())
        return try pg.query("SELECT to_char(max(when_retrieved), 'YYYY-MM-DD HH24:MI:SS.MS') FROM \(fleet.id).singular_campaigns")[0][0]
            ?? ""
    }
}
