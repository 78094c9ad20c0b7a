import HuskimoConnectors
import HuskimoCore
package import HuskimoFleet

extension WarehouseLoader {
    /// Applies the target's whole DDL (idempotent): tables, ledger, views.
    package func applyDDL() throws {
        try db().execute(dialect.ddl(schema: target.schema))
    }
}
