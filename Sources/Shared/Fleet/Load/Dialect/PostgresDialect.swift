import Foundation
import HuskimoConnectors
import HuskimoCore

/// PostgreSQL: partition indexes, `timestamptz`, advisory locks per partition, and the staged objects streamed from
/// S3 through gunzip into `COPY FROM STDIN`, each object checked on the way.
struct PostgresDialect: WarehouseDialect {
    package init() {}

    package var flavor: WarehouseSchema.Flavor { .postgres }
    package var defaultPort: Int { 5432 }

    package func columnType(_ type: String) -> String { type }

    package func dataTableEnd(_ table: WarehouseSchema.Table, schema s: String) -> String {
        let keys =
            table.partitionColumn.map { ["channel_name", $0] }
            ?? (table.appendOnly ? ["channel_name", "reporting_date"] : ["channel_name"])
        return "\n);\nCREATE INDEX IF NOT EXISTS \(table.name)_partition ON \(s).\(table.name) (\(keys.joined(separator: ", ")));\n\n"
    }

    /// A no-op where the column is already nullable: safe to apply again.
    package func dropNotNull(_ table: String, columns: [String], schema s: String) -> String {
        "ALTER TABLE \(s).\(table) " + columns.map { "ALTER COLUMN \(WarehouseSchema.quote($0)) DROP NOT NULL" }.joined(separator: ", ")
            + ";\n\n"
    }

    package var instantType: String { "timestamptz" }
    package var nowDefault: String { " DEFAULT now()" }
    package func bookkeepingTableEnd(sortKey: [String]) -> String { "" }
    package func bookkeepingIndex(_ table: String, columns: [String], schema s: String) -> String {
        "CREATE INDEX IF NOT EXISTS \(table)_partition ON \(s).\(table) (\(columns.joined(separator: ", ")));\n"
    }

    package func session(_ target: TargetConfig) -> [PostgresSettings.Timeout] {
        [
            .init("statement_timeout", milliseconds: target.statementTimeoutSeconds * 1000),
            .init("lock_timeout", milliseconds: target.lockTimeoutSeconds * 1000),
        ]
    }

    /// A transaction-scoped advisory lock per partition, in key order (no deadlock between two batches).
    package func lock(
        _ table: WarehouseSchema.Table, partitions: [(channel: String, partition: String)], schema: String,
        _ pg: PostgresConnection
    ) throws {
        let keys = Set(
            partitions.map { PostgresDialect.lockKey(schema: schema, table: table.name, channel: $0.channel, partition: $0.partition) })
        for key in keys.sorted() { try pg.query("SELECT pg_advisory_xact_lock($1::bigint)", [String(key)]) }
    }

    /// A partition's advisory-lock key: FNV-1a (64 bits) of schema, table, channel and partition.
    static func lockKey(schema: String, table: String, channel: String, partition: String) -> Int64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in [schema, table, channel, partition].joined(separator: "\u{0}").utf8 {
            h = (h ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return Int64(bitPattern: h)
    }

    package func copyStrategy(target: TargetConfig, s3: S3Client, s3Config: S3Config) -> any CopyStrategy {
        StreamedCopy(schema: target.schema, s3: s3)
    }

    package func explain(_ error: LoadError, _ pg: PostgresConnection?) -> LoadError { error }

    package func copyFix(target: TargetConfig, s3Config: S3Config) -> String {
        "the loader's user needs INSERT on \(target.schema).twilio_calls, and S3 GET on the staged objects"
    }
}

/// PostgreSQL's copy: the objects of a table's batch, one after another through gunzip into one `COPY FROM STDIN`
/// (one statement per table and batch: no round trip and no idle server between objects), the next object fetched
/// while the one before streams in. Each object is checked on the way as if it were loaded alone: its SHA-256, its
/// row count (its newlines: the TSV escapes every newline inside a value) and that it ends with a whole row, so a bad
/// object fails named, before the COPY commits anything.
struct StreamedCopy: CopyStrategy {
    let schema: String
    let s3: S3Client

    func copy(
        _ objects: [(loadID: String, object: StagedObject)], into table: WarehouseSchema.Table, _ pg: PostgresConnection
    ) throws
        -> Int
    {
        let fetcher = StagedObjectFetcher(s3: s3, objects: objects.map(\.object))
        fetcher.prefetch(0)
        return try pg.copyIn(
            "COPY \(sqlIdentifier(schema)).\(table.name) (\(table.columnList)) FROM STDIN WITH (FORMAT text, DELIMITER E'\\t', NULL '\\N', ENCODING 'UTF8')"
        ) { write in
            try withoutActuallyEscaping(write) { write in
                for (index, (loadID, object)) in objects.enumerated() {
                    try copy(object, index: index, from: fetcher, loadID: loadID, write)
                }
            }
        }
    }

    private func copy(
        _ object: StagedObject, index: Int, from fetcher: StagedObjectFetcher, loadID: String,
        _ write: @escaping (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        let sha = Digest(.sha256)
        let rows = RowCounter()
        do {
            let gunzip = try GzipReader { chunk in
                rows.count(chunk)
                try write(chunk)
            }
            try fetcher.read(index) { chunk in
                sha.update(chunk)
                try gunzip.write(chunk)
            }
            try gunzip.finish()
        } catch let error as GzipError {
            // Corrupt bytes fail the same way every time (permanent: the loader parks this load); name the object.
            throw LoadError(
                loadID: loadID, errorClass: error.errorClass,
                message: "\(object.key): the staged object is not valid gzip (\(error.reason))")
        }
        let digest = sha.finalize().hexString
        guard digest == object.sha256 else {
            throw LoadError(loadID: loadID, errorClass: .permanent, message: "\(object.key): SHA-256 \(digest) ≠ \(object.sha256)")
        }
        guard rows.rows == object.rows, rows.endsWithRow else {
            throw LoadError(
                loadID: loadID, errorClass: .permanent,
                message:
                    "\(object.key): \(rows.rows) rows\(rows.endsWithRow ? "" : " and a partial one"), the load message says \(object.rows)")
        }
    }
}
