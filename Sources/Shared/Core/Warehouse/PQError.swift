/// An error from PostgreSQL or Redshift: SQLSTATE and the server's primary message (never the password:
/// libpq messages are passed through `redacting`).
package struct PQError: ClassifiedError, Sendable {
    package let sqlState: String?
    package let reason: String
    package let errorClass: ErrorClass
    let file: String
    let line: UInt

    init(sqlState: String?, _ reason: String, file: String = #fileID, line: UInt = #line) {
        self.sqlState = sqlState
        self.reason = reason
        self.errorClass = PQError.isRedshiftConflict(sqlState, reason) ? .transient : PQError.classify(sqlState)
        self.file = file
        self.line = line
    }

    package var description: String {
        "PQError[\(sqlState ?? "connection")]: \(reason) (\(file):\(line))"
    }

    /// Connection failures (08), serialization failures and deadlocks (40), insufficient resources (53),
    /// operator intervention such as a shutdown or a statement timeout (57), a lock wait past lock_timeout (55P03)
    /// and no SQLSTATE at all (the connection broke) are
    /// transient; everything else (syntax, constraint, data errors, auth 28) is permanent.
    /// Redshift reports a serializable isolation violation as error 1023 under SQLSTATE XX000 (internal error), and
    /// under SNAPSHOT isolation (the default of new clusters) a "conflict with concurrent transaction": AWS's advice for
    /// both is to run the transaction again, so they are transient, not the permanent failure XX000 otherwise is.
    static func isRedshiftConflict(_ state: String?, _ reason: String) -> Bool {
        guard state == "XX000" else { return false }
        let text = reason.lowercased()
        return text.contains("1023") || text.contains("serializable isolation violation")
            || text.contains("conflict with concurrent transaction")
    }

    static func classify(_ state: String?) -> ErrorClass {
        guard let state, state.count == 5 else { return .transient }
        if state == "55P03" { return .transient }  // lock_not_available: lock_timeout passed, another load holds it
        switch state.prefix(2) {
        case "08", "40", "53", "57", "58": return .transient
        default: return .permanent
        }
    }
}
