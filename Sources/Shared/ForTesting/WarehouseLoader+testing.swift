import HuskimoConnectors
import HuskimoCore
public import HuskimoFleet

extension WarehouseLoader {
    /// Applies the target's whole DDL (idempotent): tables, ledger, views.
    public func applyDDL() throws {
        try db().execute(dialect.ddl(schema: target.schema))
    }
}
