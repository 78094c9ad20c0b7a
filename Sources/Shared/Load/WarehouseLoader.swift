import Foundation
public import Logging

/// What a batch did.
public struct LoadOutcome: Sendable {
    public var loaded: [String] = []
    /// Load ids not applied, with why (already loaded, or older than what the partition holds).
    public var skipped: [(loadID: String, reason: String)] = []
    public var rowsByTable: [String: Int] = [:]
}

/// A load that cannot succeed as is: a staged object missing or corrupt, a table unknown, a row count off.
public struct LoadError: ClassifiedError, Sendable {
    public let loadID: String
    public let errorClass: ErrorClass
    public let message: String
    public var description: String { "load \(loadID): \(message)" }
}

/// Loads batches of load messages into one target, idempotently: per table, one transaction that deletes the
/// partitions being replaced, loads the objects and writes ledger rows. An object already in the ledger is
/// never loaded again; a partition whose ledger shows a newer extraction is not overwritten by an older one.
/// Not thread-safe: one loader per target (the target's queue has a single active consumer).
public final class WarehouseLoader: @unchecked Sendable {  // used by one load loop at a time (see above)
    public let target: TargetConfig
    public let flavor: WarehouseSchema.Flavor
    private let s3: S3Client
    private let s3Config: S3Config
    private let logger: Logger
    private var connection: PostgresConnection?
    /// The newest day loaded per (table, channel), for the freshness gauge.
    private var newestDay: [String: Day] = [:]
    /// Test hook: runs inside the transaction after the DELETE, before the COPY.
    var afterDelete: ((String) throws -> Void)?

    public init(target: TargetConfig, s3: S3Client, s3Config: S3Config, logger: Logger) {
        self.target = target
        self.flavor = target.type == .redshift ? .redshift : .postgres
        self.s3 = s3
        self.s3Config = s3Config
        self.logger = logger
    }

    var schema: String { sqlIdentifier(target.schema) }

    func db() throws -> PostgresConnection {
        if let connection, connection.isHealthy { return connection }
        connection = nil
        let fresh = try PostgresConnection(target.postgresSettings)
        connection = fresh
        return fresh
    }

    /// Seeds the freshness gauge from the ledger (what earlier loaders loaded). Best effort.
    public func publishFreshnessFromLedger() {
        guard let rows = try? db().query("""
            SELECT table_name, channel_name, max(CASE WHEN partition_key = 'snapshot' THEN to_char(extracted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')
                                                     ELSE partition_key END)
            FROM \(schema).load_ledger GROUP BY 1, 2
            """) else { return }
        for row in rows {
            guard let table = row[0], let channel = row[1], let day = row[2].flatMap(Day.init) else { continue }
            let key = table + "\u{0}" + channel
            if newestDay[key].map({ $0 < day }) ?? true {
                newestDay[key] = day
                FleetMetrics.loadedDay(target: target.name, table: table, channel: channel, day: day)
            }
        }
    }

    /// Applies the DDL (idempotent).
    public func applyDDL() throws {
        try db().execute(WarehouseSchema.ddl(flavor, schema: target.schema))
    }

    /// Loads a batch. Messages are grouped by table; each table's group commits or rolls back as one.
    /// - Throws: the first failing table's error; tables committed before it stay committed (each is whole).
    public func load(_ batch: [LoadMessage]) throws -> LoadOutcome {
        var outcome = LoadOutcome()
        let byTable = Dictionary(grouping: batch, by: \.table)
        for tableName in byTable.keys.sorted() {
            guard let table = WarehouseSchema.table(tableName) else {
                throw LoadError(loadID: byTable[tableName]![0].loadID, errorClass: .permanent, message: "unknown table \(tableName)")
            }
            try loadTable(table, byTable[tableName]!, into: &outcome)
        }
        return outcome
    }

    private func loadTable(_ table: WarehouseSchema.Table, _ messages: [LoadMessage], into outcome: inout LoadOutcome) throws {
        let started = ContinuousClock.now
        let pg = try db()
        var candidates = messages.sorted { $0.extractedAt < $1.extractedAt }
        if !table.appendOnly {
            // Within a batch, only the newest extraction of a partition matters.
            var newest: [String: LoadMessage] = [:]
            for m in candidates { newest["\(m.channel)\u{0}\(m.partition)"] = m }
            let keep = Set(newest.values.map(\.loadID))
            for m in candidates where !keep.contains(m.loadID) {
                outcome.skipped.append((m.loadID, "superseded by a newer extraction in the same batch"))
            }
            candidates = candidates.filter { keep.contains($0.loadID) }
        }
        var rows = 0
        var applied: [String] = []
        var skipped: [(String, String)] = []
        var applying: [LoadMessage] = []
        try pg.transaction {
            for message in candidates {
                let keys = message.objects.map(\.key)
                let already = try pg.query(
                    "SELECT count(*) FROM \(schema).load_ledger WHERE table_name = $1 AND object_key = ANY($2::varchar[])",
                    [table.name, "{" + keys.map { "\"" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }.joined(separator: ",") + "}"])
                if Int(already[0][0] ?? "0")! > 0 {
                    skipped.append((message.loadID, "already loaded"))
                    continue
                }
                if !table.appendOnly {
                    let newest = try pg.query(
                        "SELECT max(extracted_at) >= $4::timestamptz FROM \(schema).load_ledger WHERE table_name = $1 AND channel_name = $2 AND partition_key = $3",
                        [table.name, message.channel, message.partition, message.extractedAt])
                    if newest[0][0] == "t" {
                        skipped.append((message.loadID, "older than the extraction already loaded"))
                        continue
                    }
                    try deletePartition(table, message, pg)
                    try afterDelete?(message.loadID)
                }
                applying.append(message)
            }
            // PostgreSQL: every object streamed into COPY FROM STDIN. Redshift: one COPY of one manifest for the
            // whole table's batch (the cluster loads the files in parallel).
            switch flavor {
            case .postgres:
                for message in applying {
                    for object in message.objects {
                        let loaded = try copy(object, into: table, pg, loadID: message.loadID)
                        guard loaded == object.rows else {
                            throw LoadError(loadID: message.loadID, errorClass: .permanent,
                                            message: "\(object.key): loaded \(loaded) rows, the load message says \(object.rows)")
                        }
                        rows += loaded
                    }
                }
            case .redshift:
                let objects = applying.flatMap(\.objects)
                if !objects.isEmpty {
                    let loaded = try copyManifest(objects, into: table, pg, loadID: applying[0].loadID)
                    let expected = objects.reduce(0) { $0 + $1.rows }
                    guard loaded == expected else {
                        throw LoadError(loadID: applying[0].loadID, errorClass: .permanent,
                                        message: "\(table.name): COPY loaded \(loaded) rows, the load messages say \(expected)")
                    }
                    rows += loaded
                }
            }
            for message in applying {
                for object in message.objects {
                    try pg.query(
                        """
                        INSERT INTO \(schema).load_ledger (object_key, table_name, channel_name, partition_key, rows_loaded, job_id, load_id, extracted_at)
                        VALUES ($1, $2, $3, $4, $5, $6, $7, $8::timestamptz)
                        """,
                        [object.key, table.name, message.channel, message.partition, String(object.rows), message.jobID,
                         message.loadID, message.extractedAt])
                }
                applied.append(message.loadID)
            }
        }
        outcome.loaded += applied
        outcome.skipped += skipped.map { (loadID: $0.0, reason: $0.1) }
        outcome.rowsByTable[table.name, default: 0] += rows
        FleetMetrics.load(target: target.name, outcome: .skipped, count: skipped.count)
        if !applied.isEmpty {
            FleetMetrics.load(target: target.name, outcome: .succeeded, count: applied.count)
            FleetMetrics.loadedTable(target: target.name, table: table.name, rows: rows, seconds: (ContinuousClock.now - started).seconds)
            for message in candidates where applied.contains(message.loadID) {
                // Snapshots count as loaded on the day they were extracted.
                guard let day = Day(message.partition) ?? Day(String(message.extractedAt.prefix(10))) else { continue }
                let key = table.name + "\u{0}" + message.channel
                if newestDay[key].map({ $0 < day }) ?? true {
                    newestDay[key] = day
                    FleetMetrics.loadedDay(target: target.name, table: table.name, channel: message.channel, day: day)
                }
            }
            logger.info("loaded", metadata: ["table": "\(table.name)", "loads": "\(applied.count)", "rows": "\(rows)",
                                             "target": "\(target.name)"])
        }
    }

    private func deletePartition(_ table: WarehouseSchema.Table, _ message: LoadMessage, _ pg: PostgresConnection) throws {
        if let column = table.partitionColumn {
            guard let day = Day(message.partition) else {
                throw LoadError(loadID: message.loadID, errorClass: .permanent, message: "partition \(message.partition) is not a day")
            }
            try pg.query(
                "DELETE FROM \(schema).\(table.name) WHERE channel_name = $1 AND \(column) >= $2::timestamp AND \(column) < $3::timestamp",
                [message.channel, "\(day) 00:00:00", "\(day.adding(days: 1)) 00:00:00"])
        } else {
            try pg.query("DELETE FROM \(schema).\(table.name) WHERE channel_name = $1", [message.channel])
        }
    }

    /// PostgreSQL: loads one object streamed from S3 through gunzip into `COPY FROM STDIN`, its SHA-256 checked
    /// on the way. (Redshift batches go through ``copyManifest(_:into:_:loadID:)``.)
    private func copy(_ object: StagedObject, into table: WarehouseSchema.Table, _ pg: PostgresConnection, loadID: String) throws -> Int {
        let sha = Digest(.sha256)
        let loaded = try pg.copyIn(
            "COPY \(schema).\(table.name) (\(table.columnList)) FROM STDIN WITH (FORMAT text, DELIMITER E'\\t', NULL '\\N', ENCODING 'UTF8')"
        ) { write in
            try withoutActuallyEscaping(write) { write in
                let gunzip = try GzipReader { try write($0) }
                try s3.get(object.key) { chunk in
                    sha.update(chunk)
                    try gunzip.write(chunk)
                }
                try gunzip.finish()
            }
        }
        let digest = sha.finalize().hexString
        guard digest == object.sha256 else {
            throw LoadError(loadID: loadID, errorClass: .permanent, message: "\(object.key): SHA-256 \(digest) ≠ \(object.sha256)")
        }
        return loaded
    }

    /// Redshift: `COPY … MANIFEST` of all `objects` in one statement; returns `pg_last_copy_count()`.
    private func copyManifest(_ objects: [StagedObject], into table: WarehouseSchema.Table, _ pg: PostgresConnection,
                              loadID: String) throws -> Int {
        let manifestKey = [s3Config.folderPath, "_manifests", "\(Digest.sha256Hex(Array(loadID.utf8))).manifest"]
            .filter { !$0.isEmpty }.joined(separator: "/")
        try s3.put(manifestKey, Array(RedshiftCopy.manifest(bucket: s3Config.bucket, keys: objects.map(\.key)).utf8),
                   contentType: "application/json")
        defer { _ = try? s3.delete([manifestKey]) }
        do {
            try pg.execute(RedshiftCopy.statement(schema: target.schema, table: table, bucket: s3Config.bucket,
                                                  manifestKey: manifestKey, region: s3Config.region, auth: redshiftAuth))
        } catch let error as PQError {
            // The statement may carry the S3 secret (key-pair auth): scrub it from anything that gets printed.
            throw LoadError(loadID: loadID, errorClass: error.errorClass, message: error.description.redacting([s3Config.secretAccessKey]))
        }
        let count = try pg.query("SELECT pg_last_copy_count()")
        return Int(count[0][0] ?? "0") ?? 0
    }

    var redshiftAuth: RedshiftCopy.Auth {
        if let role = target.iamRole { return .iamRole(role) }
        return .keys(s3Config.accessKeyID, s3Config.secretAccessKey)
    }
}

/// Redshift COPY statements and manifests (`../shared/reference/copy-formats.md` §4.2, §5).
public enum RedshiftCopy {
    public enum Auth: Sendable {
        case iamRole(String)
        case keys(String, Secret)
    }

    public static func manifest(bucket: String, keys: [String]) -> String {
        let entries = keys.map { "{\"url\":\"s3://\(bucket)/\(jsonEscape($0))\",\"mandatory\":true}" }
        return "{\"entries\":[\(entries.joined(separator: ","))]}"
    }

    /// The COPY that loads the staged format byte-exact: TAB-delimited text with backslash escapes, `\N`
    /// NULLs (the default: no NULL AS), gzip, UTC timestamps; nothing that rewrites values (no EMPTYASNULL,
    /// BLANKSASNULL, TRIMBLANKS, ACCEPTINVCHARS, TRUNCATECOLUMNS), MAXERROR 0.
    public static func statement(schema: String, table: WarehouseSchema.Table, bucket: String, manifestKey: String, region: String,
                                 auth: Auth) -> String {
        let credentials: String
        switch auth {
        case .iamRole(let arn): credentials = "IAM_ROLE \(sqlLiteral(arn))"
        case .keys(let id, let secret):
            credentials = "ACCESS_KEY_ID \(sqlLiteral(id)) SECRET_ACCESS_KEY \(sqlLiteral(secret.reveal()))"
        }
        return """
            COPY \(sqlIdentifier(schema)).\(table.name) (\(table.columnList)) FROM \(sqlLiteral("s3://\(bucket)/\(manifestKey)")) \
            \(credentials) MANIFEST REGION \(sqlLiteral(region)) GZIP DELIMITER '\\t' ESCAPE TIMEFORMAT 'YYYY-MM-DD HH:MI:SS' \
            MAXERROR 0 COMPUPDATE OFF STATUPDATE OFF
            """
    }

    static func jsonEscape(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
    }
}
