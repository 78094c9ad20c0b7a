import Foundation
import HuskimoTesting
import SandboxKit
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

/// The Redshift path for real: the production loader, ledger and status code against the Redshift-dialect test
/// server (Tests/Support/redshift/redshift_dialect.py: Redshift's COPY from S3 with its field rules and VARCHAR counted in
/// bytes, and its unsupported statements refused), compared field by field with the same loads into PostgreSQL.
@Suite(.serialized, .ownThreads, .timeLimit(.minutes(5)))
final class RedshiftIntegrationTests {
    let staged: StagedLoads
    let id = "rs_\(UInt32.random(in: 0...UInt32.max))"
    let account = SandboxAccount.defaults[0]
    static let day = TestDays.day(21)

    init() throws {
        staged = try StagedLoads(bucketPrefix: "huskimo-rs")
    }

    deinit {
        if let pg = try? PostgresConnection(try TestServices.postgres()) {
            for schema in [id, "\(id)_pg"] { try? pg.execute("DROP SCHEMA IF EXISTS \(schema) CASCADE") }
        }
    }

    func target(_ type: WarehouseSchema.Flavor, schema: String, role: Bool = false) throws -> TargetConfig {
        let pg = try TestServices.postgres()
        let port = type == .redshift ? Int(try TestServices.require("REDSHIFT_PORT"))! : pg.port
        let yaml = """
            channels: [{name: c, type: singular, api_key: k}]
            s3: {access_key_id: k, secret_access_key: s, region: us-east-1, bucket: b}
            targets:
              - {name: \(type.rawValue), type: \(type.rawValue), host: 127.0.0.1, port: \(port), database: \(pg.database), username: \(pg.user), password: "\(pg.password.reveal())", schema: \(schema), sslmode: disable\(role ? ", iam_role: \"arn:aws:iam::123456789012:role/huskimo-loader\"" : "")}
            """
        return try FleetConfig.parse(yaml, environment: [:]).targets[0]
    }

    func loader(_ target: TargetConfig) throws -> WarehouseLoader { try staged.loader(target) }

    func extract(_ resource: Resource, _ day: Day?, at: Date = Date()) throws -> LoadMessage {
        try staged.extract(account, resource, day, at: at, runID: UTCTime.compact(at))
    }

    /// Every row of a table in a schema, every column as text, in one order.
    func rows(_ schema: String, _ table: String) throws -> [[String?]] {
        let pg = try PostgresConnection(try TestServices.postgres())
        let columns = WarehouseSchema.table(table)!.columns.map { WarehouseSchema.quote($0.name) + "::text" }.joined(separator: ", ")
        return try pg.query("SELECT \(columns) FROM \(schema).\(table) ORDER BY sid")
    }

    @Test func redshiftLoadsEqualPostgresLoadsFieldByFieldAndReloadIdempotently() throws {
        let redshift = try loader(try target(.redshift, schema: id, role: true))
        let postgres = try loader(try target(.postgres, schema: "\(id)_pg"))
        #expect(redshift.dialect.flavor == .redshift)
        var loads: [LoadMessage] = []
        for resource in [Resource.calls, .messages, .recordings] {
            loads.append(try extract(resource, Self.day, at: Date(timeIntervalSinceNow: -120)))
        }
        loads.append(try extract(.incomingPhoneNumbers, nil, at: Date(timeIntervalSinceNow: -120)))
        let loaded = try redshift.load(loads)
        #expect(Set(loaded.loaded) == Set(loads.map(\.loadID)), "\(loaded.skipped)")
        _ = try postgres.load(loads)
        for table in ["twilio_calls", "twilio_messages", "twilio_recordings", "twilio_incoming_phone_numbers"] {
            let viaRedshift = try rows(id, table), viaPostgres = try rows("\(id)_pg", table)
            #expect(viaRedshift.count > 0 && viaRedshift.count == viaPostgres.count, "\(table)")
            #expect(viaRedshift == viaPostgres, "\(table): Redshift's COPY rules load the staged bytes as PostgreSQL's do")
        }
        // The hard texts went through: tabs, CR/LF, backslashes, `\N` look-alikes, emoji, CJK, RTL, empty against NULL.
        let texts = Set(
            try rows(id, "twilio_calls").map { $0[WarehouseSchema.table("twilio_calls")!.columns.firstIndex { $0.name == "caller_name" }!] }
        )
        for text in SandboxData.hardTexts { #expect(texts.contains(text), "\(String(describing: text))") }

        // Redelivered: nothing twice. Re-read: identical, skipped. Re-read without a digest: replaced and reported.
        #expect(try redshift.load(loads).skipped.count == loads.count)
        let again = try extract(.calls, Self.day, at: Date(timeIntervalSinceNow: -60))
        #expect(try redshift.load([again]).reports.map(\.identical) == [true])
        var replace = try extract(.calls, Self.day)
        replace.contentDigest = nil
        let replaced = try redshift.load([replace])
        let expected = SandboxAPI.expected(account, "calls", day: Self.day).count
        #expect(
            replaced.loaded == [replace.loadID] && replaced.reports.first?.rowsBefore == expected && replaced.reports.first?.changed == 0)
        #expect(try rows(id, "twilio_calls").count == expected)

        // What status and catch-up read, through Redshift's SQL.
        let pg = try redshift.db()
        let ledger = Ledger(schema: id)
        #expect(try ledger.loadedDays(table: "twilio_calls", channel: "acme", pg) == [Self.day])
        #expect(try ledger.freshness(pg).contains { $0.table == "twilio_calls" && $0.newestDay == "\(Self.day)" })
        let pass = try ledger.lastPass(pg)
        #expect(pass.first { $0.table == "twilio_calls" }.map { ($0.replaced, $0.changed) } ?? (0, -1) == (1, 0))
        #expect(try ledger.newestDays(pg).contains { $0.table == "twilio_messages" && $0.day == Self.day })
    }

    @Test func redshiftCountsVarcharInBytesWhereTheStagedFileWouldNotFit() throws {
        // A column narrowed by hand (a 0.3 schema): PostgreSQL counts characters and takes the value, Redshift counts
        // bytes and fails the COPY; the loader names the error and nothing of the load lands.
        let redshift = try loader(try target(.redshift, schema: id))
        let postgres = try loader(try target(.postgres, schema: "\(id)_pg"))
        let pg = try PostgresConnection(try TestServices.postgres())
        // 24 characters hold every hard text (at most 21 code points); in bytes, emoji, CJK and Arabic need 32–37.
        for schema in [id, "\(id)_pg"] { try pg.execute("ALTER TABLE \(schema).twilio_calls ALTER COLUMN caller_name TYPE varchar(24)") }
        let load = try extract(.calls, Self.day)
        #expect(try postgres.load([load]).loaded == [load.loadID], "PostgreSQL counts characters")
        let error = try #require(throws: (any Error).self) { try redshift.load([load]) }
        #expect("\(error)".contains("stl_load_errors"), "\(error)")
        #expect(
            "\(error)".contains("caller_name") && "\(error)".contains("1204"), "the loader reads stl_load_errors and names it: \(error)")
        #expect(ErrorClass.of(error) == .permanent)
        #expect(
            try rows(id, "twilio_calls").isEmpty
                && Ledger(schema: id).loadedDays(table: "twilio_calls", channel: "acme", redshift.db()).isEmpty)
        let reason = try pg.query("SELECT err_code::text, colname FROM public.stl_load_errors ORDER BY starttime DESC LIMIT 1")
        #expect(reason.first?.first == "1204", "String length exceeds DDL length: \(reason)")
    }

    @Test func statementsRedshiftDoesNotSupportAreRefusedByTheTestServer() throws {
        // The guard that keeps the production SQL honest: what PostgreSQL alone would accept.
        let redshift = try loader(try target(.redshift, schema: id))
        let pg = try redshift.db()
        for sql in [
            "SELECT count(*) FILTER (WHERE true) FROM \(id).load_ledger",
            "SELECT 1 WHERE 'a' = ANY(ARRAY['a'])",
            "SELECT pg_advisory_xact_lock(1)",
        ] {
            #expect(throws: PQError.self) { try pg.query(sql) }
        }
        #expect(try pg.query("SELECT count(*) FROM \(id).load_ledger").first?.first == "0")
    }

    /// A load holds its lock while analysts query the table: on Redshift, LOCK is ACCESS EXCLUSIVE, so the loader locks
    /// Huskimo's own `load_lock`, and a SELECT on the data table answers during the load (with the data table locked it
    /// would wait for the commit).
    @Test func readersKeepReadingWhileALoadHoldsItsLock() throws {
        let redshift = try loader(try target(.redshift, schema: id, role: true))
        let first = try extract(.calls, Self.day, at: Date(timeIntervalSinceNow: -120))
        _ = try redshift.load([first])
        var reload = try extract(.calls, Self.day)
        reload.contentDigest = nil  // replaced, not skipped as identical: the DELETE and COPY run under the lock
        let again = reload
        redshift.afterDelete = { _ in Thread.sleep(forTimeInterval: 3) }
        let loading = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var loaded: Result<BatchOutcome, any Error>?
        Thread.detachNewThread {
            loaded = Result { try redshift.load([again]) }
            loading.signal()
        }
        Thread.sleep(forTimeInterval: 1)  // the load is inside its transaction, lock taken, partition deleted
        let reader = try PostgresConnection(try target(.redshift, schema: id).postgresSettings)
        try reader.execute("SET statement_timeout TO 1500")
        let started = Date()
        let count = try reader.query("SELECT count(*) FROM \(id).twilio_calls")
        #expect(-started.timeIntervalSinceNow < 1.5 && Int(count[0][0] ?? "") == first.rows, "the reader sees the committed rows at once")
        loading.wait()
        #expect(try loaded?.get().loaded == [again.loadID])
    }

    /// Redshift's serializable isolation violation (1023, SQLSTATE XX000) and SNAPSHOT isolation's conflict are retried,
    /// not parked: the loader's error is transient and not a target-wide pause, and the same batch lands next time.
    @Test(arguments: ["serializable", "snapshot"]) func anInjectedConflictIsRetriedAndTheLoadLands(kind: String) throws {
        let redshift = try loader(try target(.redshift, schema: id, role: true))
        let load = try extract(.calls, Self.day)
        let control = try PostgresConnection(try target(.redshift, schema: id).postgresSettings)
        try control.execute("SELECT huskimo_test_inject_conflict('\(kind)', 1, '\(id)')")
        let error = try #require(throws: (any Error).self) { try redshift.load([load]) }
        #expect(ErrorClass.of(error) == .transient, "\(error)")
        #expect(TargetPaused.reason(error) == nil)
        #expect(try redshift.load([load]).loaded == [load.loadID])
        #expect(try rows(id, "twilio_calls").count == load.rows)
    }
}
