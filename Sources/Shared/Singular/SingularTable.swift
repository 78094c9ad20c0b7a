import Foundation

/// How one warehouse column is made from a Singular record.
public enum SingularField: Sendable, Hashable {
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

    public var jsonKey: String? {
        switch self {
        case .channelName, .whenRetrieved: return nil
        case .text(let k), .integer(let k), .decimal(let k), .boolean(let k), .date(let k), .timestamp(let k): return k
        }
    }
}

/// A Singular table of 0.3: its columns in order (COPY is positional), where each comes from, and which must
/// not be null (from ``WarehouseSchema``: a null there is a permanent conversion error naming the field, not a
/// failed COPY later).
public struct SingularTable: Sendable {
    public let name: String
    /// The Singular reporting resource in the URL (`/api/{key}/adv/{slug}/D/D`).
    public let slug: String
    public let columns: [(name: String, source: SingularField, required: Bool)]
    /// For numeric columns, the most integer digits the warehouse type holds (`bigint`: 18, `decimal(p, s)`:
    /// p − s): a larger value is a conversion error naming the field, not a failed COPY.
    public let maxIntegerDigits: [Int?]
    /// The JSON key of the reporting day.
    public let dayKey = "date"

    init(name: String, slug: String, columns: [(String, SingularField)]) {
        self.name = name
        self.slug = slug
        let schema = WarehouseSchema.table(name)!
        self.columns = columns.map { column in
            (column.0, column.1, schema.columns.first { $0.name == column.0 }!.notNull)
        }
        self.maxIntegerDigits = columns.map { column in
            let type = schema.columns.first { $0.name == column.0 }!.type
            if type == "bigint" { return 18 }
            let numbers = type.hasPrefix("decimal(") ? type.dropFirst(8).dropLast().split(separator: ",").compactMap {
                Int($0.trimmingCharacters(in: .whitespaces))
            } : []
            return numbers.count == 2 ? numbers[0] - numbers[1] : nil
        }
    }

    public var columnNames: [String] { columns.map(\.name) }

    public static let campaigns = SingularTable(name: "singular_campaigns", slug: "stats", columns: [
        ("channel_name", .channelName), ("when_retrieved", .whenRetrieved), ("ad_network", .text("ad_network")),
        ("campaign_name", .text("campaign_name")), ("campaign_type", .text("campaign_type")),
        ("campaign_url", .text("campaign_url")), ("subcampaign_name", .text("subcampaign_name")), ("app_id", .text("app_id")),
        ("campaign_network_id", .text("campaign_network_id")), ("country", .text("country")),
        ("reporting_date", .date("date")), ("impressions", .integer("impressions")), ("clicks", .integer("clicks")),
        ("installs", .integer("installs")), ("cost", .decimal("cost")), ("revenue", .decimal("revenue")),
        ("last_modified", .timestamp("last_modified")),
    ])

    public static let creatives = SingularTable(name: "singular_creatives", slug: "creative_stats", columns: [
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
