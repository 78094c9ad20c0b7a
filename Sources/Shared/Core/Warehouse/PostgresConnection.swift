internal import CLibPQ
import Foundation

/// Connection settings for PostgreSQL or Redshift.
package struct PostgresSettings: Sendable, Hashable {
    /// A session timeout set after connecting (`SET name = milliseconds`).
    package struct Timeout: Sendable, Hashable {
        package var name: String
        package var milliseconds: Int
        package init(_ name: String, milliseconds: Int) {
            self.name = name
            self.milliseconds = milliseconds
        }
    }

    package enum SSLMode: String, Sendable, Hashable, CaseIterable {
        case disable, allow, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    package var host: String
    package var port: Int
    package var database: String
    package var user: String
    package var password: Secret
    package var sslMode: SSLMode
    /// CA bundle for verify-ca / verify-full (Redshift: amazon-trust-ca-bundle.crt).
    package var sslRootCert: String?
    var connectTimeout: Int
    var applicationName: String
    /// `SET name = value` after connecting, in order (statement and lock timeouts; Redshift knows no
    /// `lock_timeout`, so the caller chooses per flavor). Values are whole numbers of milliseconds.
    package var session: [Timeout] = []

    package init(
        host: String, port: Int = 5432, database: String, user: String, password: Secret,
        sslMode: SSLMode = .verifyFull, sslRootCert: String? = nil, connectTimeout: Int = 10,
        applicationName: String = "huskimo"
    ) {
        self.host = host
        self.port = port
        self.database = database
        self.user = user
        self.password = password
        self.sslMode = sslMode
        self.sslRootCert = sslRootCert
        self.connectTimeout = connectTimeout
        self.applicationName = applicationName
    }
}

/// One libpq connection. Not thread-safe: one owner at a time; blocking (run it off the cooperative pool).
/// The password goes to libpq through `PQconnectdbParams`, never through a connection string that could be
/// logged, and every error text is scrubbed of it.
package final class PostgresConnection {
    private let conn: OpaquePointer
    private let secrets: [Secret]
    package let settings: PostgresSettings

    package init(_ settings: PostgresSettings) throws {
        self.settings = settings
        self.secrets = [settings.password]
        var pairs: [(String, String)] = [
            ("host", settings.host), ("port", String(settings.port)), ("dbname", settings.database),
            ("user", settings.user), ("password", settings.password.reveal()), ("sslmode", settings.sslMode.rawValue),
            ("connect_timeout", String(settings.connectTimeout)), ("application_name", settings.applicationName),
            ("client_encoding", "UTF8"),
            // A peer that vanishes (a NAT dropping the flow, a failed-over cluster) is noticed within about a minute
            // instead of the kernel's two hours.
            ("keepalives", "1"), ("keepalives_idle", "30"), ("keepalives_interval", "10"), ("keepalives_count", "3"),
            ("tcp_user_timeout", "60000"),
        ]
        if let root = settings.sslRootCert { pairs.append(("sslrootcert", root)) }
        let keys = pairs.map { strdup($0.0) }
        let values = pairs.map { strdup($0.1) }
        defer {
            keys.forEach { free($0) }
            values.forEach { free($0) }
        }
        var keyPointers: [UnsafePointer<CChar>?] = keys.map { UnsafePointer($0) } + [nil]
        var valuePointers: [UnsafePointer<CChar>?] = values.map { UnsafePointer($0) } + [nil]
        guard let conn = PQconnectdbParams(&keyPointers, &valuePointers, 0) else {
            throw PQError(sqlState: nil, "PQconnectdbParams: out of memory")
        }
        guard PQstatus(conn) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(conn)).trimmingCharacters(in: .whitespacesAndNewlines)
            PQfinish(conn)
            // 28P01 / 28000 come back only as text at connect time: classify auth failures as permanent.
            let auth = message.contains("password authentication failed") || message.contains("no pg_hba.conf entry")
            throw PQError(
                sqlState: auth ? "28P01" : nil,
                "connect to \(settings.host):\(settings.port)/\(settings.database) as \(settings.user): \(message)"
                    .redacting(secrets))
        }
        self.conn = conn
        for setting in settings.session where setting.name.allSatisfy({ $0.isLetter || $0 == "_" }) {
            try execute("SET \(setting.name) = \(max(0, setting.milliseconds))")
        }
    }

    deinit { PQfinish(conn) }

    /// Whether the connection is still usable.
    package var isHealthy: Bool { PQstatus(conn) == CONNECTION_OK }

    /// Runs one or more statements without parameters.
    package func execute(_ sql: String) throws {
        let result = PQexec(conn, sql)
        defer { PQclear(result) }
        try check(result, sql)
    }

    /// Runs a statement with text parameters (`$1`, `$2`…; nil is SQL NULL) and returns the rows as text.
    @discardableResult
    package func query(_ sql: String, _ parameters: [String?] = []) throws -> [[String?]] {
        let copies = parameters.map { $0.map { strdup($0) } ?? nil }
        defer { copies.forEach { free($0) } }
        var pointers: [UnsafePointer<CChar>?] = copies.map { $0.map { UnsafePointer($0) } }
        let result = PQexecParams(conn, sql, Int32(parameters.count), nil, &pointers, nil, nil, 0)
        defer { PQclear(result) }
        try check(result, sql)
        var rows: [[String?]] = []
        let rowCount = PQntuples(result), columnCount = PQnfields(result)
        rows.reserveCapacity(Int(rowCount))
        for r in 0..<rowCount {
            var row: [String?] = []
            row.reserveCapacity(Int(columnCount))
            for c in 0..<columnCount {
                if PQgetisnull(result, r, c) == 1 {
                    row.append(nil)
                } else {
                    let length = Int(PQgetlength(result, r, c))
                    let value = PQgetvalue(result, r, c)!
                    row.append(String(decoding: UnsafeRawBufferPointer(start: value, count: length), as: UTF8.self))
                }
            }
            rows.append(row)
        }
        return rows
    }

    /// Runs `body` in a transaction: COMMIT when it returns, ROLLBACK when it throws.
    package func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN")
        do {
            let value = try body()
            try execute("COMMIT")
            return value
        } catch {
            if isHealthy { try? execute("ROLLBACK") }
            throw error
        }
    }

    /// Runs `COPY … FROM STDIN` and streams rows into it: `body` gets a writer to call with raw COPY data as
    /// it arrives (any chunking). Nothing is buffered here beyond libpq's own send buffer.
    /// - Returns: the number of rows the server reports loaded.
    @discardableResult
    package func copyIn(_ sql: String, _ body: (_ write: (UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws -> Int {
        let start = PQexec(conn, sql)
        let status = PQresultStatus(start)
        if status != PGRES_COPY_IN {
            defer { PQclear(start) }
            try check(start, sql)
            throw PQError(sqlState: nil, "\(sql.prefix(80)): expected COPY IN, got \(String(cString: PQresStatus(status)))")
        }
        PQclear(start)
        do {
            try body { chunk in
                guard chunk.count > 0, let base = chunk.baseAddress else { return }
                let rc = PQputCopyData(conn, base.assumingMemoryBound(to: CChar.self), Int32(chunk.count))
                guard rc == 1 else {
                    throw PQError(sqlState: nil, "PQputCopyData: \(self.errorMessage)")
                }
            }
        } catch {
            // Abort the COPY so the connection is usable again; the server answers with an error result.
            PQputCopyEnd(conn, "aborted by client")
            while let result = PQgetResult(conn) { PQclear(result) }
            throw error
        }
        guard PQputCopyEnd(conn, nil) == 1 else { throw PQError(sqlState: nil, "PQputCopyEnd: \(errorMessage)") }
        var loaded = 0
        var failure: PQError?
        while let result = PQgetResult(conn) {
            if PQresultStatus(result) == PGRES_COMMAND_OK {
                loaded = Int(String(cString: PQcmdTuples(result))) ?? 0
            } else if failure == nil {
                failure = error(result, sql)
            }
            PQclear(result)
        }
        if let failure { throw failure }
        return loaded
    }

    private var errorMessage: String {
        String(cString: PQerrorMessage(conn)).trimmingCharacters(in: .whitespacesAndNewlines).redacting(secrets)
    }

    private func check(_ result: OpaquePointer?, _ sql: String) throws {
        let status = PQresultStatus(result)
        switch status {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_COPY_IN, PGRES_EMPTY_QUERY: return
        default: throw error(result, sql)
        }
    }

    private func error(_ result: OpaquePointer?, _ sql: String) -> PQError {
        let field = { (code: Int32) -> String? in
            guard let result, let value = PQresultErrorField(result, code) else { return nil }
            return String(cString: value)
        }
        let state = field(Int32(UInt8(ascii: "C")))  // PG_DIAG_SQLSTATE
        let primary = field(Int32(UInt8(ascii: "M"))) ?? errorMessage  // PG_DIAG_MESSAGE_PRIMARY
        let statement = sql.split(separator: "\n").first.map { String($0.prefix(80)) } ?? ""
        return PQError(sqlState: state, "\(primary) [in: \(statement)]".redacting(secrets))
    }
}

/// Quotes an SQL identifier (`"name"`, doubling embedded quotes).
package func sqlIdentifier(_ name: String) -> String {
    "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}

/// Quotes an SQL string literal (`'text'`, doubling embedded quotes; standard_conforming_strings).
package func sqlLiteral(_ text: String) -> String {
    "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
}
