import Foundation
import HuskimoCore

/// How one warehouse column is made from a Singular record.
package enum SingularField: Sendable, Hashable {
    case channelName
    case whenRetrieved
    /// A JSON value as text: strings exactly (decoded), numbers and booleans as written, null → NULL.
    case text(String)
    /// An integer (a JSON number or a numeric string without a fraction); null → NULL.
    case integer(String)
    /// A decimal in plain notation (``PlainDecimal``); null → NULL.
    case decimal(String)
    /// A JSON boolean (or `"true"`/`"false"`).
    case boolean(String)
    /// `YYYY-MM-DD` → `YYYY-MM-DD 00:00:00` (UTC).
    case date(String)
    /// `YYYY-MM-DDTHH:MM:SS` (UTC; a fraction, `Z` or `+00:00` allowed) → `YYYY-MM-DD HH:MM:SS`.
    case timestamp(String)

    var jsonKey: String? {
        switch self {
        case .channelName, .whenRetrieved: return nil
        case .text(let k), .integer(let k), .decimal(let k), .boolean(let k), .date(let k), .timestamp(let k): return k
        }
    }
}

/// A Singular table of 0.3: its columns in order (COPY is positional), where each comes from, and which must
/// not be null (from ``WarehouseSchema``: a null there is a permanent conversion error naming the field, not a
/// failed COPY later).
package struct SingularTable: Sendable {
    package let resource: Resource
    package let columns: [(name: String, source: SingularField, required: Bool)]
    /// For numeric columns, the most integer digits the warehouse type holds (`bigint`: 18, `decimal(p, s)`:
    /// p − s): a larger value is a conversion error naming the field, not a failed COPY.
    let maxIntegerDigits: [Int?]

    init(_ resource: Resource, columns: [(String, SingularField)]) {
        self.resource = resource
        let schema = resource.schema
        // Every column is one of the schema's (a test checks the two line up): its NOT NULL and type decide here.
        let schemaColumns = columns.map { column in
            guard let found = schema.columns.first(where: { $0.name == column.0 }) else {
                preconditionFailure("\(resource.table).\(column.0) is not a column of the warehouse schema")
            }
            return found
        }
        self.columns = zip(columns, schemaColumns).map { ($0.0, $0.1, $1.notNull) }
        self.maxIntegerDigits = schemaColumns.map { column in
            if column.type == "bigint" { return 18 }
            let numbers =
                column.type.hasPrefix("decimal(")
                ? column.type.dropFirst(8).dropLast().split(separator: ",").compactMap {
                    Int($0.trimmingCharacters(in: .whitespaces))
                } : []
            return numbers.count == 2 ? numbers[0] - numbers[1] : nil
        }
    }

    package var name: String { resource.table }
    /// The Singular reporting resource in the URL (`/api/{key}/adv/{slug}/D/D`).
    var slug: String { resource.singularSlug ?? resource.rawValue }
    var columnNames: [String] { columns.map(\.name) }

    package static let campaigns = SingularTable(
        .campaigns,
        columns: [
            ("channel_name", .channelName), ("when_retrieved", .whenRetrieved), ("ad_network", .text("ad_network")),
            ("campaign_name", .text("campaign_name")), ("campaign_type", .text("campaign_type")),
            ("campaign_url", .text("campaign_url")), ("subcampaign_name", .text("subcampaign_name")), ("app_id", .text("app_id")),
            ("campaign_network_id", .text("campaign_network_id")), ("country", .text("country")),
            ("reporting_date", .date("date")), ("impressions", .integer("impressions")), ("clicks", .integer("clicks")),
            ("installs", .integer("installs")), ("cost", .decimal("cost")), ("revenue", .decimal("revenue")),
            ("last_modified", .timestamp("last_modified")),
        ])

    package static let creatives = SingularTable(
        .creatives,
        columns: [
            ("channel_name", .channelName), ("when_retrieved", .whenRetrieved), ("ad_network", .text("ad_network")),
            ("creative_name", .text("creative_name")), ("creative_text", .text("creative_text")), ("image", .text("image")),
            ("image_hash", .text("image_hash")), ("width", .text("width")), ("height", .text("height")),
            ("is_video", .boolean("is_video")), ("campaign_name", .text("campaign_name")), ("campaign_type", .text("campaign_type")),
            ("campaign_url", .text("campaign_url")), ("subcampaign_name", .text("subcampaign_name")), ("app_id", .text("app_id")),
            ("campaign_network_id", .text("campaign_network_id")), ("reporting_date", .date("date")),
            ("impressions", .integer("impressions")), ("clicks", .integer("clicks")), ("installs", .integer("installs")),
            ("cost", .decimal("cost")), ("modified_at", .timestamp("modified_at")),
        ])
}
