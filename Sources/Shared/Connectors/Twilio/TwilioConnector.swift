import Foundation
import HuskimoCore

/// Twilio: the 2010 REST API's lists (calls, messages, recordings by day; incoming phone numbers as a snapshot) and
/// the Pricing API's phone-number prices; logged in with the auth token, an API key or OAuth client credentials
/// (`TwilioHosts.swift`, `TwilioOAuth.swift`), on the channel's region and edge; subaccounts on request.
struct TwilioConnector: Connector {
    /// Twilio lists only the last 400 days (fewer where the account's owner shortened retention: `list_window_days`).
    static let listWindow = 400

    /// The days `channel`'s lists keep: `list_window_days`, else Twilio's 400.
    static func listWindow(_ channel: ChannelConfig?) -> Int {
        channel.map { TwilioBulkExport.Options.read($0).options.listWindow } ?? listWindow
    }

    package init() {}

    package var type: ChannelType { .twilio }
    package var defaultAPIURL: String { "https://api.twilio.com" }
    package var probeName: String { "Twilio account" }
    /// OAuth client credentials (`oauth_client_id` + `oauth_client_secret`, tokens from `oauth_url`).
    package var channelKeys: [String] { ["oauth_client_id", "oauth_url"] + SubaccountSelection.keys + TwilioBulkExport.Options.keys }
    package var secretChannelKeys: [String] { ["oauth_client_secret"] }

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
            ResourceSpec(.pricingVoice, of: .twilio, table: "twilio_pricing_voice", snapshot: true),
            ResourceSpec(.pricingMessaging, of: .twilio, table: "twilio_pricing_messaging", snapshot: true),
            ResourceSpec(.usageRecords, of: .twilio, table: "twilio_usage_records", partitionColumn: "usage_date"),
        ]
    }

    /// Channels sharing an Account SID share its request limit.
    package func limiterKey(_ channel: ChannelConfig) -> String { channel.apiUser ?? "" }

    package func problems(_ channel: ChannelConfig) -> [(key: String, message: String)] {
        var problems: [(key: String, message: String)] = []
        if (channel.apiUser ?? "").isEmpty { problems.append(("api_user", "required for twilio (the Account SID)")) }
        let oauth = (channel.options["oauth_client_id"], channel.secretOptions["oauth_client_secret"])
        switch oauth {
        case (let id?, let secret?):
            if id.isEmpty || id.utf8.count > 128 || !id.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) {
                problems.append(("oauth_client_id", "expected the OAuth client's id (printable, without spaces)"))
            }
            if secret.isEmpty { problems.append(("oauth_client_secret", "must not be empty")) }
            if channel.apiKeySID != nil { problems.append(("oauth_client_id", "either OAuth or an API key (api_key_sid), not both")) }
        case (nil, _?): problems.append(("oauth_client_id", "required with oauth_client_secret"))
        case (_?, nil): problems.append(("oauth_client_secret", "required with oauth_client_id"))
        case (nil, nil): break
        }
        if let url = channel.options["oauth_url"] {
            if oauth.0 == nil { problems.append(("oauth_url", "applies with oauth_client_id + oauth_client_secret only")) }
            if !(url.hasPrefix("https://") || url.hasPrefix("http://") && ChannelConfig.isLoopback(url)) || PageLinks.origin(of: url) == nil
            {
                problems.append(("oauth_url", "expected an https:// URL (http:// only to this machine): the client secret travels there"))
            }
        }
        switch (channel.apiKeySID, channel.apiKeySecret) {
        case (nil, nil):
            if channel.apiKey.isEmpty, oauth.0 == nil {
                problems.append(
                    ("api_key", "required (the auth token), or api_key_sid + api_key_secret, or oauth_client_id + oauth_client_secret"))
            }
        case (let sid?, let secret?):
            if !TwilioConnector.isSID(sid, prefix: "SK") {
                problems.append(("api_key_sid", "expected an API key SID (SK and 32 hex digits); the Account SID stays in api_user"))
            }
            if secret.isEmpty { problems.append(("api_key_secret", "must not be empty")) }
        case (nil, _?): problems.append(("api_key_sid", "required with api_key_secret"))
        case (_?, nil): problems.append(("api_key_secret", "required with api_key_sid"))
        }
        problems += TwilioHosts.problems(channel)
        problems += SubaccountSelection.read(channel).problems
        problems += TwilioBulkExport.Options.read(channel).problems
        return problems
    }

    /// Whether `text` is a Twilio SID: `prefix` and 32 lowercase hex digits.
    static func isSID(_ text: String, prefix: String) -> Bool {
        text.hasPrefix(prefix) && text.utf8.count == prefix.utf8.count + 32
            && text.utf8.dropFirst(prefix.utf8.count).allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    package func settings(_ channel: ChannelConfig) -> [(key: String, value: String)] {
        let selection = SubaccountSelection.read(channel).selection
        let chosen: [(key: String, value: String)] =
            channel.subaccounts
            ? [
                ("include", selection.include.isEmpty ? "(every subaccount)" : selection.include.joined(separator: ", ")),
                ("exclude", selection.exclude.joined(separator: ", ")), ("status", selection.statuses.sorted().joined(separator: ", ")),
            ] : []
        return [("pricing_url", channel.pricingURL), ("subaccounts", "\(channel.subaccounts)")] + chosen
            + (channel.apiKeySID.map { [("api_key_sid", $0)] } ?? [])
            + (channel.twilioOAuth.map { [("oauth_client_id", $0.id), ("oauth_url", $0.url)] } ?? [])
            + (channel.region.map { [("region", $0), ("edge", channel.edge ?? "")] } ?? [])
    }

    /// Twilio data settles for hours after the day (statuses, prices, late messages): the run day and the settle
    /// window before it are read every night, loaded or not; older days since `start_date` only when no target has
    /// them (catch-up), and never beyond the list window.
    package func days(_ request: DayPlanRequest) -> DayPlan {
        let window = TwilioConnector.listWindow(request.channel)
        let oldest = request.today.adding(days: -window)
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
            reason: refused.isEmpty
                ? nil
                : "older than the \(window)-day list window (calls and messages: huskimo-planner backfill reads them through Bulk Export)"
        )
    }

    /// Calls against the `calls` category (completed calls are billed; busy, no-answer, failed, canceled ones and calls
    /// still in progress are not), messages against `sms` + `mms` (sent, delivered, undelivered, received and read ones
    /// are billed; failed, canceled and those not sent yet are not).
    package var reconciliation: [ReconciliationRule] {
        [
            ReconciliationRule(kind: "calls", rows: .calls, billedStatuses: ["completed"], usage: .usageRecords, categories: ["calls"]),
            ReconciliationRule(
                kind: "messages", rows: .messages, billedStatuses: ["sent", "delivered", "undelivered", "received", "read"],
                usage: .usageRecords, categories: ["sms", "mms"]),
        ]
    }

    /// Calls and messages older than the list window, through Bulk Export; 366 export days per account and UTC day.
    package func history(_ channel: ChannelConfig) -> HistoryPolicy? {
        let options = TwilioBulkExport.Options.read(channel).options
        return HistoryPolicy(
            resources: [.calls, .messages], listWindow: options.listWindow, daysPerDay: options.daysPerDay, quotaKey: channel.apiUser ?? "",
            unavailable: TwilioBulkExport.unavailable(channel))
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

    /// With `subaccounts: true`: which subaccounts discovery finds and which the selection reads.
    package func accounts(_ channel: ChannelConfig, context: ExtractContext) throws -> String? {
        guard channel.subaccounts else { return nil }
        var tally = APIClient.Tally()
        let found = try TwilioExtractor(channel: channel, client: context.api, s3: context.s3, folder: context.folder).discover(&tally)
        return DiscoveredAccount.summary(found)
    }

    /// With `subaccounts: true`: the parent and every subaccount the selection reads, each its own job per day (its own
    /// share of the day's partitions, its own ledger entries, its own request limit).
    package func accountIDs(_ channel: ChannelConfig, context: ExtractContext) throws -> [String]? {
        guard channel.subaccounts else { return nil }
        var tally = APIClient.Tally()
        let extractor = TwilioExtractor(channel: channel, client: context.api, s3: context.s3, folder: context.folder)
        return try extractor.discoverAccounts(&tally)  // remembered for this process's jobs too
    }

    /// The account, and with `subaccounts: true` the list of its subaccounts: what a Standard API key may not read.
    package func probe(_ channel: ChannelConfig, context: ExtractContext) throws -> String {
        let extractor = TwilioExtractor(channel: channel, client: context.api, s3: context.s3, folder: context.folder)
        let status = try extractor.probeAccount()
        let login = channel.twilioOAuth != nil ? " with an OAuth token" : channel.apiKeySID.map { " with API key \($0)" } ?? ""
        let history = TwilioBulkExport.unavailable(channel).map { "; note: \($0)" } ?? ""
        guard channel.subaccounts else { return "account \(channel.apiUser ?? "") answered\(login) (status \(status))\(history)" }
        var tally = APIClient.Tally()
        let found = try extractor.discover(&tally)
        return
            "account \(channel.apiUser ?? "") answered\(login) (status \(status)); \(found.count) subaccounts listed, \(found.filter(\.selected).count) selected\(history)"
    }

    package func probeFix(_ error: any Error, channel: ChannelConfig) -> String {
        if let error = error as? APIError, error.status == 401 || error.status == 403, error.url.hasSuffix("/Accounts.json") {
            if let key = channel.apiKeySID {
                return
                    "API key \(key) cannot list subaccounts (a Standard key cannot): use a Main key, the auth token, or subaccounts: false"
            }
            return "these credentials cannot list subaccounts: use the parent account's, or subaccounts: false"
        }
        if let error = error as? APIError, error.url.hasSuffix("/v2/token") {
            return
                "the OAuth token endpoint refuses the client: check oauth_client_id, oauth_client_secret and oauth_url of \(channel.name)"
        }
        let credentials =
            channel.twilioOAuth != nil
            ? "oauth_client_id and oauth_client_secret"
            : channel.apiKeySID != nil ? "api_key_sid and api_key_secret" : "api_user (the Account SID) and api_key"
        return probeFix(error, channel: channel, credentials: credentials, notFound: "api_user and api_url")
    }
}
