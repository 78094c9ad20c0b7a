import HuskimoCore

/// Which API a channel talks to.
public enum ChannelType: String, Sendable, Hashable, Codable, CaseIterable {
    case twilio, singular
}

/// The catalogue of extract resources: for each, its API request, the table it lands in, how that table is
/// partitioned, and which channel type serves it. Every other mapping (converters, schema, planner, loader)
/// reads it from here.
public enum Resource: String, Sendable, Codable, CaseIterable {
    case calls, messages, recordings
    case incomingPhoneNumbers = "incoming_phone_numbers"
    case pricingPhoneNumbers = "pricing_phone_numbers"
    case campaigns, creatives

    /// The channel type that serves this resource.
    public var channelType: ChannelType {
        switch self {
        case .campaigns, .creatives: return .singular
        default: return .twilio
        }
    }

    /// Snapshot resources have one job per channel, no day.
    public var isSnapshot: Bool { self == .incomingPhoneNumbers || self == .pricingPhoneNumbers }

    /// The warehouse table (0.3's names).
    public var table: String {
        switch self {
        case .calls: return "twilio_calls"
        case .messages: return "twilio_messages"
        case .recordings: return "twilio_recordings"
        case .incomingPhoneNumbers: return "twilio_incoming_phone_numbers"
        case .pricingPhoneNumbers: return "twilio_pricing_phone_numbers"
        case .campaigns: return "singular_campaigns"
        case .creatives: return "singular_creatives"
        }
    }

    /// The column whose UTC day is a replaced partition (Twilio day resources); nil for snapshots (replaced per
    /// channel) and Singular (appended).
    public var partitionColumn: String? {
        switch self {
        case .calls: return "start_time"
        case .messages: return "date_sent"
        case .recordings: return "date_created"
        default: return nil
        }
    }

    /// The columns whose values can change after the day (Twilio data settles), compared record by record (by
    /// `sid`) when a partition is replaced; empty: the table has no `sid` to compare by (pricing) or is appended.
    public var changeColumns: [String] {
        switch self {
        case .calls: return ["status", "price", "duration", "end_time", "date_updated", "answered_by"]
        case .messages: return ["status", "price", "price_unit", "date_sent", "date_updated", "error_message", "num_segments", "num_media"]
        case .recordings: return ["duration", "date_updated"]
        case .incomingPhoneNumbers: return ["date_updated", "friendly_name", "voice_url", "sms_url", "status_callback", "sms_status_callback"]
        default: return []
        }
    }

    /// Singular tables keep every retrieval; Twilio partitions and snapshots are replaced.
    public var appendOnly: Bool { channelType == .singular }

    /// The resource of a warehouse table.
    public init?(table: String) {
        guard let resource = Resource.allCases.first(where: { $0.table == table }) else { return nil }
        self = resource
    }

    // MARK: - Requests

    /// Twilio 2010 API lists: the path under `/2010-04-01/Accounts/{sid}/`, the day filter, and the envelope's
    /// record key. Nil for the Pricing API and Singular.
    public var twilioList: (path: String, dayFilter: String?, recordsKey: String)? {
        switch self {
        case .calls: return ("Calls.json", "StartTime", "calls")
        case .messages: return ("Messages.json", "DateSent", "messages")
        case .recordings: return ("Recordings.json", "DateCreated", "recordings")
        case .incomingPhoneNumbers: return ("IncomingPhoneNumbers.json", nil, "incoming_phone_numbers")
        default: return nil
        }
    }

    /// Singular's reporting resource in `/api/{key}/adv/{slug}/D/D`.
    public var singularSlug: String? {
        switch self {
        case .campaigns: return "stats"
        case .creatives: return "creative_stats"
        default: return nil
        }
    }

    // MARK: - Row layouts

    /// How records of a Twilio 2010 list become rows.
    public var twilioTable: TwilioTable? {
        switch self {
        case .calls: return .calls
        case .messages: return .messages
        case .recordings: return .recordings
        case .incomingPhoneNumbers: return .incomingPhoneNumbers
        default: return nil
        }
    }

    /// How Singular records become rows.
    public var singularTable: SingularTable? {
        switch self {
        case .campaigns: return .campaigns
        case .creatives: return .creatives
        default: return nil
        }
    }

    /// The warehouse table's schema.
    public var schema: WarehouseSchema.Table { WarehouseSchema.table(for: self) }
}
