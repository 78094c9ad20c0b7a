public import HuskimoConnectors
public import HuskimoCore

/// The load ledger (`<schema>.load_ledger`, one row per staged object loaded): what makes loads idempotent (an
/// object is never loaded twice) and ordered (an older extraction never overwrites a newer one), and what
/// catch-up planning and `status` read. Every statement that touches it is here, written in the SQL that
/// PostgreSQL and Redshift share (no arrays, no aggregate `FILTER`).
public struct Ledger: Sendable {
    /// The target's schema, unquoted.
    public let schema: String

    public init(schema: String) { self.schema = schema }

    private var table: String { "\(sqlIdentifier(schema)).load_ledger" }

    /// The ledger's DDL (idempotent), placed by ``WarehouseSchema/ddl(_:schema:extra:)`` between the tables and
    /// the views.
    public static func ddl(_ flavor: WarehouseSchema.Flavor, schema: String) -> String {
        let s = sqlIdentifier(schema)
        let timestamp = flavor == .postgres ? "timestamptz" : "timestamp"
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
                loaded_at                \(timestamp) NOT NULL\(flavor == .postgres ? " DEFAULT now()" : " DEFAULT getdate()"),
                PRIMARY KEY (table_name, object_key)
            )\(flavor == .redshift ? "\nDISTSTYLE ALL SORTKEY (table_name, channel_name, partition_key)" : "");

            """
        if flavor == .postgres {
            out += "CREATE INDEX IF NOT EXISTS load_ledger_partition ON \(s).load_ledger (table_name, channel_name, partition_key, extracted_at);\n"
        }
        return out
    }

    /// Whether any of `keys` (objects of one load) is already loaded into `tableName`.
    public func containsAny(_ keys: [String], table tableName: String, _ pg: PostgresConnection) throws -> Bool {
        guard !keys.isEmpty else { return false }
        let placeholders = keys.indices.map { "$\($0 + 2)" }.joined(separator: ", ")
        let rows = try pg.query("SELECT count(*) FROM \(table) WHERE table_name = $1 AND object_key IN (\(placeholders))",
                                [tableName] + keys)
        return Int(rows.first?.first.flatMap { $0 } ?? "0").map { $0 > 0 } ?? false
    }

    /// Whether the partition already holds an extraction at least as new as `extractedAt`.
    public func hasExtraction(notOlderThan extractedAt: String, table tableName: String, channel: String, partition: String,
                              _ pg: PostgresConnection) throws -> Bool {
        let rows = try pg.query(
            "SELECT max(extracted_at) >= $4::timestamptz FROM \(table) WHERE table_name = $1 AND channel_name = $2 AND partition_key = $3",
            [tableName, channel, partition, extractedAt])
        return rows.first?.first.flatMap { $0 } == "t"
    }

    /// Records every object of `message` as loaded (inside the load's transaction).
    public func record(_ message: LoadMessage, table tableName: String, _ pg: PostgresConnection) throws {
        for object in message.objects {
            try pg.query(
                """
                INSERT INTO \(table) (object_key, table_name, channel_name, partition_key, rows_loaded, job_id, load_id, extracted_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8::timestamptz)
                """,
                [object.key, tableName, message.channel, message.partition, String(object.rows), message.jobID,
                 message.loadID, message.extractedAt])
        }
    }

    /// The newest day per (table, channel): a day partition's day, a snapshot's extraction day.
    public func newestDays(_ pg: PostgresConnection) throws -> [(table: String, channel: String, day: Day)] {
        let rows = try pg.query("""
            SELECT table_name, channel_name, max(CASE WHEN partition_key = 'snapshot' THEN to_char(extracted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')
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
    public func freshness(_ pg: PostgresConnection) throws -> [(table: String, channel: String, newestDay: String?, lastLoadedAt: String?)] {
        let rows = try pg.query("""
            SELECT table_name, channel_name, max(CASE WHEN partition_key <> 'snapshot' THEN partition_key END),
                   to_char(max(loaded_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
            FROM \(table) GROUP BY 1, 2 ORDER BY 1, 2
            """)
        return rows.map { ($0[0] ?? "", $0[1] ?? "", $0[2], $0[3]) }
    }

    /// The day partitions of (table, channel) that have been loaded: what catch-up does not plan again.
    public func loadedDays(table tableName: String, channel: String, _ pg: PostgresConnection) throws -> Set<Day> {
        let rows = try pg.query("SELECT DISTINCT partition_key FROM \(table) WHERE table_name = $1 AND channel_name = $2",
                                [tableName, channel])
        return Set(rows.compactMap { $0[0].flatMap(Day.init) })
    }
}

extension WarehouseSchema {
    /// The whole DDL of a target: the tables, the load ledger, the views.
    public static func fleetDDL(_ flavor: Flavor, schema: String) -> String {
        ddl(flavor, schema: schema, extra: Ledger.ddl(flavor, schema: schema))
    }
}
