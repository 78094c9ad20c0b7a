import Foundation
package import HuskimoConnectors
package import HuskimoCore

/// Everything that differs between the warehouses, in one value chosen once per target (`TargetConfig.type`): DDL
/// types and clauses, session settings, the statement that serialises loads, the copy strategy, and how a failed
/// COPY is explained. The loader's transaction script, the ledger and the schema are the same for both.
package protocol WarehouseDialect: Sendable {
    var flavor: WarehouseSchema.Flavor { get }
    /// The port when the configuration gives none.
    var defaultPort: Int { get }

    // MARK: DDL

    /// A schema column type as this warehouse spells it.
    func columnType(_ type: String) -> String
    /// What closes a data table's `CREATE TABLE (…` and follows it (its index or its distribution and sort keys).
    func dataTableEnd(_ table: WarehouseSchema.Table, schema: String) -> String
    /// A point in time, for the ledger (`timestamptz` where the warehouse has it), and its `DEFAULT` of now.
    var instantType: String { get }
    var nowDefault: String { get }
    /// What closes one of Huskimo's own small tables, and the index (if any) on its partition columns.
    func bookkeepingTableEnd(sortKey: [String]) -> String
    func bookkeepingIndex(_ table: String, columns: [String], schema: String) -> String
    /// Brings a table created by an earlier version in line where a column lost its NOT NULL
    /// (``WarehouseSchema/relaxedColumns``); empty where the warehouse cannot (Redshift: `sql/MIGRATION.md`).
    func dropNotNull(_ table: String, columns: [String], schema: String) -> String

    // MARK: Loading

    /// Session settings every connection gets (bounds on statements and lock waits).
    func session(_ target: TargetConfig) -> [PostgresSettings.Timeout]
    /// Serialises loads of the same partitions across loaders, inside the load's transaction.
    func lock(
        _ table: WarehouseSchema.Table, partitions: [(channel: String, partition: String)], schema: String, _ pg: PostgresConnection)
        throws
    /// How staged objects get into a table.
    func copyStrategy(target: TargetConfig, s3: S3Client, s3Config: S3Config) -> any CopyStrategy
    /// A failed load in words an operator can act on (Redshift: the newest `stl_load_errors` row), read after the
    /// rollback on `pg`.
    func explain(_ error: LoadError, _ pg: PostgresConnection?) -> LoadError
    /// What to fix when `check`'s COPY probe failed.
    func copyFix(target: TargetConfig, s3Config: S3Config) -> String
}

/// Loads staged objects into a table inside the caller's transaction.
package protocol CopyStrategy: Sendable {
    /// - Returns: the rows the warehouse says it loaded (the caller compares them with the load messages').
    func copy(
        _ objects: [(loadID: String, object: StagedObject)], into table: WarehouseSchema.Table, _ pg: PostgresConnection
    ) throws
        -> Int
}

extension WarehouseSchema.Flavor {
    /// The dialect of a flavor: the one place that tells the warehouses apart.
    package var dialect: any WarehouseDialect {
        switch self {
        case .postgres: return PostgresDialect()
        case .redshift: return RedshiftDialect()
        }
    }
}

extension WarehouseDialect {
    /// The whole DDL of a target (idempotent: `IF NOT EXISTS` everywhere) for `schema`: the tables, the load ledger,
    /// the views.
    package func ddl(schema: String) -> String {
        let s = sqlIdentifier(schema)
        var out = "-- Huskimo warehouse DDL (\(flavor.rawValue)), schema \(schema). Idempotent: safe to apply again.\n"
        out += "CREATE SCHEMA IF NOT EXISTS \(s);\n\n"
        for table in WarehouseSchema.tables {
            out += "CREATE TABLE IF NOT EXISTS \(s).\(table.name) (\n"
            out += table.columns.map { column in
                "    \(WarehouseSchema.quote(column.name).padding(toLength: 24, withPad: " ", startingAt: 0)) \(columnType(column.type))\(column.notNull ? " NOT NULL" : "")"
            }.joined(separator: ",\n")
            out += dataTableEnd(table, schema: s)
        }
        for (table, columns) in WarehouseSchema.relaxedColumns {
            out += dropNotNull(table, columns: columns, schema: s)
        }
        out += Ledger.ddl(self, schema: schema)
        for table in WarehouseSchema.tables where table.appendOnly {
            out += """

                -- The latest retrieval of each (channel, reporting day): Singular restates spend for weeks and every run
                -- appends a snapshot; most queries want only the newest one.
                CREATE OR REPLACE VIEW \(s).\(table.name)_latest AS
                SELECT \(table.columnList)
                FROM (SELECT *, rank() OVER (PARTITION BY channel_name, reporting_date ORDER BY when_retrieved DESC) AS retrieval_rank
                      FROM \(s).\(table.name)) snapshots
                WHERE retrieval_rank = 1;

                """
        }
        return out
    }
}
