import Foundation
import HuskimoTesting
import SandboxKit
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

/// The loader against the real PostgreSQL, fed with real extractions from the sandbox staged on S3.
@Suite(.serialized, .ownThreads, .timeLimit(.minutes(5)))
final class LoaderIntegrationTests {
    let staged: StagedLoads
    let schema = "ldr_\(UInt32.random(in: 0...UInt32.max))"
    var s3: S3Client { staged.s3 }
    var s3Config: S3Config { staged.s3Config }
    var api: SandboxAPI { staged.api }

    init() throws {
        staged = try StagedLoads(bucketPrefix: "huskimo-load")
    }

    deinit {
        if let pg = try? PostgresConnection(try TestServices.postgres()) {
            try? pg.execute("DROP SCHEMA \(schema) CASCADE")
            try? pg.execute("DROP SCHEMA IF EXISTS \(schema)_b CASCADE")
        }
    }

    func target(name: String = "local", port: Int? = nil, schema: String? = nil) throws -> TargetConfig {
        let pg = try TestServices.postgres()
        let yaml = """
            channels: [{name: c, type: singular, api_key: k}]
            s3: {access_key_id: k, secret_access_key: s, region: us-east-1, bucket: b}
            targets:
              - {name: \(name), type: postgres, host: \(pg.host), port: \(port ?? pg.port), database: \(pg.database), username: \(pg.user), password: "\(pg.password.reveal())", schema: \(schema ?? self.schema), sslmode: disable}
            """
        return try FleetConfig.parse(yaml, environment: [:]).targets[0]
    }

    func loader(_ target: TargetConfig) throws -> WarehouseLoader { try staged.loader(target) }

    func extract(
        _ account: SandboxAccount, _ resource: Resource, _ day: Day?, channel: String = "acme", at: Date = Date()
    ) throws -> LoadMessage {
        try staged.extract(account, resource, day, channel: channel, at: at)
    }

    func count(_ table: String, _ filter: String = "TRUE") throws -> Int {
        let pg = try PostgresConnection(try TestServices.postgres())
        return Int(try pg.query("SELECT count(*) FROM \(schema).\(table) WHERE \(filter)")[0][0]!)!
    }

    static let day = TestDays.day(21)
    let account = SandboxAccount.defaults[0]

    @Test func aDayLoadedTwiceHasEachRowOnceAndARedeliveredBatchChangesNothing() throws {
        let loader = try loader(try target())
        let expected = SandboxAPI.expected(account, "calls", day: Self.day).count
        let first = try extract(account, .calls, Self.day, at: Date(timeIntervalSinceNow: -60))
        #expect(try loader.load([first]).loaded == [first.loadID])
        #expect(try count("twilio_calls") == expected)
        let outcome = try loader.load([first])  // redelivered
        #expect(outcome.loaded.isEmpty && outcome.skipped.first?.reason == "already loaded")
        #expect(try count("twilio_calls") == expected)
        func stamp(_ m: LoadMessage) -> String { m.extractedAt.prefix(19).replacingOccurrences(of: "T", with: " ") }
        // Planned again, extracted again, nothing changed: skipped as identical, the rows stay as they were.
        let second = try extract(account, .calls, Self.day, at: Date(timeIntervalSinceNow: -30))
        let skipped = try loader.load([second])
        #expect(skipped.loaded.isEmpty && skipped.reports.map(\.identical) == [true] && skipped.reports.first?.rowsAfter == expected)
        #expect(try count("twilio_calls", "when_retrieved = '\(stamp(first))'") == expected)
        #expect(try count("load_ledger", "table_name = 'twilio_calls'") == 2, "the ledger holds the newer extraction")
        #expect(try loader.load([second]).skipped.first?.reason == "already loaded", "redelivered: not reported twice")
        #expect(try count("load_reports", "table_name = 'twilio_calls' AND outcome = 'identical'") == 1)
        // Without a digest (a worker of an earlier version) the same content is replaced, not duplicated.
        var third = try extract(account, .calls, Self.day)
        third.contentDigest = nil
        let replaced = try loader.load([third])
        #expect(replaced.loaded == [third.loadID])
        #expect(
            replaced.reports.first.map { ($0.rowsBefore, $0.rowsAfter, $0.changed, $0.added, $0.removed) } ?? (0, 0, nil, nil, nil)
                == (expected, expected, 0, 0, 0))
        #expect(try count("twilio_calls") == expected)
        #expect(try count("twilio_calls", "when_retrieved = '\(stamp(third))'") == expected)
        #expect(try count("load_ledger", "table_name = 'twilio_calls'") == 3)
    }

    @Test func anOlderExtractionArrivingLateDoesNotOverwriteANewerOne() throws {
        let loader = try loader(try target())
        let older = try extract(account, .messages, Self.day, at: Date(timeIntervalSinceNow: -3600))
        let newer = try extract(account, .messages, Self.day, at: Date())
        #expect(try loader.load([newer]).loaded == [newer.loadID])
        let late = try loader.load([older])
        #expect(late.loaded.isEmpty)
        #expect(late.skipped.first?.reason == "older than the extraction already loaded")
        let newerStamp = newer.extractedAt.prefix(19).replacingOccurrences(of: "T", with: " ")
        let expected = SandboxAPI.expected(account, "messages", day: Self.day).count
        #expect(try count("twilio_messages", "when_retrieved = '\(newerStamp)'") == expected)
        #expect(try count("twilio_messages") == expected)
        // Both in one batch, in the wrong order: only the newer applies.
        var newest = try extract(account, .messages, Self.day, at: Date())
        newest.contentDigest = nil  // replaced even though it is what is loaded
        let both = try loader.load([newest, older])
        #expect(both.loaded == [newest.loadID])
        #expect(both.skipped.map(\.loadID) == [older.loadID])
    }

    /// Singular's tables keep every retrieval, one per run: a job redelivered within its run (read again, staged again)
    /// appends nothing more, whether its second load comes in a later batch or in the same one; the next run appends.
    @Test func anAppendedTableTakesOneRetrievalPerRun() throws {
        let loader = try loader(try target())
        let key = SandboxSingular.keys[0]
        let channel = try FleetConfig.parse(
            """
            channels: [{name: spend, type: singular, api_key: \(key.key), api_url: "http://127.0.0.1:\(staged.port)", api: legacy}]
            s3: {access_key_id: k, secret_access_key: s, region: us-east-1, bucket: b}
            targets: [{name: t, host: h, database: d, username: u}]
            """, environment: [:]
        ).channels[0]
        let context = ExtractContext(
            api: APIClient(http: HTTPClient(), limiters: staged.limiters, logger: TestServices.logger), s3: staged.s3, folder: "stage")
        let day = (2...40).map { Day.today.adding(days: -$0) }.first {
            !SandboxSingular.records(key: key, resource: "stats", day: $0.ordinal, revision: 0).isEmpty
        }!
        func extract(run: String) throws -> LoadMessage {
            try ConnectorRegistry.connector(of: channel).extract(
                ExtractJob(runID: run, channel: "spend", resource: .campaigns, day: day, plannedAt: ""), channel: channel,
                context: context, fetched: nil
            ).load
        }
        let perRetrieval = SandboxSingular.records(key: key, resource: "stats", day: day.ordinal, revision: 0).count
        let first = try extract(run: "20261201T000000000Z")
        #expect(try loader.load([first]).loaded == [first.loadID])
        let redelivered = try extract(run: "20261201T000000000Z")
        let again = try loader.load([redelivered])
        #expect(again.loaded.isEmpty && again.skipped.first?.reason.contains("already appended for run") == true, "\(again.skipped)")
        let (a, b) = (try extract(run: "20261202T000000000Z"), try extract(run: "20261202T000000000Z"))
        let both = try loader.load([a, b])
        #expect(both.loaded.count == 1 && both.skipped.count == 1, "\(both.skipped)")
        #expect(try count("singular_campaigns") == 2 * perRetrieval, "one retrieval per run")
    }

    @Test func aFailureBetweenDeleteAndCopyLeavesTheOldRows() throws {
        let loader = try loader(try target())
        let first = try extract(account, .recordings, Self.day, at: Date(timeIntervalSinceNow: -60))
        _ = try loader.load([first])
        let before = try count("twilio_recordings")
        #expect(before == SandboxAPI.expected(account, "recordings", day: Self.day).count)
        struct Boom: Error {}
        loader.afterDelete = { _ in throw Boom() }
        var again = try extract(account, .recordings, Self.day)
        again.contentDigest = nil  // so that it replaces (an identical re-read would not delete anything)
        #expect(throws: Boom.self) { try loader.load([again]) }
        loader.afterDelete = nil
        #expect(try count("twilio_recordings") == before)  // rolled back: the old rows are all there
        #expect(try count("load_ledger", "table_name = 'twilio_recordings'") == first.objects.count)
    }

    @Test func aWorkerClockRunningAheadCannotShadowTheNextRun() throws {
        let loader = try loader(try target())
        func extraction(run: String, at: Date) throws -> LoadMessage {
            var m = try extract(account, .calls, Self.day, at: at)
            (m.runID, m.contentDigest) = (run, nil)
            return m
        }
        // Night one's worker has a clock a day ahead; night two's is right.
        let skewed = try extraction(run: "20261121T043000000Z", at: Date(timeIntervalSinceNow: 86_400))
        #expect(try loader.load([skewed]).loaded == [skewed.loadID])
        let next = try extraction(run: "20261122T043000000Z", at: Date())
        #expect(try loader.load([next]).loaded == [next.loadID], "the planner's newer run wins, whatever the worker clocks say")
        // An older run never overwrites a newer one, even extracted later by its clock.
        let late = try extraction(run: "20261121T043000000Z", at: Date(timeIntervalSinceNow: 2 * 86_400))
        #expect(try loader.load([late]).skipped.first?.reason == "older than the extraction already loaded")
        let stamp = next.extractedAt.prefix(19).replacingOccurrences(of: "T", with: " ")
        #expect(try count("twilio_calls", "when_retrieved = '\(stamp)'") == SandboxAPI.expected(account, "calls", day: Self.day).count)
    }

    @Test func theIdenticalSkipReadsThePartitionAsTheOlderSkipDoes() throws {
        let loader = try loader(try target())
        func extraction(run: String, at: Date, digest: String?) throws -> LoadMessage {
            var m = try extract(account, .calls, Self.day, at: at)
            (m.runID, m.contentDigest) = (run, digest)
            return m
        }
        // Night one's worker ran a day ahead and loaded content A; night two replaced it with content B.
        let skewed = try extraction(run: "20261121T043000000Z", at: Date(timeIntervalSinceNow: 86_400), digest: "digest-a")
        #expect(try loader.load([skewed]).loaded == [skewed.loadID])
        let second = try extraction(run: "20261122T043000000Z", at: Date(), digest: "digest-b")
        #expect(try loader.load([second]).loaded == [second.loadID])
        // Night three reads content A again: the partition holds B, so it is a replace, not an identical skip (the
        // report with the latest extraction time is night one's, which no longer describes the partition).
        let third = try extraction(run: "20261123T043000000Z", at: Date(timeIntervalSinceNow: 60), digest: "digest-a")
        let outcome = try loader.load([third])
        #expect(outcome.loaded == [third.loadID])
        #expect(outcome.reports.map(\.identical) == [false])
        // And night four reading A once more is identical to what night three left.
        let fourth = try extraction(run: "20261124T043000000Z", at: Date(timeIntervalSinceNow: 120), digest: "digest-a")
        #expect(try loader.load([fourth]).reports.map(\.identical) == [true])
    }

    @Test func twoLoadersOfOneTargetNeverInterleaveAPartition() throws {
        // A standby loader takes the queue over while the first one is still inside its transaction: the second
        // waits for the partition's lock, then sees what the first committed.
        let first = try loader(try target()), second = try loader(try target())
        var newer = try extract(account, .messages, Self.day, at: Date())
        var older = try extract(account, .messages, Self.day, at: Date(timeIntervalSinceNow: -60))
        (newer.contentDigest, older.contentDigest) = (nil, nil)
        let firstLoad = newer
        let inside = DispatchSemaphore(value: 0), done = DispatchSemaphore(value: 0)
        first.afterDelete = { _ in
            inside.signal()
            Thread.sleep(forTimeInterval: 1.5)  // holds the partition while the other loader tries it
        }
        nonisolated(unsafe) var firstOutcome: BatchOutcome?
        Thread.detachNewThread {
            firstOutcome = try? first.load([firstLoad])
            done.signal()
        }
        inside.wait()
        let late = try second.load([older])
        done.wait()
        #expect(firstOutcome?.loaded == [newer.loadID])
        #expect(late.loaded.isEmpty && late.skipped.first?.reason == "older than the extraction already loaded", "\(late)")
        let expected = SandboxAPI.expected(account, "messages", day: Self.day).count
        #expect(try count("twilio_messages") == expected, "one extraction's rows, not both")
        #expect(
            PostgresDialect.lockKey(schema: "s", table: "t", channel: "c", partition: "2026-11-21")
                != PostgresDialect.lockKey(schema: "s", table: "t", channel: "c", partition: "2026-11-22"))
    }

    @Test func aSnapshotReloadReplacesOnlyItsOwnChannel() throws {
        let loader = try loader(try target())
        let a = try extract(SandboxAccount.defaults[1], .incomingPhoneNumbers, nil, channel: "eu")
        let b = try extract(SandboxAccount.defaults[2], .incomingPhoneNumbers, nil, channel: "asia")
        _ = try loader.load([a, b])
        let eu = SandboxAccount.defaults[1].phoneNumbers, asia = SandboxAccount.defaults[2].phoneNumbers
        #expect(try count("twilio_incoming_phone_numbers") == eu + asia)
        _ = try loader.load([try extract(SandboxAccount.defaults[1], .incomingPhoneNumbers, nil, channel: "eu")])
        #expect(try count("twilio_incoming_phone_numbers", "channel_name = 'eu'") == eu)
        #expect(try count("twilio_incoming_phone_numbers", "channel_name = 'asia'") == asia)
    }

    @Test func everyHardTextAndNullVersusEmptyReadsBackExactly() throws {
        let loader = try loader(try target())
        let load = try extract(account, .calls, Self.day)
        _ = try loader.load([load])
        let pg = try PostgresConnection(try TestServices.postgres())
        let rows = try pg.query("SELECT sid, caller_name, forwarded_from, end_time FROM \(schema).twilio_calls WHERE channel_name = 'acme'")
        let records = SandboxData.records(account, "calls", day: Self.day.ordinal)
        #expect(rows.count == records.count)
        let byID = Dictionary(uniqueKeysWithValues: rows.map { ($0[0]!, $0) })
        var nulls = 0, empties = 0
        for record in records {
            let json = try JSONSerialization.jsonObject(with: Data(record.json)) as! [String: Any]
            let row = try #require(byID[record.sid])
            #expect(row[1] == json["caller_name"] as? String)
            #expect(row[2] == json["forwarded_from"] as? String)
            if row[1] == nil { nulls += 1 }
            if row[1] == "" { empties += 1 }
        }
        #expect(nulls > 0 && empties > 0, "the day has both NULL and empty caller names")
    }

    @Test func twoTargetsOneDownMidRunBothEndWithTheSameRows() throws {
        let loads = [try extract(account, .calls, Self.day), try extract(account, .messages, Self.day)]
        let up = try loader(try target(name: "a"))
        _ = try up.load(loads)
        // Target b (its own schema: its own tables and ledger) is down: nothing listens on its port.
        let down = WarehouseLoader(
            target: try target(name: "b", port: 1, schema: schema + "_b"), s3: s3, s3Config: s3Config,
            logger: TestServices.logger)
        let error = #expect(throws: PQError.self) { try down.load(loads) }
        #expect(error?.errorClass == .transient)
        // It comes back and catches up: both targets hold exactly the same rows.
        let back = try loader(try target(name: "b", schema: schema + "_b"))
        #expect(try back.load(loads).loaded.count == 2)
        let pg = try PostgresConnection(try TestServices.postgres())
        for table in ["twilio_calls", "twilio_messages"] {
            #expect(try count(table) == SandboxAPI.expected(account, table.dropFirst(7).description, day: Self.day).count)
            let diff = try pg.query(
                """
                SELECT count(*) FROM ((SELECT * FROM \(schema).\(table) EXCEPT ALL SELECT * FROM \(schema)_b.\(table))
                UNION ALL (SELECT * FROM \(schema)_b.\(table) EXCEPT ALL SELECT * FROM \(schema).\(table))) d
                """)
            #expect(diff == [["0"]], "\(table) differs between the targets")
        }
    }

    @Test func ddlAppliesTwiceAndMatchesTheCommittedFiles() throws {
        let loader = try loader(try target())
        try loader.applyDDL()
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for flavor in WarehouseSchema.Flavor.allCases {
            let file = root.appendingPathComponent("sql/\(flavor.rawValue)/0001_huskimo.sql")
            let committed = try String(contentsOf: file, encoding: .utf8)
            #expect(committed == flavor.dialect.ddl(schema: "huskimo"), "regenerate with: huskimo-planner ddl --flavor \(flavor.rawValue)")
        }
        let pg = try PostgresConnection(try TestServices.postgres())
        let columns = try pg.query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'twilio_messages' ORDER BY ordinal_position",
            [schema]
        ).map { $0[0]! }
        #expect(columns == TwilioTable.messages.columnNames)
    }
}
