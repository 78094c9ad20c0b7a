import HuskimoCore

/// Which API a channel talks to: the configuration's `type:`, the first segment of a job id, a metric label. Each
/// connector declares its own (`ChannelType.twilio` lives in `Twilio/`); ``ConnectorRegistry`` knows them all.
package struct ChannelType: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible {
    package let rawValue: String
    package init(rawValue: String) { self.rawValue = rawValue }
    package var description: String { rawValue }
    /// The API's name in messages (`twilio` → `Twilio`).
    var displayName: String { rawValue.prefix(1).uppercased() + rawValue.dropFirst() }
}

/// An extract resource: the name in job messages, `--resource` and job ids. Each connector declares its resources
/// (`Resource.calls` lives in `Twilio/Resource+Twilio.swift`) with a ``ResourceSpec`` (table, partitioning,
/// replace-or-append); every other mapping (schema, planner, loader) reads the spec through the registry.
package struct Resource: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible, CaseIterable {
    package let rawValue: String

    /// A resource some connector serves; nil for any other name (a message, a flag, a file).
    package init?(rawValue: String) {
        guard ConnectorRegistry.spec(named: rawValue) != nil else { return nil }
        self.rawValue = rawValue
    }

    /// For a connector's own declarations (`static let calls = Resource(declaring: "calls")`).
    package init(declaring name: String) { self.rawValue = name }

    package var description: String { rawValue }

    /// Every resource of every connector, in the registry's order.
    package static var allCases: [Resource] { ConnectorRegistry.resources }

    /// The connector's description of this resource.
    package var spec: ResourceSpec {
        guard let spec = ConnectorRegistry.spec(named: rawValue) else { preconditionFailure("no connector declares resource \(rawValue)") }
        return spec
    }

    /// The channel type that serves this resource.
    package var channelType: ChannelType { spec.channelType }
    /// Snapshot resources have one job per channel, no day.
    package var isSnapshot: Bool { spec.isSnapshot }
    /// The warehouse table (0.3's names).
    package var table: String { spec.table }
    /// The column whose UTC day is a replaced partition; nil for snapshots (replaced per channel) and appended tables.
    package var partitionColumn: String? { spec.partitionColumn }
    /// The columns whose values can change after the day (compared record by record by `sid` when a partition is
    /// replaced); empty: the table has no `sid` to compare by, or is appended.
    package var changeColumns: [String] { spec.changeColumns }
    /// Appended tables keep every retrieval (Singular); the others' partitions and snapshots are replaced.
    package var appendOnly: Bool { spec.appendOnly }

    /// The resource of a warehouse table.
    package init?(table: String) {
        guard let resource = Resource.allCases.first(where: { $0.table == table }) else { return nil }
        self = resource
    }

    /// The warehouse table's schema.
    package var schema: WarehouseSchema.Table { WarehouseSchema.table(for: self) }
}

/// What a connector says of one of its resources: everything outside its folder needs to know.
package struct ResourceSpec: Sendable {
    package let resource: Resource
    package let channelType: ChannelType
    package let table: String
    package let isSnapshot: Bool
    package let partitionColumn: String?
    package let changeColumns: [String]
    package let appendOnly: Bool

    package init(
        _ resource: Resource, of type: ChannelType, table: String, snapshot: Bool = false, partitionColumn: String? = nil,
        changeColumns: [String] = [], appendOnly: Bool = false
    ) {
        self.resource = resource
        self.channelType = type
        self.table = table
        self.isSnapshot = snapshot
        self.partitionColumn = partitionColumn
        self.changeColumns = changeColumns
        self.appendOnly = appendOnly
    }
}
