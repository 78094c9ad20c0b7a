import HuskimoConnectors
import HuskimoCore

/// Checks each (channel, day) a batch touched against what the API billed that day (``ReconciliationRule``: Twilio's
/// completed calls against the `calls` usage category, billed messages against `sms` + `mms`) once both its rows and
/// its usage are loaded, and keeps the verdict in `<schema>.reconciliation`: `reconciled`; `settling` (a day inside the
/// settle window, read again every night anyway); `rereading` (it disagreed: its rows are read again once, on their
/// own); `unreconciled` (it still disagrees after that: `status`, `huskimo_unreconciled_days` and an alert say so).
struct Reconciler: Sendable {
    let schema: String

    private var table: String { "\(sqlIdentifier(schema)).reconciliation" }

    static func ddl(_ dialect: any WarehouseDialect, schema: String) -> String {
        """

        -- Per channel, day and kind (calls, messages): the rows loaded that Twilio bills beside the day's billed count
        -- in twilio_usage_records, and the verdict (reconciled, settling, rereading, unreconciled).
        CREATE TABLE IF NOT EXISTS \(sqlIdentifier(schema)).reconciliation (
            channel_name             varchar(512) NOT NULL,
            day_key                  varchar(10) NOT NULL,
            kind                     varchar(32) NOT NULL,
            rows_billable            bigint NOT NULL,
            billed                   bigint NOT NULL,
            state                    varchar(16) NOT NULL,
            rereads                  integer NOT NULL,
            checked_at               \(dialect.instantType) NOT NULL\(dialect.nowDefault),
            PRIMARY KEY (channel_name, day_key, kind)
        )\(dialect.bookkeepingTableEnd(sortKey: ["channel_name", "day_key", "kind"]));

        """
    }

    enum State: String, Sendable, Codable { case reconciled, settling, rereading, unreconciled }

    /// One verdict.
    struct Check: Sendable, Codable, Hashable {
        var channel: String
        var day: String
        var kind: String
        var rows: Int
        var billed: Int
        var state: State
        var rereads: Int
    }

    /// What a batch's checks decided: every verdict, and the jobs to read again.
    struct Outcome: Sendable {
        var checks: [Check] = []
        var rereads: [(resource: Resource, channel: String, day: Day, account: String?)] = []
    }

    /// Checks every (rule, channel or one account's share, day) whose rows or usage `loads` applied. Blocking.
    /// - Parameter settledBefore: days from this one on are still settling (no re-read, no alarm).
    func check(_ loads: [LoadMessage], settledBefore: Day, _ pg: PostgresConnection) throws -> Outcome {
        var seen: Set<String> = []
        var outcome = Outcome()
        for load in loads {
            guard let day = Day(load.partition) else { continue }
            for rule in ConnectorRegistry.reconciliationRules where [rule.rows.table, rule.usage.table].contains(load.table) {
                guard seen.insert("\(rule.kind)\u{0}\(load.ledgerChannel)\u{0}\(day)").inserted else { continue }
                guard let check = try check(rule, load, day: day, settledBefore: settledBefore, pg) else { continue }
                outcome.checks.append(check)
                if check.state == .rereading, check.rereads == 1 {
                    outcome.rereads.append((rule.rows, load.channel, day, load.account))
                }
            }
        }
        return outcome
    }

    /// One (rule, channel or account share, day): nil until both its rows and its usage are in the ledger (an account's
    /// share against that account's usage; a whole channel against all of its usage).
    private func check(
        _ rule: ReconciliationRule, _ load: LoadMessage, day: Day, settledBefore: Day, _ pg: PostgresConnection
    ) throws
        -> Check?
    {
        let s = sqlIdentifier(schema)
        let key = load.ledgerChannel
        let loaded = try pg.query(
            "SELECT count(DISTINCT table_name) FROM \(s).load_ledger WHERE channel_name = $1 AND partition_key = $2 AND table_name IN ($3, $4)",
            [key, day.description, rule.rows.table, rule.usage.table])
        guard Self.integer(loaded) == 2, let column = rule.rows.partitionColumn, let usageColumn = rule.usage.partitionColumn else {
            return nil
        }
        var parameters = [load.channel, "\(day) 00:00:00", "\(day.adding(days: 1)) 00:00:00"]
        var account = ""
        if let sid = load.account {
            parameters.append(sid)
            account = " AND account_sid = $4"
        }
        let statuses = rule.billedStatuses.map(sqlLiteral).joined(separator: ", ")
        let categories = rule.categories.map(sqlLiteral).joined(separator: ", ")
        let rows = try pg.query(
            "SELECT count(*) FROM \(s).\(rule.rows.table) WHERE channel_name = $1 AND \(column) >= $2::timestamp AND \(column) < $3::timestamp AND status IN (\(statuses))\(account)",
            parameters)
        let billed = try pg.query(
            "SELECT coalesce(sum(\"count\"), 0) FROM \(s).\(rule.usage.table) WHERE channel_name = $1 AND \(usageColumn) >= $2::timestamp AND \(usageColumn) < $3::timestamp AND category IN (\(categories))\(account)",
            parameters)
        let counted = Self.integer(rows)
        let billedCount = Self.integer(billed)
        let before = try pg.query(
            "SELECT rereads FROM \(table) WHERE channel_name = $1 AND day_key = $2 AND kind = $3", [key, day.description, rule.kind])
        var rereads = Self.integer(before)
        let state: State
        if counted == billedCount {
            state = .reconciled
        } else if day >= settledBefore {
            state = .settling
        } else if rereads == 0 {
            state = .rereading
            rereads = 1
        } else {
            state = .unreconciled
        }
        try pg.transaction {
            _ = try pg.query(
                "DELETE FROM \(table) WHERE channel_name = $1 AND day_key = $2 AND kind = $3", [key, day.description, rule.kind])
            _ = try pg.query(
                "INSERT INTO \(table) (channel_name, day_key, kind, rows_billable, billed, state, rereads) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                [key, day.description, rule.kind, String(counted), String(billedCount), state.rawValue, String(rereads)])
        }
        return Check(
            channel: key, day: day.description, kind: rule.kind, rows: counted, billed: billedCount, state: state, rereads: rereads)
    }

    /// The days not reconciled (or being read again), newest first. Blocking.
    func open(_ pg: PostgresConnection) throws -> [Check] {
        try pg.query(
            "SELECT channel_name, day_key, kind, rows_billable, billed, state, rereads FROM \(table) WHERE state IN ('unreconciled', 'rereading') ORDER BY day_key DESC, channel_name, kind"
        ).compactMap { r in
            guard let channel = r[0], let day = r[1], let kind = r[2], let state = r[5].flatMap(State.init(rawValue:)) else { return nil }
            return Check(
                channel: channel, day: day, kind: kind, rows: Int(r[3] ?? "") ?? 0, billed: Int(r[4] ?? "") ?? 0, state: state,
                rereads: Int(r[6] ?? "") ?? 0)
        }
    }

    /// How many (channel, day, kind) are unreconciled: the gauge. Blocking.
    func unreconciled(_ pg: PostgresConnection) throws -> Int {
        Self.integer(try pg.query("SELECT count(*) FROM \(table) WHERE state = 'unreconciled'"))
    }

    /// The first column of the first row as an integer (0 when there is none).
    static func integer(_ rows: [[String?]]) -> Int { rows.first.flatMap { $0.first ?? nil }.flatMap { Int($0) } ?? 0 }
}
