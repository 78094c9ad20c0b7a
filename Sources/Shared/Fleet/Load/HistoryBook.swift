import HuskimoConnectors
import HuskimoCore

/// The days of history a backfill asked for (`<schema>.history_days`, one row per channel, resource and day) and the
/// UTC day each was last planned: what paces a bulk API's quota across runs and what `status` counts as left. Kept
/// in every target; planning reads them all and writes them all.
struct HistoryBook: Sendable {
    let schema: String

    private var table: String { "\(sqlIdentifier(schema)).history_days" }

    static func ddl(_ dialect: any WarehouseDialect, schema: String) -> String {
        let s = sqlIdentifier(schema)
        return """

            -- Days of history asked for by huskimo-planner backfill (Twilio's Bulk Export), and the UTC day each was last
            -- planned: the export-day quota is paced from it, and status counts the days not loaded yet.
            CREATE TABLE IF NOT EXISTS \(s).history_days (
                channel_name             varchar(512) NOT NULL,
                resource                 varchar(64) NOT NULL,
                day_key                  varchar(10) NOT NULL,
                quota_key                varchar(128) NOT NULL,
                requested_at             \(dialect.instantType) NOT NULL\(dialect.nowDefault),
                planned_on               varchar(10),
                PRIMARY KEY (channel_name, resource, day_key)
            )\(dialect.bookkeepingTableEnd(sortKey: ["channel_name", "resource", "day_key"]));

            """
    }

    struct Row: Sendable, Hashable {
        var channel: String
        var resource: String
        var day: Day
        var quotaKey: String
        var plannedOn: Day?

        /// The extract job that reads this day (nil: a resource no connector declares any more).
        func job(runID: String, plannedAt: String) -> ExtractJob? {
            Resource(rawValue: resource).map { ExtractJob(runID: runID, channel: channel, resource: $0, day: day, plannedAt: plannedAt) }
        }
    }

    /// Every day asked for.
    func rows(_ pg: PostgresConnection) throws -> [Row] {
        try pg.query("SELECT channel_name, resource, day_key, quota_key, planned_on FROM \(table)").compactMap { r in
            guard let channel = r[0], let resource = r[1], let day = r[2].flatMap(Day.init), let key = r[3] else { return nil }
            return Row(channel: channel, resource: resource, day: day, quotaKey: key, plannedOn: r[4].flatMap(Day.init))
        }
    }

    /// Adds the days not asked for before (one transaction).
    func request(_ rows: [Row], _ pg: PostgresConnection) throws {
        let known = Set(try self.rows(pg).map { "\($0.channel)|\($0.resource)|\($0.day)" })
        try pg.transaction {
            for row in rows where !known.contains("\(row.channel)|\(row.resource)|\(row.day)") {
                _ = try pg.query(
                    "INSERT INTO \(table) (channel_name, resource, day_key, quota_key) VALUES ($1, $2, $3, $4)",
                    [row.channel, row.resource, row.day.description, row.quotaKey])
            }
        }
    }

    /// Marks days planned on `day` (one transaction).
    func markPlanned(_ rows: [Row], on day: Day, _ pg: PostgresConnection) throws {
        try pg.transaction {
            for row in rows {
                _ = try pg.query(
                    "UPDATE \(table) SET planned_on = $1 WHERE channel_name = $2 AND resource = $3 AND day_key = $4",
                    [day.description, row.channel, row.resource, row.day.description])
            }
        }
    }
}
