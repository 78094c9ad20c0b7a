import HuskimoConnectors
import HuskimoCore

/// The load ledger (`<schema>.load_ledger`, one row per staged object loaded): what makes loads idempotent (an
/// object is never loaded twice) and ordered (an older extraction never overwrites a newer one), and what
/// catch-up planning and `status` read. Every statement that touches it is here, written in the SQL that
/// PostgreSQL and Redshift share (no arrays, no aggregate `FILTER`).
struct Ledger: Sendable {
    /// The target's schema, unquoted.
    package let schema: String

    package init(schema: String) { self.schema = schema }

    private var table: String { "\(sqlIdentifier(schema)).load_ledger" }

    /// The ledger's DDL (idempotent) in `dialect`, placed by ``WarehouseDialect/ddl(schema:)`` between the tables
    /// and the views.
    package static func ddl(_ dialect: any WarehouseDialect, schema: String) -> String {
        let s = sqlIdentifier(schema)
        let timestamp = dialect.instantType
        let sortKey = ["table_name", "channel_name", "partition_key"]
        let indexed = sortKey + ["extracted_at"]
        var out = """
            -- One row per staged object loaded: what makes loads idempotent and ordered.
            CREATE TABLE IF NOT EXISTS \(s).load_ledger (
                object_key               varchar(1024) NOT NULL,
                table_name               varchar(128) NOT NULL,
                channel_name             varchar(512) NOT NULL,
                partition_key            varchar(32) NOT NULL,
                rows_loaded              bigint NOT NULL,
                job_id                   varchar(1024) NOT NULL,
                load_id                  varchar(1100) NOT NULL,
                extracted_at             \(timestamp) NOT NULL,
                loaded_at                \(timestamp) NOT NULL\(dialect.nowDefault),
                PRIMARY KEY (table_name, object_key)
            )\(dialect.bookkeepingTableEnd(sortKey: sortKey));

            """
        out += dialect.bookkeepingIndex("load_ledger", columns: indexed, schema: s)
        out += """

            -- One row per replace of a partition (or snapshot): what it changed. outcome 'identical': the re-read had
            -- the content digest of what was loaded, and the load was skipped.
            CREATE TABLE IF NOT EXISTS \(s).load_reports (
                load_id                  varchar(1100) NOT NULL,
                table_name               varchar(128) NOT NULL,
                channel_name             varchar(512) NOT NULL,
                partition_key            varchar(32) NOT NULL,
                extracted_at             \(timestamp) NOT NULL,
                loaded_at                \(timestamp) NOT NULL\(dialect.nowDefault),
                outcome                  varchar(16) NOT NULL,
                rows_before              bigint NOT NULL,
                rows_after               bigint NOT NULL,
                rows_changed             bigint,
                rows_added               bigint,
                rows_removed             bigint,
                content_digest           varchar(64),
                run_id                   varchar(64),
                PRIMARY KEY (table_name, load_id)
            )\(dialect.bookkeepingTableEnd(sortKey: sortKey));

            """
        out += dialect.bookkeepingIndex("load_reports", columns: indexed, schema: s)
        out += """

            -- What loaders of this target lock for a table's batch where the warehouse has no advisory locks (Redshift):
            -- never the data table, whose readers would wait for the whole load.
            CREATE TABLE IF NOT EXISTS \(s).load_lock (
                target                   varchar(200)
            )\(dialect.bookkeepingTableEnd(sortKey: ["target"]));

            """
        out += HistoryBook.ddl(dialect, schema: schema)
        out += Reconciler.ddl(dialect, schema: schema)
        return out
    }

    private var reports: String { "\(sqlIdentifier(schema)).load_reports" }

    /// The channel of a ledger or report row: `channel_name` without the `/account` of one account's share.
    static let channel = "split_part(channel_name, '/', 1)"

    /// Records what a replace changed (inside the load's transaction).
    package func record(_ report: ChangeReport, _ pg: PostgresConnection) throws {
        try pg.query(
            """
            INSERT INTO \(reports) (load_id, table_name, channel_name, partition_key, extracted_at, outcome, rows_before, rows_after,
                                    rows_changed, rows_added, rows_removed, content_digest, run_id)
            VALUES ($1, $2, $3, $4, $5::timestamptz, $6, $7, $8, $9, $10, $11, $12, $13)
            """,
            [
                report.loadID, report.table, report.channel, report.partition, report.extractedAt,
                report.identical ? "identical" : "replaced",
                String(report.rowsBefore), String(report.rowsAfter), report.changed.map(String.init), report.added.map(String.init),
                report.removed.map(String.init), report.contentDigest, report.runID,
            ])
    }

    /// Records an append to an append-only table (outcome `appended`, with its run): what keeps a run to one retrieval
    /// per partition (inside the load's transaction).
    func recordAppend(_ message: LoadMessage, table tableName: String, _ pg: PostgresConnection) throws {
        try pg.query(
            """
            INSERT INTO \(reports) (load_id, table_name, channel_name, partition_key, extracted_at, outcome, rows_before, rows_after, run_id)
            VALUES ($1, $2, $3, $4, $5::timestamptz, 'appended', 0, $6, $7)
            """,
            [message.loadID, tableName, message.ledgerChannel, message.partition, message.extractedAt, String(message.rows), message.runID])
    }

    /// Whether the partition of an append-only table already has a retrieval of `run` appended.
    func hasAppended(_ message: LoadMessage, run: String, table tableName: String, _ pg: PostgresConnection) throws -> Bool {
        let rows = try pg.query(
            """
            SELECT count(*) FROM \(reports)
            WHERE table_name = $1 AND channel_name = $2 AND partition_key = $3 AND run_id = $4 AND outcome = 'appended'
            """, [tableName, message.ledgerChannel, message.partition, run])
        return (rows.first?.first.flatMap { $0 }.flatMap { Int($0) } ?? 0) > 0
    }

    /// The content digest of what the partition holds now: the newest report's (nil: none, or loaded by a worker
    /// that sent no digest).
    /// Which of a partition's reports describes what it holds now: the one written last (ties, as Redshift's
    /// `getdate()` counts whole seconds: the newer run, then the later extraction — the order loads are applied in).
    /// Both skips (older, identical) read this one row, so they never disagree about what the partition holds: a
    /// worker whose clock ran ahead leaves a report with a later `extracted_at` that a newer run has since replaced.
    static let currentReport = "ORDER BY loaded_at DESC, run_id DESC NULLS LAST, extracted_at DESC LIMIT 1"

    func currentDigest(table tableName: String, channel: String, partition: String, _ pg: PostgresConnection) throws -> String? {
        let rows = try pg.query(
            """
            SELECT content_digest FROM \(reports) WHERE table_name = $1 AND channel_name = $2 AND partition_key = $3
            \(Self.currentReport)
            """, [tableName, channel, partition])
        return rows.first?.first.flatMap { $0 }
    }

    /// Per (table, channel): the last pass — the reports of the planner run that loaded last — for `status`.
    func lastPass(_ pg: PostgresConnection) throws -> [ReloadPass] {
        let reload = "(r.outcome = 'identical' OR r.rows_before > 0)"
        let rows = try pg.query(
            """
            SELECT r.table_name, r.channel,
                   sum(CASE WHEN \(reload) THEN 0 ELSE 1 END),
                   sum(CASE WHEN r.outcome = 'identical' THEN 1 ELSE 0 END),
                   sum(CASE WHEN r.outcome = 'replaced' AND r.rows_before > 0 THEN 1 ELSE 0 END),
                   sum(CASE WHEN \(reload) THEN coalesce(r.rows_changed, 0) ELSE 0 END),
                   sum(CASE WHEN \(reload) THEN coalesce(r.rows_added, 0) ELSE 0 END),
                   sum(CASE WHEN \(reload) THEN coalesce(r.rows_removed, 0) ELSE 0 END),
                   to_char(max(r.loaded_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
            FROM (SELECT *, \(Self.channel) AS channel FROM \(reports)) r
            JOIN (SELECT table_name, channel, run_id
                  FROM (SELECT table_name, \(Self.channel) AS channel, run_id,
                               row_number() OVER (PARTITION BY table_name, \(Self.channel) ORDER BY loaded_at DESC) AS newest
                        FROM \(reports) WHERE run_id IS NOT NULL AND outcome <> 'appended') ranked
                  WHERE newest = 1) n
              ON n.table_name = r.table_name AND n.channel = r.channel AND n.run_id = r.run_id
            WHERE r.outcome <> 'appended'
            GROUP BY 1, 2 ORDER BY 1, 2
            """)
        return rows.map { row in
            func int(_ i: Int) -> Int { row[i].flatMap { Int($0) } ?? 0 }
            return ReloadPass(
                table: row[0] ?? "", channel: row[1] ?? "", newPartitions: int(2), identical: int(3), replaced: int(4),
                changed: int(5), added: int(6), removed: int(7), lastLoadedAt: row[8])
        }
    }

    /// Whether any of `keys` (objects of one load) is already loaded into `tableName`.
    func containsAny(_ keys: [String], table tableName: String, _ pg: PostgresConnection) throws -> Bool {
        guard !keys.isEmpty else { return false }
        let placeholders = keys.indices.map { "$\($0 + 2)" }.joined(separator: ", ")
        let rows = try pg.query(
            "SELECT count(*) FROM \(table) WHERE table_name = $1 AND object_key IN (\(placeholders))",
            [tableName] + keys)
        return Int(rows.first?.first.flatMap { $0 } ?? "0").map { $0 > 0 } ?? false
    }

    /// Whether the partition already holds what `message` would replace it with or newer. Order: the planner's run
    /// first (run ids are the planner's clock, one clock for the fleet), then the extraction time within a run —
    /// so a worker whose clock runs ahead cannot shadow the next nights' settle passes. Partitions loaded before
    /// change reports existed, and messages without a run id, are ordered by extraction time alone.
    func hasExtraction(notOlderThan message: LoadMessage, table tableName: String, _ pg: PostgresConnection) throws -> Bool {
        if let run = message.runID {
            let rows = try pg.query(
                """
                SELECT CASE WHEN run_id IS NULL THEN NULL WHEN run_id > $4 THEN 't' WHEN run_id < $4 THEN 'f'
                            WHEN extracted_at >= $5::timestamptz THEN 't' ELSE 'f' END
                FROM \(reports) WHERE table_name = $1 AND channel_name = $2 AND partition_key = $3
                \(Self.currentReport)
                """, [tableName, message.ledgerChannel, message.partition, run, message.extractedAt])
            if let verdict = rows.first?.first.flatMap({ $0 }) { return verdict == "t" }
        }
        return try hasExtraction(
            notOlderThan: message.extractedAt, table: tableName, channel: message.ledgerChannel,
            partition: message.partition, pg)
    }

    /// Whether the partition already holds an extraction at least as new as `extractedAt`.
    func hasExtraction(
        notOlderThan extractedAt: String, table tableName: String, channel: String, partition: String,
        _ pg: PostgresConnection
    ) throws -> Bool {
        let rows = try pg.query(
            "SELECT max(extracted_at) >= $4::timestamptz FROM \(table) WHERE table_name = $1 AND channel_name = $2 AND partition_key = $3",
            [tableName, channel, partition, extractedAt])
        return rows.first?.first.flatMap { $0 } == "t"
    }

    /// Records every object of `message` as loaded (inside the load's transaction).
    package func record(_ message: LoadMessage, table tableName: String, _ pg: PostgresConnection) throws {
        for object in message.objects {
            try pg.query(
                """
                INSERT INTO \(table) (object_key, table_name, channel_name, partition_key, rows_loaded, job_id, load_id, extracted_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8::timestamptz)
                """,
                [
                    object.key, tableName, message.ledgerChannel, message.partition, String(object.rows), message.jobID,
                    message.loadID, message.extractedAt,
                ])
        }
    }

    /// The newest day per (table, channel): a day partition's day, a snapshot's extraction day.
    func newestDays(_ pg: PostgresConnection) throws -> [(table: String, channel: String, day: Day)] {
        let rows = try pg.query(
            """
            SELECT table_name, \(Self.channel), max(CASE WHEN partition_key = 'snapshot' THEN to_char(extracted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')
                                                     ELSE partition_key END)
            FROM \(table) GROUP BY 1, 2
            """)
        return rows.compactMap { row in
            guard let table = row[0], let channel = row[1], let day = row[2].flatMap(Day.init) else { return nil }
            return (table, channel, day)
        }
    }

    /// Per (table, channel): the newest loaded day partition (nil: snapshots only) and the last load time (UTC,
    /// ISO 8601), for `status`.
    func freshness(_ pg: PostgresConnection) throws -> [(table: String, channel: String, newestDay: String?, lastLoadedAt: String?)] {
        let rows = try pg.query(
            """
            SELECT table_name, \(Self.channel), max(CASE WHEN partition_key <> 'snapshot' THEN partition_key END),
                   to_char(max(loaded_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
            FROM \(table) GROUP BY 1, 2 ORDER BY 1, 2
            """)
        return rows.map { ($0[0] ?? "", $0[1] ?? "", $0[2], $0[3]) }
    }

    /// The day partitions of (table, channel) that have been loaded: what catch-up does not plan again.
    func loadedDays(table tableName: String, channel: String, _ pg: PostgresConnection) throws -> Set<Day> {
        let rows = try pg.query(
            "SELECT DISTINCT partition_key FROM \(table) WHERE table_name = $1 AND \(Self.channel) = $2",
            [tableName, channel])
        return Set(rows.compactMap { $0[0].flatMap(Day.init) })
    }
}

/// What the last pass of reloads of one (table, channel) did (``Ledger/lastPass(_:)``).
struct ReloadPass: Sendable, Codable, Hashable {
    package var table: String
    package var channel: String
    /// Partitions loaded for the first time.
    var newPartitions: Int
    /// Re-reads skipped because nothing had changed.
    package var identical: Int
    /// Partitions replaced with different content.
    package var replaced: Int
    /// Records (by SID) whose changeable columns changed, appeared or disappeared in the replaced partitions.
    package var changed: Int
    package var added: Int
    package var removed: Int
    var lastLoadedAt: String?
}
