import Foundation
import HuskimoConnectors
import HuskimoCore

/// Redshift COPY statements and manifests (`docs/copy-formats.md` §4.2, §5).
enum RedshiftCopy {
    package enum Auth: Sendable {
        case iamRole(String)
        case keys(String, Secret)
    }

    package static func manifest(bucket: String, keys: [String]) -> String {
        let entries = keys.map { "{\"url\":\"s3://\(bucket)/\(jsonEscape($0))\",\"mandatory\":true}" }
        return "{\"entries\":[\(entries.joined(separator: ","))]}"
    }

    /// The COPY that loads the staged format byte-exact: TAB-delimited text with backslash escapes, `\N`
    /// NULLs (the default: no NULL AS), gzip, UTC timestamps; nothing that rewrites values (no EMPTYASNULL,
    /// BLANKSASNULL, TRIMBLANKS, ACCEPTINVCHARS, TRUNCATECOLUMNS), MAXERROR 0.
    package static func statement(
        schema: String, table: WarehouseSchema.Table, bucket: String, manifestKey: String, region: String,
        auth: Auth
    ) -> String {
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
