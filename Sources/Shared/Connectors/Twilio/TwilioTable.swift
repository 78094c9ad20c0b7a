import HuskimoCore

/// How one warehouse column is made from a Twilio record.
package enum ColumnSource: Sendable, Hashable {
    /// The channel's configured name.
    case channelName
    /// The extraction time (UTC).
    case whenRetrieved
    /// A JSON value as text: strings exactly (decoded), numbers and booleans as written, null → NULL.
    case text(String)
    /// An RFC 2822 date (`Tue, 31 Aug 2010 20:36:28 +0000`, the 2010 API's) or an ISO-8601 time
    /// (`2019-03-21T15:39:25Z`, Bulk Export's and usage records') as a UTC timestamp; null or "" → NULL.
    case date(String)
    /// A calendar day (`2026-12-05`) as a date; null or "" → NULL.
    case day(String)
    /// An integer given as a string or number; null or "" → NULL.
    case integer(String)
    /// A JSON boolean as `true` / `false`; null → NULL.
    case boolean(String)
    /// The length in UTF-16 code units of a string; null → NULL (the string itself is not stored).
    case utf16Length(String)

    var jsonKey: String? {
        switch self {
        case .channelName, .whenRetrieved: return nil
        case .text(let k), .date(let k), .day(let k), .integer(let k), .boolean(let k), .utf16Length(let k): return k
        }
    }
}

/// A warehouse table of 0.3, its columns in order (COPY is positional), and where each comes from.
/// Name, record key and partition column come from the ``Resource`` catalogue.
package struct TwilioTable: Sendable {
    package let resource: Resource
    package let columns: [(name: String, source: ColumnSource)]

    init(_ resource: Resource, columns: [(name: String, source: ColumnSource)]) {
        self.resource = resource
        self.columns = columns
    }

    package var name: String { resource.table }
    /// The list envelope's record key.
    var recordsKey: String { resource.twilioList?.recordsKey ?? resource.rawValue }
    /// The column whose UTC day is the partition (nil: a snapshot).
    package var partitionColumn: String? { resource.partitionColumn }
    var columnNames: [String] { columns.map(\.name) }

    package static let calls = TwilioTable(
        .calls,
        columns: [
            ("channel_name", .channelName), ("when_retrieved", .whenRetrieved), ("sid", .text("sid")),
            ("account_sid", .text("account_sid")), ("api_version", .text("api_version")),
            ("date_created", .date("date_created")), ("date_updated", .date("date_updated")),
            ("parent_call_sid", .text("parent_call_sid")), ("to", .text("to")), ("from", .text("from")),
            ("phone_number_sid", .text("phone_number_sid")), ("status", .text("status")),
            ("start_time", .date("start_time")), ("end_time", .date("end_time")), ("duration", .text("duration")),
            ("price", .text("price")), ("direction", .text("direction")), ("answered_by", .text("answered_by")),
            ("forwarded_from", .text("forwarded_from")), ("caller_name", .text("caller_name")),
        ])

    package static let messages = TwilioTable(
        .messages,
        columns: [
            ("channel_name", .channelName), ("when_retrieved", .whenRetrieved), ("sid", .text("sid")),
            ("account_sid", .text("account_sid")), ("api_version", .text("api_version")),
            ("date_created", .date("date_created")), ("date_updated", .date("date_updated")),
            ("date_sent", .date("date_sent")), ("to", .text("to")), ("from", .text("from")),
            ("body_length", .utf16Length("body")), ("status", .text("status")), ("price", .text("price")),
            ("price_unit", .text("price_unit")), ("num_media", .integer("num_media")),
            ("num_segments", .integer("num_segments")), ("direction", .text("direction")),
            ("error_message", .text("error_message")),
        ])

    package static let recordings = TwilioTable(
        .recordings,
        columns: [
            ("channel_name", .channelName), ("when_retrieved", .whenRetrieved), ("sid", .text("sid")),
            ("account_sid", .text("account_sid")), ("api_version", .text("api_version")),
            ("date_created", .date("date_created")), ("date_updated", .date("date_updated")),
            ("call_sid", .text("call_sid")), ("duration", .integer("duration")),
        ])

    package static let incomingPhoneNumbers = TwilioTable(
        .incomingPhoneNumbers,
        columns: [
            ("channel_name", .channelName), ("when_retrieved", .whenRetrieved), ("sid", .text("sid")),
            ("account_sid", .text("account_sid")), ("api_version", .text("api_version")),
            ("date_created", .date("date_created")), ("date_updated", .date("date_updated")),
            ("friendly_name", .text("friendly_name")), ("phone_number", .text("phone_number")),
            ("voice_application_sid", .text("voice_application_sid")),
            ("sms_application_sid", .text("sms_application_sid")), ("voice_url", .text("voice_url")),
            ("voice_method", .text("voice_method")), ("voice_fallback_url", .text("voice_fallback_url")),
            ("voice_fallback_method", .text("voice_fallback_method")), ("status_callback", .text("status_callback")),
            // 0.3's misnamed column: it has always held `status_callback_method`.
            ("status_fallback_method", .text("status_callback_method")),
            ("voice_caller_id_lookup", .boolean("voice_caller_id_lookup")), ("sms_url", .text("sms_url")),
            ("sms_method", .text("sms_method")), ("sms_fallback_url", .text("sms_fallback_url")),
            ("sms_fallback_method", .text("sms_fallback_method")),
            ("sms_status_callback", .text("sms_status_callback")),
            ("address_requirements", .text("address_requirements")),
        ])

    /// `twilio_usage_records`: one row per (account, day, category) of `Usage/Records/Daily.json`.
    package static let usageRecords = TwilioTable(
        .usageRecords,
        columns: [
            ("channel_name", .channelName), ("when_retrieved", .whenRetrieved), ("account_sid", .text("account_sid")),
            ("usage_date", .day("start_date")), ("category", .text("category")), ("description", .text("description")),
            ("count", .integer("count")), ("count_unit", .text("count_unit")), ("usage", .text("usage")),
            ("usage_unit", .text("usage_unit")), ("price", .text("price")), ("price_unit", .text("price_unit")),
            ("as_of", .date("as_of")),
        ])

    /// `twilio_pricing_phone_numbers`: built from two levels of the Pricing API, not from one record.
    static let pricingColumns = [
        "channel_name", "when_retrieved", "country", "iso_country", "price_unit", "number_type", "base_price",
        "current_price",
    ]
}
