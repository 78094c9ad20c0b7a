import HuskimoConnectors
import HuskimoCore

/// What one reload of a partition changed: rows before and after, and for tables with a `sid`, how many records
/// changed in a column that can change (``Resource/changeColumns``), appeared or disappeared. Identical: the re-read
/// had the digest of what was loaded, and the load was skipped.
package struct ChangeReport: Sendable, Hashable {
    package var loadID: String
    package var table: String
    package var channel: String
    package var partition: String
    package var extractedAt: String
    package var identical: Bool
    package var rowsBefore: Int
    var rowsAfter: Int
    package var changed: Int?
    package var added: Int?
    package var removed: Int?
    package var contentDigest: String?
    package var runID: String?

    /// The log line's fields.
    package var metadata: [String: String] {
        var m = ["table": table, "channel": channel, "partition": partition, "rows.before": "\(rowsBefore)", "rows.after": "\(rowsAfter)"]
        if let changed { m["records.changed"] = "\(changed)" }
        if let added { m["records.added"] = "\(added)" }
        if let removed { m["records.removed"] = "\(removed)" }
        return m
    }
}

/// The rows of the partitions a transaction replaces, as they were before: kept in a temporary table (one per
/// table's transaction, dropped before the commit) and compared with what the COPY loaded. SQL that PostgreSQL and
/// Redshift share (no `IS DISTINCT FROM`, no `ON COMMIT DROP`).
struct BeforeImage {
    let table: WarehouseSchema.Table
    let schema: String
    private var created = false
    private static let name = "huskimo_before"

    init(table: WarehouseSchema.Table, schema: String) {
        self.table = table
        self.schema = schema
    }

    private var qualified: String { "\(sqlIdentifier(schema)).\(table.name)" }
    private var compared: [String] { table.resource.changeColumns.map(WarehouseSchema.quote) }
    private var bySID: Bool { table.columns.contains { $0.name == "sid" } && !compared.isEmpty }
    private var columns: [String] { bySID ? ["sid"] + compared : [] }

    /// `channel_name = $n AND <day range>` for the message's partition, with parameters from `$first`.
    static func partition(
        _ table: WarehouseSchema.Table, _ message: LoadMessage, alias: String = "", first: Int
    ) throws
        -> (sql: String, parameters: [String])
    {
        let a = alias.isEmpty ? "" : alias + "."
        guard let column = table.partitionColumn else { return ("\(a)channel_name = $\(first)", [message.channel]) }
        guard let day = Day(message.partition) else {
            throw LoadError(loadID: message.loadID, errorClass: .permanent, message: "partition \(message.partition) is not a day")
        }
        let range =
            "\(a)channel_name = $\(first) AND \(a)\(column) >= $\(first + 1)::timestamp AND \(a)\(column) < $\(first + 2)::timestamp"
        let parameters = [message.channel, "\(day) 00:00:00", "\(day.adding(days: 1)) 00:00:00"]
        // One account's share of the partition: its rows only (the other accounts' shares are loaded on their own).
        guard let account = message.account else { return (range, parameters) }
        return (range + " AND \(a)account_sid = $\(first + 3)", parameters + [account])
    }

    /// Keeps the partition's current rows (call before deleting them).
    mutating func capture(_ message: LoadMessage, _ pg: PostgresConnection) throws {
        if !created {
            let list = (["CAST('' AS varchar(1100)) AS huskimo_load_id"] + columns).joined(separator: ", ")
            try pg.execute("CREATE TEMP TABLE \(Self.name) AS SELECT \(list) FROM \(qualified) WHERE 1 = 0")
            created = true
        }
        let (predicate, parameters) = try Self.partition(table, message, first: 2)
        try pg.query(
            "INSERT INTO \(Self.name) SELECT \((["$1"] + columns).joined(separator: ", ")) FROM \(qualified) WHERE \(predicate)",
            [message.loadID] + parameters)
    }

    /// Compares the partition as loaded now (`rowsAfter` rows, the COPY's verified count) with what was captured
    /// for `message`.
    func report(_ message: LoadMessage, rowsAfter: Int, _ pg: PostgresConnection) throws -> ChangeReport {
        let before = try Self.count(pg.query("SELECT count(*) FROM \(Self.name) WHERE huskimo_load_id = $1", [message.loadID]))
        var report = ChangeReport(
            loadID: message.loadID, table: table.name, channel: message.ledgerChannel, partition: message.partition,
            extractedAt: message.extractedAt, identical: false, rowsBefore: before, rowsAfter: rowsAfter,
            contentDigest: message.contentDigest, runID: message.runID)
        guard bySID else { return report }
        guard before > 0 else {
            (report.changed, report.added, report.removed) = (0, rowsAfter, 0)
            return report
        }
        let same = compared.map { "(n.\($0) = o.\($0) OR (n.\($0) IS NULL AND o.\($0) IS NULL))" }.joined(separator: " AND ")
        let (joined, parameters) = try Self.partition(table, message, alias: "n", first: 2)
        let rows = try pg.query(
            """
            SELECT count(*), sum(CASE WHEN \(same) THEN 0 ELSE 1 END)
            FROM \(qualified) n JOIN \(Self.name) o ON o.sid = n.sid AND o.huskimo_load_id = $1 WHERE \(joined)
            """, [message.loadID] + parameters)
        let matched = Self.count(rows)
        report.changed = rows.first.flatMap { $0.count > 1 ? $0[1] : nil }.flatMap { Int($0) } ?? 0
        report.added = rowsAfter - matched
        report.removed = before - matched
        return report
    }

    func drop(_ pg: PostgresConnection) throws {
        if created { try pg.execute("DROP TABLE \(Self.name)") }
    }

    private static func count(_ rows: [[String?]]) -> Int { rows.first?.first.flatMap { $0 }.flatMap { Int($0) } ?? 0 }
}
