import Foundation
import HuskimoCore

/// Twilio: the 2010 REST API's lists (calls, messages, recordings by day; incoming phone numbers as a snapshot) and
/// the Pricing API's phone-number prices, with Basic auth (Account SID and auth token), subaccounts on request.
struct TwilioConnector: Connector {
    /// Twilio lists only the last 400 days.
    static let listWindow = 400

    package init() {}

    package var type: ChannelType { .twilio }
    package var defaultAPIURL: String { "https://api.twilio.com" }
    package var probeName: String { "Twilio account" }

    package var resources: [ResourceSpec] {
        [
            ResourceSpec(
                .calls, of: .twilio, table: "twilio_calls", partitionColumn: "start_time",
                changeColumns: ["status", "price", "duration", "end_time", "date_updated", "answered_by"]),
            ResourceSpec(
                .messages, of: .twilio, table: "twilio_messages", partitionColumn: "date_sent",
                changeColumns: ["status", "price", "price_unit", "date_sent", "date_updated", "error_message", "num_segments", "num_media"]),
            ResourceSpec(
                .recordings, of: .twilio, table: "twilio_recordings", partitionColumn: "date_created",
                changeColumns: ["duration", "date_updated"]),
            ResourceSpec(
                .incomingPhoneNumbers, of: .twilio, table: "twilio_incoming_phone_numbers", snapshot: true,
                changeColumns: ["date_updated", "friendly_name", "voice_url", "sms_url", "status_callback", "sms_status_callback"]),
            ResourceSpec(.pricingPhoneNumbers, of: .twilio, table: "twilio_pricing_phone_numbers", snapshot: true),
        ]
    }

    /// Channels sharing an Account SID share its request limit.
    package func limiterKey(_ channel: ChannelConfig) -> String { channel.apiUser ?? "" }

    package func problems(_ channel: ChannelConfig) -> [(key: String, message: String)] {
        var problems: [(key: String, message: String)] = []
        if (channel.apiUser ?? "").isEmpty { problems.append(("api_user", "required for twilio (the Account SID)")) }
        switch (channel.apiKeySID, channel.apiKeySecret) {
        case (nil, nil):
            if channel.apiKey.isEmpty { problems.append(("api_key", "required (the auth token), or api_key_sid + api_key_secret")) }
        case (let sid?, let secret?):
            if !TwilioConnector.isSID(sid, prefix: "SK") {
                problems.append(("api_key_sid", "expected an API key SID (SK and 32 hex digits); the Account SID stays in api_user"))
            }
            if secret.isEmpty { problems.append(("api_key_secret", "must not be empty")) }
        case (nil, _?): problems.append(("api_key_sid", "required with api_key_secret"))
        case (_?, nil): problems.append(("api_key_secret", "required with api_key_sid"))
        }
        problems += TwilioHosts.problems(channel)
        return problems
    }

    /// Whether `text` is a Twilio SID: `prefix` and 32 lowercase hex digits.
    static func isSID(_ text: String, prefix: String) -> Bool {
        text.hasPrefix(prefix) && text.utf8.count == prefix.utf8.count + 32
            && text.utf8.dropFirst(prefix.utf8.count).allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    package func settings(_ channel: ChannelConfig) -> [(key: String, value: String)] {
        [("pricing_url", channel.pricingURL), ("subaccounts", "\(channel.subaccounts)")]
            + (channel.apiKeySID.map { [("api_key_sid", $0)] } ?? [])
            + (channel.region.map { [("region", $0), ("edge", channel.edge ?? "")] } ?? [])
    }

    /// Twilio data settles for hours after the day (statuses, prices, late messages): the run day and the settle
    /// window before it are read every night, loaded or not; older days since `start_date` only when no target has
    /// them (catch-up), and never beyond the list window.
    package func days(_ request: DayPlanRequest) -> DayPlan {
        let oldest = request.today.adding(days: -TwilioConnector.listWindow)
        var days = request.explicit ?? (0...request.settleDays).map { request.runDay.adding(days: -$0) }
        if request.explicit == nil, let start = request.startDate {
            let loaded = request.loaded()
            var day = max(start, oldest)
            let settled = request.runDay.adding(days: -request.settleDays)
            while day < settled {
                if !loaded.contains(day) { days.append(day) }
                day = day.adding(days: 1)
            }
        }
        let refused = days.filter { $0 < oldest }
        return DayPlan(
            days: days.filter { $0 >= oldest }, refused: refused,
            reason: refused.isEmpty ? nil : "older than Twilio's \(TwilioConnector.listWindow)-day list window")
    }

    package func extract(
        _ job: ExtractJob, channel: ChannelConfig, context: ExtractContext, fetched: (@Sendable () -> Void)?
    ) throws
        -> ExtractReport
    {
        var extractor = TwilioExtractor(channel: channel, client: context.api, s3: context.s3, folder: context.folder)
        extractor.maxPages = context.maxPages
        return try extractor.extract(job, fetched: fetched)
    }

    package func probe(_ channel: ChannelConfig, context: ExtractContext) throws -> String {
        let status = try TwilioExtractor(channel: channel, client: context.api, s3: context.s3, folder: context.folder).probeAccount()
        return "account \(channel.apiUser ?? "") answered (status \(status))"
    }

    package func probeFix(_ error: any Error, channel: ChannelConfig) -> String {
        probeFix(error, channel: channel, credentials: "api_user (the Account SID) and api_key", notFound: "api_user and api_url")
    }
}
