import Foundation
import HuskimoTesting
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

@Suite(.serialized, .ownThreads, .timeLimit(.minutes(3)))
struct PostgresIntegrationTests {
    /// The hard text cases: tabs, CR, LF, backslashes, quotes, emoji, CJK, right-to-left text, `\N` look-alikes.
    static let hardValues: [String?] = [
        "a\tb", "line1\nline2", "cr\rhere", "crlf\r\n", "back\\slash", "\\N", "\\\\N", "x\\Ny", "\"double\" 'single'",
        "😀 emoji 👩‍👩‍👧", "漢字かなカナ", "مرحبا بالعالم", "\u{200F}rtl mark", "", " ", nil, "trailing\\",
    ]

    /// COPY text format: `\` → `\\`, TAB/LF/CR → `\t` `\n` `\r`, NULL → `\N` (the PostgreSQL form; the staged
    /// files use the raw-byte escapes that Redshift also reads, tested with the TSV writer).
    static func copyField(_ value: String?) -> String {
        guard let value else { return "\\N" }
        var out = ""
        for c in value.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\t": out += "\\t"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    @Test func oneHundredThousandRowsThroughCopyReadBackExactly() throws {
        let pg = try PostgresConnection(try TestServices.postgres())
        let table = "copy_test_\(UInt32.random(in: 0...UInt32.max))"
        try pg.execute("CREATE TABLE \(table) (id bigint NOT NULL, body text, note varchar(64))")
        defer { try? pg.execute("DROP TABLE \(table)") }
        let hard = Self.hardValues
        let rowCount = 100_000
        let loaded = try pg.copyIn("COPY \(table) (id, body, note) FROM STDIN WITH (FORMAT text)") { write in
            var buffer: [UInt8] = []
            buffer.reserveCapacity(1 << 20)
            for id in 0..<rowCount {
                let body = hard[id % hard.count]
                let line = "\(id)\t\(Self.copyField(body))\t\(Self.copyField(id % 7 == 0 ? nil : "n\(id)"))\n"
                buffer.append(contentsOf: line.utf8)
                if buffer.count > 1 << 20 {
                    try buffer.withUnsafeBytes { try write($0) }  // streamed in ~1 MiB chunks
                    buffer.removeAll(keepingCapacity: true)
                }
            }
            try buffer.withUnsafeBytes { try write($0) }
        }
        #expect(loaded == rowCount)
        let rows = try pg.query("SELECT id, body, note FROM \(table) ORDER BY id")
        #expect(rows.count == rowCount)
        var mismatches = 0
        for row in rows {
            let id = Int(row[0]!)!
            if row[1] != hard[id % hard.count] || row[2] != (id % 7 == 0 ? nil : "n\(id)") { mismatches += 1 }
        }
        #expect(mismatches == 0)
        // NULL and the empty string stay distinct.
        let counts = try pg.query("SELECT count(*) FILTER (WHERE body IS NULL), count(*) FILTER (WHERE body = '') FROM \(table)")
        let perValue = rowCount / hard.count
        #expect(Int(counts[0][0]!)! >= perValue && Int(counts[0][1]!)! >= perValue)
        // Byte-exact: octet lengths agree with Swift's UTF-8 counts.
        let emoji = try pg.query("SELECT octet_length(body) FROM \(table) WHERE id = $1", ["9"])
        #expect(Int(emoji[0][0]!) == hard[9]!.utf8.count)
    }

    @Test func parameterisedQueriesAndTransactionsRollBack() throws {
        let pg = try PostgresConnection(try TestServices.postgres())
        let table = "tx_test_\(UInt32.random(in: 0...UInt32.max))"
        try pg.execute("CREATE TABLE \(table) (k text PRIMARY KEY, v text)")
        defer { try? pg.execute("DROP TABLE \(table)") }
        try pg.query("INSERT INTO \(table) VALUES ($1, $2)", ["a'b", nil])
        #expect(try pg.query("SELECT k, v FROM \(table)") == [["a'b", nil]])
        let error = #expect(throws: PQError.self) {
            try pg.transaction {
                try pg.query("DELETE FROM \(table)")
                try pg.query("INSERT INTO \(table) VALUES ($1, $2)", ["x", "1"])
                try pg.query("INSERT INTO \(table) VALUES ($1, $2)", ["x", "2"])  // duplicate key
            }
        }
        #expect(error?.sqlState == "23505")
        #expect(error?.errorClass == .permanent)
        #expect(try pg.query("SELECT k FROM \(table)") == [["a'b"]])  // the DELETE was rolled back
        // A failed COPY is rolled back with its transaction, and the connection stays usable.
        #expect(throws: PQError.self) {
            try pg.transaction {
                try pg.query("DELETE FROM \(table)")
                try pg.copyIn("COPY \(table) FROM STDIN") { write in
                    try Array("only-one-column\n".utf8).withUnsafeBytes { try write($0) }
                }
            }
        }
        #expect(try pg.query("SELECT count(*) FROM \(table)") == [["1"]])
    }

    @Test func errorsCarrySQLStateAndNeverThePassword() throws {
        let settings = try TestServices.postgres()
        let pg = try PostgresConnection(settings)
        let missing = #expect(throws: PQError.self) { try pg.execute("SELECT * FROM no_such_table_here") }
        #expect(missing?.sqlState == "42P01")
        #expect(missing?.description.contains("no_such_table_here") == true)

        var wrong = settings
        wrong.password = Secret("Wr0ng-Pa55word-xyz")
        let denied = #expect(throws: PQError.self) { try PostgresConnection(wrong) }
        #expect(denied?.errorClass == .permanent)
        #expect(denied?.description.contains("password authentication failed") == true)
        #expect(denied?.description.contains("Wr0ng-Pa55word-xyz") == false)
        #expect(denied?.description.contains(settings.password.reveal()) == false)

        var down = settings
        down.port = 1
        let refused = #expect(throws: PQError.self) { try PostgresConnection(down) }
        #expect(refused?.errorClass == .transient)
    }

    @Test func sslModesReachLibpq() throws {
        var settings = try TestServices.postgres()
        settings.sslMode = .require  // the local server has no TLS: libpq must refuse, proving the mode is passed
        let error = #expect(throws: PQError.self) { try PostgresConnection(settings) }
        #expect(error?.description.contains("SSL") == true)
        settings.sslMode = .prefer
        #expect(try PostgresConnection(settings).query("SELECT 1") == [["1"]])
    }
}
