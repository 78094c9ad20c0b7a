import Foundation
package import HuskimoCore
import Synchronization

/// Faults the sandbox injects, changeable at run time (`POST /sandbox/faults`).
package struct SandboxFaults: Sendable, Codable, Equatable {
    /// Share of API requests that fail (0–1): 5xx (JSON or HTML), 429 with and without Retry-After, a dropped
    /// connection, or a truncated body, in turn.
    package var rate: Double = 0
    /// Added to every API answer, in milliseconds.
    package var latencyMs: Int = 0
    /// Requests one account may have in flight; beyond that: 429, code 20429.
    package var concurrencyLimit: Int = 0
    /// Accounts whose token is refused (401, code 20003), and Singular keys refused (401).
    package var revoked: [String] = []
    /// The Singular data revision: raising it restates every metric (a later retrieval sees new values).
    package var singularRevision: Int = 0
    /// The Twilio data revision: raising it settles every day's records as real Twilio data settles after the day
    /// ends (calls in progress complete with a duration and a price, unpriced messages get their price, and one late
    /// message appears per day), so a settle pass has something to pick up.
    package var twilioRevision: Int = 0
    /// Days (`YYYY-MM-DD`) whose Singular responses hold a malformed record.
    package var singularBrokenDays: [String] = []
    /// Singular v2.0, by day: how many availability answers say a source (Facebook) is still processing before the
    /// day is complete.
    package var singularNotReadyDays: [String: Int] = [:]
    /// Singular v2.0, by day: how many of the reports created for it end FAILED before one succeeds.
    package var singularFailingDays: [String: Int] = [:]
    /// Singular v2.0, by day: how many of the reports created for it stay QUEUED for ever.
    package var singularStuckDays: [String: Int] = [:]
    /// Seconds an OAuth token lives (Twilio's are an hour; tests make them short to prove renewal).
    package var oauthTokenSeconds: Double = 3600
    /// Singular v2.0: the most rows one report may have (0: any); a larger one ends FAILED, saying so.
    package var singularRowsPerReport: Int = 0
    /// Singular v2.0: reports of one key that may run at once (QUEUED or STARTED); more are refused with 429.
    package var singularReportLimit: Int = 100
    /// Twilio days (`YYYY-MM-DD`) answered with hostility, by kind: `other-host` (a next page on another host),
    /// `loop` (a next page that is the page itself), `huge` (a 2 MiB body of blanks), `retry-after` (429 with
    /// Retry-After 999999999), `bad-utf8` (the day's records with invalid UTF-8 in a text field).
    package var twilioHostileDays: [String: String] = [:]
    /// Twilio days (`YYYY-MM-DD`) whose calls and messages lists leave out their oldest billed record, for this many
    /// reads of each list (what reconciliation against the usage records must catch).
    package var twilioShortDays: [String: Int] = [:]
    /// Export days one account (with its subaccounts) may have created per UTC day (Twilio: 366).
    package var bulkExportQuota: Int = 366
    /// Polls of an export job before it completes (Twilio's take minutes to hours).
    package var bulkExportPolls: Int = 1
    /// Where an export day's 307 points instead of the sandbox's own presigned URL (a hostile redirect).
    package var bulkExportRedirect: String?
    /// Accounts whose 2010 API lists answer 500, every time (a subaccount Twilio cannot serve).
    package var twilioBrokenAccounts: [String] = []
    /// Accounts whose owner shortened retention: the days their calls and messages lists keep (else 400).
    package var twilioListWindows: [String: Int] = [:]

    /// Every key is optional in the control JSON (`{"latencyMs": 100}` leaves the rest at their defaults).
    package init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        rate = try c.decodeIfPresent(Double.self, forKey: .rate) ?? 0
        latencyMs = try c.decodeIfPresent(Int.self, forKey: .latencyMs) ?? 0
        concurrencyLimit = try c.decodeIfPresent(Int.self, forKey: .concurrencyLimit) ?? 0
        revoked = try c.decodeIfPresent([String].self, forKey: .revoked) ?? []
        singularRevision = try c.decodeIfPresent(Int.self, forKey: .singularRevision) ?? 0
        twilioRevision = try c.decodeIfPresent(Int.self, forKey: .twilioRevision) ?? 0
        singularBrokenDays = try c.decodeIfPresent([String].self, forKey: .singularBrokenDays) ?? []
        twilioHostileDays = try c.decodeIfPresent([String: String].self, forKey: .twilioHostileDays) ?? [:]
        singularNotReadyDays = try c.decodeIfPresent([String: Int].self, forKey: .singularNotReadyDays) ?? [:]
        singularFailingDays = try c.decodeIfPresent([String: Int].self, forKey: .singularFailingDays) ?? [:]
        singularStuckDays = try c.decodeIfPresent([String: Int].self, forKey: .singularStuckDays) ?? [:]
        singularReportLimit = try c.decodeIfPresent(Int.self, forKey: .singularReportLimit) ?? 100
        singularRowsPerReport = try c.decodeIfPresent(Int.self, forKey: .singularRowsPerReport) ?? 0
        oauthTokenSeconds = try c.decodeIfPresent(Double.self, forKey: .oauthTokenSeconds) ?? 3600
        twilioShortDays = try c.decodeIfPresent([String: Int].self, forKey: .twilioShortDays) ?? [:]
        bulkExportQuota = try c.decodeIfPresent(Int.self, forKey: .bulkExportQuota) ?? 366
        bulkExportPolls = try c.decodeIfPresent(Int.self, forKey: .bulkExportPolls) ?? 1
        bulkExportRedirect = try c.decodeIfPresent(String.self, forKey: .bulkExportRedirect)
        twilioBrokenAccounts = try c.decodeIfPresent([String].self, forKey: .twilioBrokenAccounts) ?? []
        twilioListWindows = try c.decodeIfPresent([String: Int].self, forKey: .twilioListWindows) ?? [:]
    }

    package init(
        rate: Double = 0, latencyMs: Int = 0, concurrencyLimit: Int = 0, revoked: [String] = [], singularRevision: Int = 0,
        twilioRevision: Int = 0, singularBrokenDays: [String] = [], twilioHostileDays: [String: String] = [:],
        singularNotReadyDays: [String: Int] = [:], singularFailingDays: [String: Int] = [:], singularStuckDays: [String: Int] = [:],
        singularReportLimit: Int = 100, singularRowsPerReport: Int = 0, oauthTokenSeconds: Double = 3600,
        twilioShortDays: [String: Int] = [:], bulkExportQuota: Int = 366, bulkExportPolls: Int = 1, bulkExportRedirect: String? = nil,
        twilioBrokenAccounts: [String] = [], twilioListWindows: [String: Int] = [:]
    ) {
        self.twilioListWindows = twilioListWindows
        self.twilioBrokenAccounts = twilioBrokenAccounts
        self.bulkExportRedirect = bulkExportRedirect
        self.twilioShortDays = twilioShortDays
        self.bulkExportQuota = bulkExportQuota
        self.bulkExportPolls = bulkExportPolls
        self.oauthTokenSeconds = oauthTokenSeconds
        self.singularRowsPerReport = singularRowsPerReport
        self.singularNotReadyDays = singularNotReadyDays
        self.singularFailingDays = singularFailingDays
        self.singularStuckDays = singularStuckDays
        self.singularReportLimit = singularReportLimit
        self.twilioRevision = twilioRevision
        self.twilioHostileDays = twilioHostileDays
        self.rate = rate
        self.latencyMs = latencyMs
        self.concurrencyLimit = concurrencyLimit
        self.revoked = revoked
        self.singularRevision = singularRevision
        self.singularBrokenDays = singularBrokenDays
    }
}

/// Counters a test can read back (`GET /sandbox/stats`).
package struct SandboxStats: Sendable, Codable {
    package var requests = 0
    package var pages = 0
    package var faults = 0
    package var throttled = 0
    var maxInFlightPerAccount = 0
    /// Singular v2.0: requests with a key in their URL (there should be none), downloads that carried credentials
    /// (refused), availability answers, reports created, refused for the concurrency limit, and the most running at once.
    package var singularKeyInURL = 0
    /// OAuth: tokens issued, and requests refused for an expired token.
    package var oauthTokensIssued = 0
    package var oauthExpiredRefused = 0
    package var oauthInvalidRefused = 0
    package var singularDownloadsWithCredentials = 0
    package var singularAvailability = 0
    package var singularReportsCreated = 0
    package var singularReportsRefused = 0
    package var singularReportsTooLarge = 0
    package var singularMaxRunningReports = 0
    /// Lists served short (``SandboxFaults/twilioShortDays``), usage pages asked for, and those over 100 refused.
    package var shortLists = 0
    package var usagePages = 0
    package var usagePagesTooLarge = 0
    /// Bulk Export: jobs created, export days refused for the quota, day files fetched through the redirect, file
    /// downloads that carried credentials (refused), and list requests for days past the list window (refused).
    package var exportJobsCreated = 0
    package var exportDaysRefused = 0
    package var exportDayRedirects = 0
    package var exportDownloads = 0
    package var exportDownloadsWithCredentials = 0
    package var listWindowRefused = 0
}

/// The sandbox Twilio (2010 API + Pricing v1) and its control endpoints.
package final class SandboxAPI: Sendable {
    package let accounts: [SandboxAccount]
    let faults = Mutex(SandboxFaults())
    let stats = Mutex(SandboxStats())
    let singularReports = Mutex(SandboxSingular.Reports())
    /// Reads left short per `resource|day` (``SandboxFaults/twilioShortDays``).
    let shortLeft = Mutex([String: Int]())
    let bulkExports = Mutex(SandboxBulkExport.State())
    /// OAuth tokens issued: token → (account SID, expiry).
    let oauthTokens = Mutex([String: (sid: String, expires: Date)]())
    private let inFlight = Mutex([String: Int]())
    private let sequence = Atomic<UInt64>(0)

    /// Accounts by SID (a benchmark serves thousands).
    private let bySID: [String: SandboxAccount]
    private let byKey: [String: SandboxAccount]

    package init(accounts: [SandboxAccount] = SandboxAccount.defaults) {
        self.accounts = accounts
        bySID = Dictionary(accounts.map { ($0.sid, $0) }, uniquingKeysWith: { first, _ in first })
        byKey = Dictionary(accounts.map { ($0.apiKeySID, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Every OAuth token issued so far stops working (as a revoked or rotated client's would).
    package func revokeTokens() { oauthTokens.withLock { $0 = [:] } }

    package func setFaults(_ f: SandboxFaults) {
        faults.withLock { $0 = f }
        singularReports.withLock { $0.left = [:] }
        shortLeft.withLock { $0 = [:] }
    }
    package var currentStats: SandboxStats { stats.withLock { $0 } }

    package func handle(_ request: SandboxRequest) -> SandboxResponse {
        if request.path.hasPrefix("/sandbox/") { return control(request) }
        stats.withLock { $0.requests += 1 }
        if request.path.hasPrefix("/api/v2.0/") { return singularV2(request) }
        if request.path.hasPrefix("/api/") { return singular(request) }
        if request.path.hasPrefix("/singular-downloads/") { return singularDownload(request) }
        if request.path.hasPrefix("/sandbox-exports/") { return exportDownload(request) }
        if request.path == "/v2/token" { return oauthToken(request) }
        // Authenticate first: Twilio checks credentials before anything else.
        // An auth token logs in as its account; an API key (SK…) as the account that owns it, whose SID the URLs
        // must still name (a key SID in the path is not an account: 404); an OAuth Bearer token as its client's account.
        let login: String
        let caller: SandboxAccount
        if let header = request.headers["authorization"], header.hasPrefix("Bearer ") {
            let token = String(header.dropFirst(7))
            guard let issued = oauthTokens.withLock({ $0[token] }), let account = bySID[issued.sid] else {
                stats.withLock { $0.oauthInvalidRefused += 1 }
                return Self.error(401, 20003, "Authenticate", detail: "Invalid access token.")
            }
            guard issued.expires > Date() else {
                stats.withLock { $0.oauthExpiredRefused += 1 }
                return Self.error(401, 20003, "Authenticate", detail: "The access token has expired.")
            }
            (login, caller) = ("OQ", account)
        } else if let (user, secret) = Self.basicAuth(request.headers["authorization"]),
            let account = bySID[user].flatMap({ $0.token == secret ? $0 : nil })
                ?? byKey[user].flatMap({ $0.apiKeySecret == secret ? $0 : nil })
        {
            (login, caller) = (user, account)
        } else {
            return Self.error(401, 20003, "Authenticate", detail: "Your AccountSid or AuthToken was incorrect.")
        }
        guard !faults.withLock({ $0.revoked.contains(caller.sid) }) else {
            return Self.error(401, 20003, "Authenticate", detail: "Your AccountSid or AuthToken was incorrect.")
        }
        let user = caller.sid
        // A Standard API key cannot list or read accounts (Twilio: 401 20003 on /Accounts).
        if login.hasPrefix("SK"), request.path.hasPrefix("/2010-04-01/Accounts.json") {
            return Self.error(401, 20003, "Authenticate", detail: "A Standard API key cannot access the Accounts resource.")
        }
        let f = faults.withLock { $0 }
        // Per-account concurrency, as Twilio's 20429 (answered at once; the latency applies to served requests).
        let current = inFlight.withLock { counts -> Int in
            counts[user, default: 0] += 1
            return counts[user]!
        }
        defer { inFlight.withLock { $0[user, default: 1] -= 1 } }
        stats.withLock { $0.maxInFlightPerAccount = max($0.maxInFlightPerAccount, current) }
        if f.concurrencyLimit > 0, current > f.concurrencyLimit {
            stats.withLock { $0.throttled += 1 }
            return Self.error(429, 20429, "Too many concurrent requests")
        }
        if f.latencyMs > 0 { usleep(UInt32(f.latencyMs * 1000)) }
        return withFaults(f, route(request, caller: caller)) { status, code, message, headers in
            Self.error(status, code, message, headers: headers)
        }
    }

    /// `response`, or at the fault rate one of: 500 (JSON), 503 (HTML), 429 with and without Retry-After, a
    /// dropped connection, a truncated body.
    func withFaults(
        _ f: SandboxFaults, _ response: SandboxResponse,
        error: (Int, Int, String, [(String, String)]) -> SandboxResponse
    ) -> SandboxResponse {
        let n = sequence.wrappingAdd(1, ordering: .relaxed).newValue
        guard f.rate > 0, Double(SandboxData.mix(n) % 10_000) / 10_000 < f.rate else { return response }
        stats.withLock { $0.faults += 1 }
        switch SandboxData.mix(n &+ 99) % 6 {
        case 0: return error(500, 20500, "Internal Server Error", [])
        case 1:
            return .ok(
                status: 503, headers: [("Content-Type", "text/html")],
                body: Array("<html><body><h1>503 Service Unavailable</h1></body></html>".utf8))
        case 2: return error(429, 20429, "Too Many Requests", [("Retry-After", "1")])
        case 3: return error(429, 20429, "Too Many Requests", [])
        case 4: return .drop
        default:
            if case .ok(200, let headers, let body) = response { return .truncate(status: 200, headers: headers, body: body) }
            return .drop
        }
    }

    // MARK: - OAuth

    /// `POST /v2/token`, grant_type=client_credentials: a Bearer token for the client's account, living
    /// ``SandboxFaults/oauthTokenSeconds``.
    private func oauthToken(_ request: SandboxRequest) -> SandboxResponse {
        let form = Self.form(request.body)
        guard request.method == "POST", form["grant_type"] == "client_credentials" else {
            return .json(400, Array("{\"error\": \"unsupported_grant_type\"}".utf8))
        }
        guard
            let account = accounts.first(where: { $0.oauthClientID == form["client_id"] && $0.oauthClientSecret == form["client_secret"] }),
            !faults.withLock({ $0.revoked.contains(account.sid) })
        else { return .json(401, Array("{\"error\": \"invalid_client\"}".utf8)) }
        let lifetime = faults.withLock { $0.oauthTokenSeconds }
        let token =
            "tok_"
            + Digest.sha256Hex(
                Array("\(account.sid)/\(sequence.wrappingAdd(1, ordering: .relaxed).newValue)/\(Date().timeIntervalSince1970)".utf8))
        oauthTokens.withLock { $0[token] = (account.sid, Date().addingTimeInterval(lifetime)) }
        stats.withLock { $0.oauthTokensIssued += 1 }
        return .json(200, Array("{\"access_token\": \"\(token)\", \"token_type\": \"Bearer\", \"expires_in\": \(lifetime)}".utf8))
    }

    // MARK: - Singular

    /// `/api/{key}/adv/{stats|creative_stats}/{start}/{end}`: a JSON array of the days' records; errors as
    /// `{"error": "..."}`.
    private func singular(_ request: SandboxRequest) -> SandboxResponse {
        func failure(_ status: Int, _ message: String, _ headers: [(String, String)] = []) -> SandboxResponse {
            var o = JSONObject()
            o.string("error", message)
            return .json(status, o.finish(), headers: headers)
        }
        let parts = request.path.split(separator: "/").map { $0.removingPercentEncoding ?? String($0) }
        let f = faults.withLock { $0 }
        guard parts.count == 6, parts[0] == "api", parts[2] == "adv" else { return failure(404, "Not found") }
        guard let key = SandboxSingular.keys.first(where: { $0.key == parts[1] }), !f.revoked.contains(parts[1]) else {
            return failure(401, "Invalid API key")
        }
        guard ["stats", "creative_stats"].contains(parts[3]) else { return failure(404, "Unknown report \(parts[3])") }
        guard let start = Day(parts[4]), let end = Day(parts[5]), start <= end else {
            return failure(400, "Invalid date range \(parts[4]) - \(parts[5])")
        }
        if f.latencyMs > 0 { usleep(UInt32(f.latencyMs * 1000)) }
        var body = Array("[".utf8)
        for day in start.ordinal...end.ordinal {
            let records = SandboxSingular.records(key: key, resource: parts[3], day: day, revision: f.singularRevision)
            let json =
                f.singularBrokenDays.contains(Day(ordinal: day).description)
                ? Array(SandboxSingular.broken(records, day: day).dropFirst().dropLast())
                : Array(records.map(\.json).joined(separator: Array(", ".utf8)))
            if !json.isEmpty {
                if body.count > 1 { body += Array(", ".utf8) }
                body += json
            }
        }
        body += Array("]".utf8)
        stats.withLock { $0.pages += 1 }
        return withFaults(f, .json(200, body)) { status, _, message, headers in failure(status, message, headers) }
    }

    // MARK: - Routes

    private func route(_ request: SandboxRequest, caller: SandboxAccount) -> SandboxResponse {
        let parts = request.path.split(separator: "/").map(String.init)
        if parts.count >= 2, parts[0] == "2010-04-01" {
            if parts.count == 2, parts[1] == "Accounts.json" { return accountsList(request, caller: caller) }
            if parts.count == 3, parts[1] == "Accounts", parts[2].hasSuffix(".json"),
                let account = bySID[String(parts[2].dropLast(5))], account.sid == caller.sid || account.parent == caller.sid
            {
                return .json(200, Self.accountRecord(account).json)
            }
            if parts.count == 6, parts[1] == "Accounts", parts[3...5] == ["Usage", "Records", "Daily.json"], let account = bySID[parts[2]],
                account.sid == caller.sid || account.parent == caller.sid
            {
                if faults.withLock({ $0.twilioBrokenAccounts.contains(account.sid) }) {
                    return Self.error(500, 20500, "Internal Server Error")
                }
                return usage(request, account)
            }
            guard parts.count == 4, parts[1] == "Accounts", let account = bySID[parts[2]],
                account.sid == caller.sid || account.parent == caller.sid
            else { return Self.notFound(request.path) }
            if faults.withLock({ $0.twilioBrokenAccounts.contains(account.sid) }) {
                return Self.error(500, 20500, "Internal Server Error")
            }
            switch parts[3] {
            case "Calls.json": return dayList(request, account, "calls", filter: "StartTime")
            case "Messages.json": return dayList(request, account, "messages", filter: "DateSent")
            case "Recordings.json": return dayList(request, account, "recordings", filter: "DateCreated")
            case "IncomingPhoneNumbers.json":
                return page(request, key: "incoming_phone_numbers", records: SandboxData.phoneNumbers(account))
            default: return Self.notFound(request.path)
            }
        }
        if parts.count >= 3, parts[0] == "v1", parts[1] == "Exports" { return bulkExport(request, caller: caller, parts: parts) }
        // Voice (v2) and messaging (v1) prices: the same country list, then each country's prices.
        if parts.count >= 3, (parts[0], parts[1]) == ("v2", "Voice") || (parts[0], parts[1]) == ("v1", "Messaging"), parts[2] == "Countries"
        {
            let product = "/\(parts[0])/\(parts[1])/Countries"
            if parts.count == 3 { return countries(request, path: product) }
            if parts.count == 4, let country = SandboxData.countries.first(where: { $0.iso == parts[3] }) {
                let prices =
                    parts[1] == "Voice"
                    ? SandboxPricing.voice(iso: country.iso, name: country.name)
                    : SandboxPricing.messaging(iso: country.iso, name: country.name)
                return .json(200, prices.json)
            }
        }
        if parts.count >= 3, parts[0] == "v1", parts[1] == "PhoneNumbers", parts[2] == "Countries" {
            if parts.count == 3 { return countries(request, path: "/v1/PhoneNumbers/Countries") }
            if parts.count == 4, let country = SandboxData.countries.first(where: { $0.iso == parts[3] }) {
                var o = JSONObject()
                o.string("country", country.name)
                o.string("iso_country", country.iso)
                let prices = SandboxData.prices(iso: country.iso).map { p -> String in
                    var e = JSONObject()
                    e.string("number_type", p.type)
                    e.string("base_price", p.base)
                    e.string("current_price", p.current)
                    return String(decoding: e.finish(), as: UTF8.self)
                }
                o.raw("phone_number_prices", "[" + prices.joined(separator: ", ") + "]")
                o.string("price_unit", "USD")
                o.string("url", "\(Self.base(request))/v1/PhoneNumbers/Countries/\(country.iso)")
                return .json(200, o.finish())
            }
        }
        return Self.notFound(request.path)
    }

    /// `Usage/Records/Daily.json?StartDate=D&EndDate=D`: one day (what Huskimo asks), 404 when it has no usage.
    private func usage(_ request: SandboxRequest, _ account: SandboxAccount) -> SandboxResponse {
        stats.withLock { $0.usagePages += 1 }
        guard let start = request.parameter("StartDate").flatMap(Day.init), let end = request.parameter("EndDate").flatMap(Day.init),
            start == end
        else { return Self.error(400, 20001, "StartDate and EndDate: one day, YYYY-MM-DD") }
        if let size = request.parameter("PageSize").flatMap(Int.init), size > 100 {
            stats.withLock { $0.usagePagesTooLarge += 1 }
            return Self.error(500, 20500, "Internal Server Error")
        }
        let include = request.parameter("IncludeSubaccounts") != "false"
        let counted = [account] + (include ? accounts.filter { $0.parent == account.sid } : [])
        let revision = faults.withLock { $0.twilioRevision }
        let records = SandboxUsage.records(counted, owner: account, day: start.ordinal, revision: revision)
        guard !records.isEmpty else { return Self.notFound(request.path) }
        return page(request, key: "usage_records", records: records)
    }

    private func dayList(
        _ request: SandboxRequest, _ account: SandboxAccount, _ resource: String, filter: String
    )
        -> SandboxResponse
    {
        var days: [Int] = []
        if let value = request.parameter(filter) {
            guard let day = Day(value) else { return Self.error(400, 20001, "Invalid date value") }
            // Calls and messages are kept about 13 months (400 days, fewer where the owner shortened retention);
            // older ones only through Bulk Export.
            let window = faults.withLock { $0.twilioListWindows[account.sid] } ?? Self.listWindowDays
            if resource != "recordings", day.ordinal < Day.today.ordinal - window {
                stats.withLock { $0.listWindowRefused += 1 }
                return Self.error(400, 20004, "Invalid date", detail: "\(filter) \(day) is older than the \(window) days this list keeps")
            }
            days = [day.ordinal]
        } else {
            // X>=D (key "X>"): from D; X<=D (key "X<"): before D. Unbounded sides stop at 31 days.
            let from = request.parameter(filter + ">").flatMap(Day.init)
            let to = request.parameter(filter + "<").flatMap(Day.init)
            if request.parameter(filter + ">") != nil && from == nil || request.parameter(filter + "<") != nil && to == nil {
                return Self.error(400, 20001, "Invalid date value")
            }
            let end = to?.ordinal ?? Day.today.ordinal + 1
            let start = from?.ordinal ?? end - 31
            days = Array(start..<end)
        }
        var records: [SandboxData.Record] = []
        let (revision, hostile) = faults.withLock { ($0.twilioRevision, $0.twilioHostileDays) }
        let kind = days.count == 1 ? hostile["\(Day(ordinal: days[0]))"] : nil
        for day in days.reversed() { records += SandboxData.records(account, resource, day: day, revision: revision) }
        // Served short: the day's oldest billed record is left out of the last page (which holds it).
        let billed = resource == "calls" ? SandboxUsage.billedCalls : SandboxUsage.billedMessages
        if days.count == 1, resource != "recordings",
            let victim = records.lastIndex(where: { SandboxUsage.field($0.json, "status").map(billed.contains) ?? false })
        {
            let size = min(max(Int(request.parameter("PageSize") ?? "50") ?? 50, 1), 1000)
            let start = (Int(request.parameter("Page") ?? "0") ?? 0) * size
            let key = "\(account.sid)|\(resource)|\(Day(ordinal: days[0]))"
            let short =
                start + size >= records.count && victim >= start
                ? faults.withLock { $0.twilioShortDays["\(Day(ordinal: days[0]))"] ?? 0 } : 0
            let served =
                short > 0
                && shortLeft.withLock { left -> Bool in
                    let used = left[key, default: 0]
                    guard used < short else { return false }
                    left[key] = used + 1
                    return true
                }
            if served {
                stats.withLock { $0.shortLists += 1 }
                records.remove(at: victim)
            }
        }
        switch kind {
        case "other-host":
            return .json(
                200, Array("{\"\(resource)\": [], \"next_page_uri\": \"http://evil.example:1/2010-04-01/x.json\", \"page\": 0}".utf8))
        case "loop":
            let me = request.path + (request.rawQuery.isEmpty ? "" : "?" + request.rawQuery)
            return .json(200, Array("{\"\(resource)\": [], \"next_page_uri\": \"\(me)\", \"page\": 0}".utf8))
        case "huge":
            return .json(
                200,
                Array("{\"\(resource)\": [".utf8) + [UInt8](repeating: 0x20, count: 2 << 20) + Array("], \"next_page_uri\": null}".utf8))
        case "retry-after":
            return Self.error(429, 20429, "Too Many Requests", headers: [("Retry-After", "999999999")])
        case "bad-utf8":
            // A text field's quote-enclosed value gets bytes that are not UTF-8 (what a broken proxy might hand on).
            records = records.map { record in
                var r = record
                if let range = r.json.firstRange(of: Array("\"api_version\": \"".utf8)) {
                    r.json.insert(contentsOf: [0xC3, 0x28, 0xFF], at: range.upperBound)
                }
                return r
            }
        default:
            break
        }
        return page(request, key: resource, records: records)
    }

    /// The days calls and messages lists keep (Twilio: about 13 months; 400 for messages by default).
    package static let listWindowDays = 400

    private func page(_ request: SandboxRequest, key: String, records: [SandboxData.Record]) -> SandboxResponse {
        stats.withLock { $0.pages += 1 }
        let size = min(max(Int(request.parameter("PageSize") ?? "50") ?? 50, 1), 1000)
        let pageNumber = Int(request.parameter("Page") ?? "0") ?? 0
        let token = request.parameter("PageToken")
        if pageNumber > 0 {
            guard let token else { return Self.error(400, 20001, "Paged requests must include a PageToken") }
            let previousLast = pageNumber * size - 1
            guard previousLast < records.count, token == "PA" + records[previousLast].sid else {
                return Self.error(400, 21481, "Invalid PageToken")
            }
        }
        let start = pageNumber * size
        let slice = start < records.count ? records[start..<min(start + size, records.count)] : []
        var filters = request.query.filter { !["Page", "PageSize", "PageToken"].contains($0.0) }
        filters.append(("PageSize", String(size)))
        let uri = { (page: Int, token: String?) -> String in
            var q = filters + [("Page", String(page))]
            if let token { q.append(("PageToken", token)) }
            return request.path + "?" + q.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&")
        }
        var body: [UInt8] = []
        body.reserveCapacity(slice.count * 900 + 600)
        body.append(
            contentsOf: Array(
                "{\"first_page_uri\": \"\(uri(0, nil))\", \"end\": \(slice.isEmpty ? 0 : start + slice.count - 1), \"previous_page_uri\": null, \"\(key)\": ["
                    .utf8))
        var first = true
        for record in slice {
            if !first { body.append(contentsOf: [0x2C, 0x20]) }
            first = false
            body.append(contentsOf: record.json)
        }
        let next = start + size < records.count ? "\"" + uri(pageNumber + 1, "PA" + records[start + size - 1].sid) + "\"" : "null"
        body.append(
            contentsOf: Array(
                "], \"uri\": \"\(uri(pageNumber, token))\", \"page_size\": \(size), \"start\": \(start), \"next_page_uri\": \(next), \"page\": \(pageNumber)}"
                    .utf8))
        return .json(200, body)
    }

    private func accountsList(_ request: SandboxRequest, caller: SandboxAccount) -> SandboxResponse {
        let visible = accounts.filter { $0.sid == caller.sid || $0.parent == caller.sid }
        return page(request, key: "accounts", records: visible.map(Self.accountRecord))
    }

    /// An account resource as Twilio returns it (GET /2010-04-01/Accounts/{sid}.json, and in the list).
    static func accountRecord(_ a: SandboxAccount) -> SandboxData.Record {
        var o = JSONObject()
        o.string("auth_token", a.token)
        o.string("date_created", SandboxData.rfc2822(1_500_000_000))
        o.string("date_updated", SandboxData.rfc2822(1_600_000_000))
        o.string("friendly_name", a.friendlyName)
        o.string("owner_account_sid", a.parent ?? a.sid)
        o.string("sid", a.sid)
        o.string("status", a.status)
        o.string("type", "Full")
        o.string("uri", "/2010-04-01/Accounts/\(a.sid).json")
        return SandboxData.Record(sid: a.sid, time: 0, json: o.finish())
    }

    private func countries(_ request: SandboxRequest, path: String) -> SandboxResponse {
        let size = min(max(Int(request.parameter("PageSize") ?? "50") ?? 50, 1), 1000)
        let pageNumber = Int(request.parameter("Page") ?? "0") ?? 0
        let all = SandboxData.countries
        let start = pageNumber * size
        let slice = start < all.count ? all[start..<min(start + size, all.count)] : []
        let base = Self.base(request)
        let entries = slice.map { c -> String in
            var o = JSONObject()
            o.string("country", c.name)
            o.string("iso_country", c.iso)
            o.string("url", "\(base)\(path)/\(c.iso)")
            return String(decoding: o.finish(), as: UTF8.self)
        }
        let pageURL = { (p: Int) in "\(base)\(path)?PageSize=\(size)&Page=\(p)" }
        let next = start + size < all.count ? "\"\(pageURL(pageNumber + 1))&PageToken=PN\(pageNumber + 1)\"" : "null"
        let body =
            "{\"countries\": [\(entries.joined(separator: ", "))], \"meta\": {\"page\": \(pageNumber), \"page_size\": \(size), \"first_page_url\": \"\(pageURL(0))\", \"previous_page_url\": null, \"url\": \"\(pageURL(pageNumber))\", \"next_page_url\": \(next), \"key\": \"countries\"}}"
        return .json(200, Array(body.utf8))
    }

    // MARK: - Control

    private func control(_ request: SandboxRequest) -> SandboxResponse {
        switch request.path {
        case "/sandbox/faults" where request.method == "POST":
            guard let f = try? JSONDecoder().decode(SandboxFaults.self, from: Data(request.body)) else {
                return .json(400, Array("{\"error\": \"bad faults JSON\"}".utf8))
            }
            setFaults(f)
            return .json(200, Array("{}".utf8))
        case "/sandbox/oauth" where request.method == "DELETE":  // every token issued so far stops working
            revokeTokens()
            return .json(200, Array("{}".utf8))
        case "/sandbox/stats" where request.method == "DELETE":  // counters back to zero (a benchmark's next run)
            stats.withLock { $0 = SandboxStats() }
            return .json(200, Array("{}".utf8))
        case "/sandbox/stats":
            return .json(200, Array((try? JSONEncoder().encode(currentStats)) ?? Data()))
        case "/sandbox/expected":
            guard let sid = request.parameter("account"), let account = bySID[sid],
                let resource = request.parameter("resource")
            else { return .json(400, Array("{\"error\": \"account and resource required\"}".utf8)) }
            let expected = Self.expected(account, resource, day: request.parameter("day").flatMap(Day.init))
            return .json(200, Array("{\"count\": \(expected.count), \"checksum\": \"\(expected.checksum)\"}".utf8))
        default:
            return .json(404, Array("{\"error\": \"no such control endpoint\"}".utf8))
        }
    }

    /// The exact rows a correct extraction of (account, resource, day) stages: their count and the SHA-256 of
    /// their sorted keys (SIDs; `iso_country|number_type` for pricing), one per line.
    package static func expected(
        _ account: SandboxAccount, _ resource: String, day: Day?, revision: Int = 0
    ) -> (count: Int, checksum: String) {
        var keys: [String]
        switch resource {
        case "incoming_phone_numbers": keys = SandboxData.phoneNumbers(account).map(\.sid)
        case "pricing_phone_numbers":
            keys = SandboxData.countries.flatMap { c in SandboxData.prices(iso: c.iso).map { "\(c.iso)|\($0.type)" } }
        default: keys = SandboxData.records(account, resource, day: day?.ordinal ?? 0, revision: revision).map(\.sid)
        }
        keys.sort()
        return (keys.count, checksum(keys))
    }

    package static func checksum(_ sortedKeys: [String]) -> String {
        Digest.sha256Hex(Array(sortedKeys.joined(separator: "\n").utf8))
    }

    // MARK: - Helpers

    static func basicAuth(_ header: String?) -> (String, String)? {
        guard let header, header.hasPrefix("Basic "), let data = Data(base64Encoded: String(header.dropFirst(6))) else { return nil }
        let text = String(decoding: data, as: UTF8.self)
        guard let colon = text.firstIndex(of: ":") else { return nil }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }

    /// An `application/x-www-form-urlencoded` body's fields (the last of a repeated name wins).
    static func form(_ body: [UInt8]) -> [String: String] {
        var form: [String: String] = [:]
        for pair in String(decoding: body, as: UTF8.self).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map {
                $0.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0)
            }
            if parts.count == 2 { form[parts[0]] = parts[1] }
        }
        return form
    }

    package static func base(_ request: SandboxRequest) -> String { "http://" + (request.headers["host"] ?? "127.0.0.1") }

    static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
    }

    static func error(
        _ status: Int, _ code: Int, _ message: String, detail: String? = nil, headers: [(String, String)] = []
    )
        -> SandboxResponse
    {
        var o = JSONObject()
        o.raw("code", String(code))
        o.string("message", message)
        if let detail { o.string("detail", detail) }
        o.string("more_info", "https://www.twilio.com/docs/errors/\(code)")
        o.raw("status", String(status))
        return .json(status, o.finish(), headers: headers)
    }

    static func notFound(_ path: String) -> SandboxResponse {
        error(404, 20404, "The requested resource \(path) was not found")
    }
}
