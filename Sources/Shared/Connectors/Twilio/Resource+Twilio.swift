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
    /// A Twilio GET: JSON, Basic auth.
    func twilioRequest(_ url: String, user: String, token: Secret) -> HTTPRequest {
        var request = HTTPRequest(url: url, headers: [("Accept", "application/json")], timeout: timeout)
        request.basicAuth = (user, token)
        return request
    }

    /// GETs a Twilio `url` as `account` with Basic auth and hands the 200 body to `consume`.
    func get<T>(
        _ url: String, account: String, user: String, token: Secret, tally: inout Tally,
        consume: ([UInt8]) throws -> T
    ) throws -> T {
        try fetch(twilioRequest(url, user: user, token: token), api: .twilio, account: account, tally: &tally, consume: consume)
    }

    /// GETs a Twilio `url` as `account` with Basic auth and streams the 200 body to `onChunk` (see
    /// ``stream(_:api:account:tally:restart:onChunk:finish:)``).
    func get<T>(
        _ url: String, account: String, user: String, token: Secret, tally: inout Tally, restart: (() -> Void)?,
        onChunk: @escaping (UnsafeRawBufferPointer) throws -> Void, finish: () throws -> T
    ) throws -> T {
        try stream(
            twilioRequest(url, user: user, token: token), api: .twilio, account: account, tally: &tally, restart: restart,
            onChunk: onChunk, finish: finish)
    }
}
