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

    /// Twilio 2010 API lists: the path under `/2010-04-01/Accounts/{sid}/`, the day filter, and the envelope's
    /// record key. Nil for the Pricing API and other connectors' resources.
    var twilioList: (path: String, dayFilter: String?, recordsKey: String)? {
        switch self {
        case .calls: return ("Calls.json", "StartTime", "calls")
        case .messages: return ("Messages.json", "DateSent", "messages")
        case .recordings: return ("Recordings.json", "DateCreated", "recordings")
        case .incomingPhoneNumbers: return ("IncomingPhoneNumbers.json", nil, "incoming_phone_numbers")
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
        default: return nil
        }
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
