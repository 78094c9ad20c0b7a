import HuskimoConnectors
import HuskimoCore
public import HuskimoFleet

extension WarehouseLoader {
    /// Applies the target's whole DDL (idempotent): tables, ledger, views.
    public func applyDDL() throws {
        try db().execute(WarehouseSchema.fleetDDL(flavor, schema: target.schema))
    }
}
