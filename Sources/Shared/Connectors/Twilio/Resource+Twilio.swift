import HuskimoCore

extension ChannelType {
    /// Twilio's REST (2010-04-01) and Pricing APIs.
    package static let twilio = ChannelType(rawValue: "twilio")
}

/// Twilio's resources and where each is in its API. Adding one: a `Resource` here, its ``ResourceSpec`` in
/// ``TwilioConnector/resources``, its row layout in `TwilioTable.swift`, and its table in `WarehouseSchema`.
extension Resource {
    package static let calls = Resource(declaring: "calls")
    package static let messages = Resource(declaring: "messages")
    package static let recordings = Resource(declaring: "recordings")
    package static let incomingPhoneNumbers = Resource(declaring: "incoming_phone_numbers")
    static let pricingPhoneNumbers = Resource(declaring: "pricing_phone_numbers")
    /// Voice and messaging prices per country (issue 24).
    static let pricingVoice = Resource(declaring: "pricing_voice")
    static let pricingMessaging = Resource(declaring: "pricing_messaging")
    /// Daily usage records, billed counts per category (issue 24): what the rows are reconciled against.
    package static let usageRecords = Resource(declaring: "usage_records")

    /// Where a Twilio 2010 API list is and how it is asked for. Nil for the Pricing API and other connectors' resources.
    var twilioList: TwilioList? {
        switch self {
        case .calls: return TwilioList(path: "Calls.json", recordsKey: "calls") { "StartTime=\($0)" }
        case .messages: return TwilioList(path: "Messages.json", recordsKey: "messages") { "DateSent=\($0)" }
        case .recordings: return TwilioList(path: "Recordings.json", recordsKey: "recordings") { "DateCreated=\($0)" }
        case .incomingPhoneNumbers: return TwilioList(path: "IncomingPhoneNumbers.json", recordsKey: "incoming_phone_numbers")
        // One day's figures of this account alone (the default, true, would add every subaccount's to the parent's);
        // Twilio has answered 500 to pages over 100, and 404 to a day without usage.
        case .usageRecords:
            return TwilioList(path: "Usage/Records/Daily.json", recordsKey: "usage_records", maxPageSize: 100, emptyWhenNotFound: true) {
                "StartDate=\($0)&EndDate=\($0)&IncludeSubaccounts=false"
            }
        default: return nil
        }
    }

    /// Which of the Pricing API's products a pricing resource reads.
    var twilioPricing: PricingProduct? {
        switch self {
        case .pricingPhoneNumbers: return .phoneNumbers
        case .pricingVoice: return .voice
        case .pricingMessaging: return .messaging
        default: return nil
        }
    }

    /// How records of a Twilio 2010 list become rows.
    var twilioTable: TwilioTable? {
        switch self {
        case .calls: return .calls
        case .messages: return .messages
        case .recordings: return .recordings
        case .incomingPhoneNumbers: return .incomingPhoneNumbers
        case .usageRecords: return .usageRecords
        default: return nil
        }
    }
}

/// A Twilio 2010 API list: the path under `/2010-04-01/Accounts/{sid}/`, the envelope's record key, the query that
/// selects one day (nil: not by day), the largest page it serves, and whether 404 means "nothing that day".
struct TwilioList: Sendable {
    var path: String
    var recordsKey: String
    var maxPageSize = 1000
    var emptyWhenNotFound = false
    var dayQuery: (@Sendable (Day) -> String)?

    init(
        path: String, recordsKey: String, maxPageSize: Int = 1000, emptyWhenNotFound: Bool = false,
        dayQuery: (@Sendable (Day) -> String)? = nil
    ) {
        self.path = path
        self.recordsKey = recordsKey
        self.maxPageSize = maxPageSize
        self.emptyWhenNotFound = emptyWhenNotFound
        self.dayQuery = dayQuery
    }
}

extension APIClient {
    /// A Twilio GET: JSON, logged in as `auth` says.
    func twilioRequest(_ url: String, auth: TwilioAuth) -> HTTPRequest {
        var request = HTTPRequest(url: url, headers: [("Accept", "application/json")], timeout: timeout)
        switch auth {
        case .basic(let user, let secret): request.basicAuth = (user, secret)
        case .bearer(let source): request.bearer = source
        }
        return request
    }

    /// GETs a Twilio `url` as `account` and hands the 200 body to `consume`.
    func get<T>(
        _ url: String, account: String, auth: TwilioAuth, tally: inout Tally,
        consume: ([UInt8]) throws -> T
    ) throws -> T {
        try fetch(twilioRequest(url, auth: auth), api: .twilio, account: account, tally: &tally, consume: consume)
    }

    /// GETs a Twilio `url` as `account` and streams the 200 body to `onChunk` (see
    /// ``stream(_:api:account:tally:restart:onChunk:finish:)``).
    func get<T>(
        _ url: String, account: String, auth: TwilioAuth, tally: inout Tally, restart: (() -> Void)?,
        onChunk: @escaping (UnsafeRawBufferPointer) throws -> Void, finish: () throws -> T
    ) throws -> T {
        try stream(
            twilioRequest(url, auth: auth), api: .twilio, account: account, tally: &tally, restart: restart,
            onChunk: onChunk, finish: finish)
    }
}
