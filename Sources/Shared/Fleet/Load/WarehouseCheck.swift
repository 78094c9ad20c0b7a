import Foundation
import HuskimoConnectors
import HuskimoCore

/// What `huskimo-planner check` asks of a target: that its tables match the DDL (names, types, lengths, order),
/// and that the production COPY — the loader's own statement, credentials and staged format — loads every hard
/// character class back byte for byte. Blocking.
struct WarehouseCheck {
    /// One finding: a verdict and, when it failed, what to do.
    package struct Finding: Sendable, Codable, Hashable {
        package var check: String
        package var ok: Bool
        /// A difference that does not stop loads (column order): reported, not failed.
        package var warning: Bool = false
        package var detail: String
        package var fix: String?
    }

    let target: TargetConfig
    let dialect: any WarehouseDialect
    /// The loader's own copy strategy: what the probe proves is what the nightly loads run.
    let copier: any CopyStrategy
    let pg: PostgresConnection

    /// - Parameter pg: a connection to the target (made as the loader makes it: `target.postgresSettings`).
    package init(target: TargetConfig, pg: PostgresConnection, s3: S3Client, s3Config: S3Config) {
        self.target = target
        self.dialect = target.type.dialect
        self.copier = dialect.copyStrategy(target: target, s3: s3, s3Config: s3Config)
        self.pg = pg
    }

    /// The tables of the fleet DDL against `information_schema.columns`.
    package func schema() throws -> [Finding] {
        let rows = try pg.query(
            """
            SELECT table_name, column_name, data_type, character_maximum_length::text, numeric_precision::text, numeric_scale::text
            FROM information_schema.columns WHERE table_schema = $1 ORDER BY table_name, ordinal_position
            """, [target.schema])
        var actual: [String: [(name: String, type: String)]] = [:]
        for row in rows {
            guard let table = row[0], let column = row[1] else { continue }
            actual[table, default: []].append((column, Self.declared(row[2] ?? "", length: row[3], precision: row[4], scale: row[5])))
        }
        var findings: [Finding] = []
        let fix = "run huskimo-planner ddl --config … --target \(target.name) --apply, or ALTER the table (sql/MIGRATION.md)"
        for table in WarehouseSchema.tables {
            let name = table.name
            guard let columns = actual[name] else {
                findings.append(Finding(check: "table \(name)", ok: false, detail: "missing in schema \(target.schema)", fix: fix))
                continue
            }
            var problems: [String] = []
            for column in table.columns {
                guard let found = columns.first(where: { $0.name == column.name }) else {
                    problems.append("lacks column \(column.name) (\(column.type))")
                    continue
                }
                if let problem = Self.compare(expected: Self.normalised(column.type, dialect: dialect), actual: found.type) {
                    problems.append("\(column.name) is \(found.type), expected \(column.type): \(problem)")
                }
            }
            if problems.isEmpty {
                let order = columns.map(\.name).filter { name in table.columns.contains { $0.name == name } }
                let inOrder = order == table.columns.map(\.name)
                findings.append(
                    Finding(
                        check: "table \(name)", ok: true, warning: !inOrder,
                        detail: inOrder
                            ? "\(table.columns.count) columns as in the DDL"
                            : "columns in another order than the DDL (loads name their columns; `SELECT *` readers see the difference)"))
            } else {
                findings.append(Finding(check: "table \(name)", ok: false, detail: problems.joined(separator: "; "), fix: fix))
            }
        }
        for ledger in ["load_ledger", "load_reports", "load_lock"] where actual[ledger] == nil {
            findings.append(Finding(check: "table \(ledger)", ok: false, detail: "missing in schema \(target.schema)", fix: fix))
        }
        return findings
    }

    /// The hard character classes a value can hold: TAB, LF, CR, CRLF, backslashes, quotes, emoji, CJK, RTL, the
    /// empty string against NULL, the two characters `\N`.
    static let hardTexts: [String?] = [
        "tab\there", "line\nbreak", "carriage\rreturn", "crlf\r\nend", "back\\slash", "\"quoted\" and 'single'",
        "emoji 😀👍🏽 👩‍👩‍👧", "中文字符 日本語 한국어", "مرحبا بالعالم עברית", "", nil, "\\N", "trailing backslash \\",
        "mixed\t\"\\\n😀", "   ",
    ]

    /// Stages a probe of calls rows whose `caller_name` holds every hard text, COPYs it into `twilio_calls` inside a
    /// transaction with the loader's production statement, reads it back and rolls back: the table is left as it
    /// was. The staged object is deleted afterwards.
    func copyProbe(s3: S3Client, folder: String) throws -> Finding {
        let channel = "huskimo-check-\(UInt32.random(in: 0...UInt32.max))"
        var records: [[String: Any]] = []
        for (i, text) in Self.hardTexts.enumerated() {
            records.append([
                "sid": String(format: "CAcheck%027d", i), "account_sid": "AC" + String(repeating: "0", count: 32),
                "start_time": "Fri, 20 Nov 2026 04:30:\(String(format: "%02d", i)) +0000", "caller_name": text ?? NSNull(),
            ])
        }
        let page = try JSONSerialization.data(withJSONObject: ["calls": records, "next_page_uri": NSNull()])
        let converter = TwilioPageConverter(table: .calls, channelName: channel, whenRetrieved: UTCTime.sql(Date()), day: nil)
        var tsv = TSVWriter(capacity: 1 << 14)
        _ = try Array(page).withUnsafeBytes { try converter.convert(page: $0, into: &tsv) }
        let layout = StagingLayout(folder: folder)
        let staging = StagingWriter(client: s3, layout: layout, keyPrefix: "\(layout.folder)/check/\(channel)")
        try staging.write(&tsv)
        let objects = try staging.finish()
        defer { _ = try? s3.delete(objects.map(\.key)) }
        let read = try probe(objects, table: "twilio_calls", channel: channel, column: "caller_name")
        let expected = Self.hardTexts
        let wrong = zip(expected, read).enumerated().filter { $0.element.0 != $0.element.1 }
        if read.count == expected.count && wrong.isEmpty {
            return Finding(
                check: "copy", ok: true,
                detail:
                    "\(expected.count) hard values (TAB, CR/LF, backslashes, \\N, emoji, CJK, RTL, empty vs NULL) loaded back byte for byte"
            )
        }
        let first = wrong.first.map {
            "value \($0.offset): expected \(String(reflecting: $0.element.0)), read \(String(reflecting: $0.element.1))"
        }
        return Finding(
            check: "copy", ok: false, detail: "read back \(read.count) of \(expected.count) values; \(first ?? "")",
            fix: "the target does not load the staged format as it should: report this with the target's version")
    }

    /// The type as `information_schema` shows it, in the DDL's words (`varchar(34)`, `decimal(12,5)`, `timestamp`).
    static func declared(_ dataType: String, length: String?, precision: String?, scale: String?) -> String {
        switch dataType {
        case "character varying": return "varchar(\(length ?? "?"))"
        case "character": return "char(\(length ?? "?"))"
        case "numeric": return "decimal(\(precision ?? "?"),\(scale ?? "?"))"
        case "timestamp without time zone": return "timestamp"
        case "timestamp with time zone": return "timestamptz"
        default: return dataType
        }
    }

    /// The DDL's type in that form, as the dialect spells it (Redshift: `text` is `varchar(65535)`).
    static func normalised(_ type: String, dialect: any WarehouseDialect) -> String {
        dialect.columnType(type).replacingOccurrences(of: " ", with: "")
    }

    /// Why `actual` cannot hold what `expected` holds (nil: it can). Longer strings and wider decimals are fine.
    static func compare(expected: String, actual: String) -> String? {
        if expected == actual { return nil }
        func parts(_ t: String) -> (String, [Int])? {
            guard let open = t.firstIndex(of: "("), t.hasSuffix(")") else { return nil }
            return (String(t[..<open]), t[t.index(after: open)..<t.index(before: t.endIndex)].split(separator: ",").compactMap { Int($0) })
        }
        guard let (e, en) = parts(expected), let (a, an) = parts(actual), e == a, en.count == an.count else { return "another type" }
        if e == "varchar" || e == "char" {
            return an[0] >= en[0] ? nil : "values up to \(en[0]) bytes would not fit"
        }
        // decimal(p,s): the same scale, at least as many integer digits.
        return an.count == 2 && an[1] == en[1] && an[0] - an[1] >= en[0] - en[1] ? nil : "narrower than the DDL's"
    }
}

extension WarehouseCheck {
    /// `check`'s COPY probe: loads `objects` into `tableName` with the production copy inside a transaction, reads
    /// `column` of the rows of `channel` (ordered by sid) and rolls back.
    func probe(_ objects: [StagedObject], table tableName: String, channel: String, column: String) throws -> [String?] {
        guard let table = WarehouseSchema.table(tableName) else { return [] }
        try pg.execute("BEGIN")
        do {
            _ = try copier.copy(objects.map { (loadID: "check", object: $0) }, into: table, pg)
        } catch let error as LoadError {
            try? pg.execute("ROLLBACK")
            throw dialect.explain(error, pg)
        }
        defer { if pg.isHealthy { try? pg.execute("ROLLBACK") } }
        return try pg.query(
            "SELECT \(WarehouseSchema.quote(column)) FROM \(sqlIdentifier(target.schema)).\(table.name) WHERE channel_name = $1 ORDER BY sid",
            [channel]
        ).map { $0[0] }
    }
}
