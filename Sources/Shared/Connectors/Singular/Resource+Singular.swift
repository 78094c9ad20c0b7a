import HuskimoCore

extension ChannelType {
    /// Singular's reporting API.
    package static let singular = ChannelType(rawValue: "singular")
}

/// Singular's resources. Adding one: a `Resource` here, its ``ResourceSpec`` in ``SingularConnector/resources``, its
/// row layout in `SingularTable.swift`, and its table in `WarehouseSchema`.
extension Resource {
    package static let campaigns = Resource(declaring: "campaigns")
    package static let creatives = Resource(declaring: "creatives")

    /// Singular's reporting resource in `/api/{key}/adv/{slug}/D/D`.
    var singularSlug: String? {
        switch self {
        case .campaigns: return "stats"
        case .creatives: return "creative_stats"
        default: return nil
        }
    }

    /// How Singular records become rows.
    package var singularTable: SingularTable? {
        switch self {
        case .campaigns: return .campaigns
        case .creatives: return .creatives
        default: return nil
        }
    }
}
