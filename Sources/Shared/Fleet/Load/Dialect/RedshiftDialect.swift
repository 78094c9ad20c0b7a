import Foundation
import HuskimoConnectors
import HuskimoCore

/// Redshift: `varchar(65535)` for text, distribution and sort keys instead of indexes, no `timestamptz` in the
/// ledger, a table lock (no advisory locks, no `lock_timeout`), one `COPY … MANIFEST` from S3 per table and batch,
/// and `stl_load_errors` read to explain a failed COPY.
struct RedshiftDialect: WarehouseDialect {
    package init() {}

    package var flavor: WarehouseSchema.Flavor { .redshift }
    package var defaultPort: Int { 5439 }

    package func columnType(_ type: String) -> String { type == "text" ? "varchar(65535)" : type }

    package func dataTableEnd(_ table: WarehouseSchema.Table, schema s: String) -> String {
        "\n)\nDISTSTYLE KEY DISTKEY (\(table.distKey)) SORTKEY (\(table.sortKey.joined(separator: ", ")));\n\n"
    }

    /// Redshift cannot drop a NOT NULL: a table from an earlier version is recreated (`sql/MIGRATION.md`, item 9).
    package func dropNotNull(_ table: String, columns: [String], schema: String) -> String {
        "-- \(schema).\(table): \(columns.joined(separator: ", ")) are nullable now; a table created by Huskimo 0.4.0 or 0.3 keeps NOT NULL there until recreated (sql/MIGRATION.md, item 9).\n\n"
    }

    package var instantType: String { "timestamp" }
    package var nowDefault: String { " DEFAULT getdate()" }
    package func bookkeepingTableEnd(sortKey: [String]) -> String { "\nDISTSTYLE ALL SORTKEY (\(sortKey.joined(separator: ", ")))" }
    package func bookkeepingIndex(_ table: String, columns: [String], schema: String) -> String { "" }

    package func session(_ target: TargetConfig) -> [PostgresSettings.Timeout] {
        [.init("statement_timeout", milliseconds: target.statementTimeoutSeconds * 1000)]
    }

    /// No advisory locks: Huskimo's own `load_lock` table, until the transaction ends. Redshift's LOCK is always ACCESS
    /// EXCLUSIVE: on the data table it would make every reader wait for the whole load; on `load_lock` only another
    /// loader of the schema waits.
    package func lock(
        _ table: WarehouseSchema.Table, partitions: [(channel: String, partition: String)], schema: String,
        _ pg: PostgresConnection
    ) throws {
        try pg.execute("LOCK \(sqlIdentifier(schema)).load_lock")
    }

    package func copyStrategy(target: TargetConfig, s3: S3Client, s3Config: S3Config) -> any CopyStrategy {
        ManifestCopy(
            target: target.name, schema: target.schema, s3: s3, s3Config: s3Config,
            auth: target.iamRole.map(RedshiftCopy.Auth.iamRole) ?? .keys(s3Config.accessKeyID, s3Config.secretAccessKey))
    }

    /// A failed Redshift COPY says only "check stl_load_errors": read its newest row (after the rollback) and name
    /// the file, line, column and reason in the error an operator sees. Not the raw value: it may be personal data.
    package func explain(_ error: LoadError, _ pg: PostgresConnection?) -> LoadError {
        guard error.message.contains("stl_load_errors"), let pg,
            let row = try? pg.query(
                """
                SELECT trim(filename), line_number::text, trim(colname), err_code::text, trim(err_reason)
                FROM stl_load_errors ORDER BY starttime DESC LIMIT 1
                """
            ).first, row.count == 5
        else { return error }
        let detail = "\(row[0] ?? "?") line \(row[1] ?? "?"), column \(row[2] ?? "?"): error \(row[3] ?? "?") \(row[4] ?? "")"
        return LoadError(
            loadID: error.loadID, errorClass: error.errorClass, message: "\(error.message) — stl_load_errors: \(detail)",
            sqlState: error.sqlState)
    }

    package func copyFix(target: TargetConfig, s3Config: S3Config) -> String {
        let role = target.iamRole.map {
            "the IAM role \($0) must be associated with the cluster and may read s3://\(s3Config.bucket)/\(s3Config.folderPath)*"
        }
        return (role ?? "the S3 keys must allow the cluster to read s3://\(s3Config.bucket)/\(s3Config.folderPath)*")
            + "; a table the COPY names must exist (ddl --apply)"
    }
}

/// Redshift's copy: a manifest of all the batch's objects put next to them, one `COPY … MANIFEST` (the cluster loads
/// the files in parallel), `pg_last_copy_count()`, the manifest deleted.
struct ManifestCopy: CopyStrategy {
    let target: String
    let schema: String
    let s3: S3Client
    let s3Config: S3Config
    let auth: RedshiftCopy.Auth

    func copy(
        _ objects: [(loadID: String, object: StagedObject)], into table: WarehouseSchema.Table, _ pg: PostgresConnection
    ) throws
        -> Int
    {
        guard let loadID = objects.first?.loadID else { return 0 }
        let manifestKey = StagingLayout(folder: s3Config.folderPath).manifestKey(loadID: loadID, target: target)
        try s3.put(
            manifestKey, Array(RedshiftCopy.manifest(bucket: s3Config.bucket, keys: objects.map(\.object.key)).utf8),
            contentType: "application/json")
        defer { _ = try? s3.delete([manifestKey]) }
        do {
            try pg.execute(
                RedshiftCopy.statement(
                    schema: schema, table: table, bucket: s3Config.bucket, manifestKey: manifestKey,
                    region: s3Config.region, auth: auth))
        } catch let error as PQError {
            // The statement may carry the S3 secret (key-pair auth): scrub it from anything that gets printed.
            throw LoadError(
                loadID: loadID, errorClass: error.errorClass, message: error.description.redacting([s3Config.secretAccessKey]),
                sqlState: error.sqlState)
        }
        let count = try pg.query("SELECT pg_last_copy_count()")
        return Int(count[0][0] ?? "0") ?? 0
    }
}
