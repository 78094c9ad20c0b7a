import Foundation
import HuskimoTesting
import SandboxKit
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

/// Singular through the fleet into PostgreSQL: the lookback window, append-only snapshots, the latest retrieval
/// per day, a broken day parked, and the API key kept out of every log.
@Suite(.serialized, .timeLimit(.minutes(8)))
struct SingularFleetTests {
    static let resources = ["--resource", "campaigns", "--resource", "creatives"]

    @Test(arguments: ["postgres", "redshift"]) func aLookbackWindowLoadsEveryDayAndASecondRunAppendsANewerSnapshot(target: String) throws {
        let keys = SandboxSingular.keys
        let fleet = try FleetHarness(accounts: [], singular: [("spend-a", keys[0]), ("spend-b", keys[1])], lookback: 30, target: target)
        defer { fleet.cleanUp() }
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
        let topology = FleetTopology(try fleet.config.queue, targets: ["local"])
        let client = QueueClient(url: try TestServices.amqpURL(), retryWindow: 5, logger: TestServices.logger)
        defer { client.close() }
        var parked: [AMQPDelivery] = []
        try client.drainBlocking(topology.failedQueue) {
            parked.append($0)
            return .keep
        }
        // Distinct jobs: other suites restart the broker while this one runs, and a park whose ack the killed broker
        // never persisted is parked again on redelivery (AMQP is at-least-once; requeue is idempotent).
        #expect(Set(parked.compactMap { $0.headers["x-id"]?.stringValue }).count == 4 && parked.count >= 4)
        #expect(
            parked.allSatisfy { $0.headers["x-error-class"] == .string("permanent") && $0.headers["x-day"] == .string(broken.description) })
        #expect(Set(parked.compactMap { $0.headers["x-channel"]?.stringValue }) == ["spend-a", "spend-b"])
        #expect(parked.allSatisfy { ($0.headers["x-error-message"]?.stringValue ?? "").contains("yesterday") })
        let good = window.filter { $0 != broken }
        try expectLatest(fleet, days: good, revision: 0)
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
        try expectLatest(fleet, days: window, revision: 1)
        #expect(try latestRetrieval(fleet) > first, "the second retrieval is stamped later")
        for day in good {
            let expected = keys.contains { !SandboxSingular.records(key: $0, resource: "stats", day: day.ordinal, revision: 0).isEmpty }
            if expected { #expect(try snapshots(fleet, day: day) == 2, "two retrievals of \(day)") }
        }
        #expect(try snapshots(fleet, day: broken) == 1)

        // The key is part of every request path, yet appears in no log of either run.
        let logs = try FileManager.default.contentsOfDirectory(atPath: fleet.dir.path).filter { $0.hasSuffix(".log") }
        #expect(logs.count >= 4)
        for name in logs {
            let text = fleet.log(name)
            for key in keys { #expect(!text.contains(key.key), "\(name) must not contain the API key") }
        }
    }

    /// The latest retrieval of every (channel, day) equals the sandbox's records of `revision`, row for row
    /// (compared by PostgreSQL with the same column types, duplicates counted).
    func expectLatest(_ fleet: FleetHarness, days: [Day], revision: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let pg = try PostgresConnection(try TestServices.postgres())
        for (table, resource) in [(SingularTable.campaigns, "stats"), (SingularTable.creatives, "creative_stats")] {
            let expectedTable = "expected_\(table.name)"
            try pg.execute("DROP TABLE IF EXISTS \(expectedTable); CREATE TEMP TABLE \(expectedTable) (LIKE \(fleet.id).\(table.name))")
            var writer = TSVWriter()
            var count = 0
            for (channel, key) in fleet.singular {
                for day in days {
                    for record in SandboxSingular.records(key: key, resource: resource, day: day.ordinal, revision: revision) {
                        writer.text(channel)
                        writer.plain("2000-01-01 00:00:00")
                        for value in record.expected { writer.text(value) }
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
            #expect(count > 50, "the comparison covers real data (\(count) rows)", sourceLocation: sourceLocation)
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
