import Foundation
import HuskimoCore

/// Calls and messages older than the list window, through Twilio's Bulk Export API (`bulkexports_url`, default
/// `https://bulkexports.twilio.com`). For one (account, resource, day): the day's file when Twilio has it (no quota
/// spent), else the export job that makes it — one Huskimo created earlier (found by its friendly name) or a new one
/// for that day — polled (webhooks have fired twice or never) up to `bulkexport_wait_s`, then the file through the
/// 307 to its presigned URL, fetched without credentials: gzipped JSON lines with ISO-8601 times, converted by the
/// list's table layout (the columns an export lacks stay NULL) into the same partition.
struct TwilioBulkExport {
    let channel: ChannelConfig
    let client: APIClient
    let options: Options

    /// The channel keys of Bulk Export.
    struct Options: Sendable, Equatable {
        var url = "https://bulkexports.twilio.com"
        /// Seconds a job waits for its export before it goes to the delay queues (the export job is reused then).
        var wait: Double = 300
        /// The first wait between polls; each next one ×1.5, at most 30 s.
        var poll: Double = 5
        /// Export days one account (and its subaccounts) may create per UTC day: what planning paces history to.
        var daysPerDay = 366
        /// Hosts the day files may be downloaded from besides `bulkexports_url`'s.
        var downloadHosts = ["*.twilio.com", "*.amazonaws.com"]
        /// The days the account's lists keep (`list_window_days`): Twilio's 400 unless the account's owner shortened
        /// retention; older calls and messages are history, read through Bulk Export.
        var listWindow = TwilioConnector.listWindow

        static let keys = [
            "list_window_days", "bulkexports_url", "bulkexport_wait_s", "bulkexport_poll_s", "bulkexport_days_per_day",
            "bulkexport_download_hosts",
        ]

        static func read(_ channel: ChannelConfig) -> (options: Options, problems: [(key: String, message: String)]) {
            var o = Options()
            var reader = ChannelOptions(channel)
            if let url = reader.values["bulkexports_url"] {
                if !(url.hasPrefix("https://") || url.hasPrefix("http://") && ChannelConfig.isLoopback(url))
                    || PageLinks.origin(of: url) == nil
                {
                    reader.problem(
                        "bulkexports_url", "expected an https:// URL (http:// only to this machine): the credentials travel there")
                } else {
                    o.url = url.withoutTrailingSlashes
                }
            }
            o.wait = reader.seconds("bulkexport_wait_s", 1...86_400) ?? o.wait
            o.poll = reader.seconds("bulkexport_poll_s", 0.01...300) ?? o.poll
            o.daysPerDay = reader.integer("bulkexport_days_per_day", 1...366) ?? o.daysPerDay
            o.downloadHosts = reader.hosts("bulkexport_download_hosts") ?? o.downloadHosts
            o.listWindow = reader.integer("list_window_days", 1...TwilioConnector.listWindow) ?? o.listWindow
            let problems = reader.problems
            return (o, problems)
        }
    }

    /// The export's name of a resource (nil: Bulk Export does not serve it).
    static func exportName(_ resource: Resource) -> String? {
        switch resource {
        case .calls: return "Calls"
        case .messages: return "Messages"
        default: return nil
        }
    }

    /// Why the channel cannot read history through Bulk Export (nil: it can): Twilio offers it in US1 only, and it
    /// reads the account that logs in, so subaccounts (read with the parent's login) are out of its reach.
    static func unavailable(_ channel: ChannelConfig) -> String? {
        if let region = channel.region, region != "us1" {
            return "Bulk Export is not offered in \(region.uppercased()) (US1 only): history older than the list window cannot be read"
        }
        if channel.subaccounts {
            return
                "Bulk Export reads only the account that logs in: with subaccounts: true, make each subaccount a channel of its own for its history"
        }
        return nil
    }

    /// The friendly name of the job Huskimo creates for a day: how a later attempt finds it again.
    static func jobName(_ resource: String, _ day: Day) -> String { "huskimo \(resource) \(day)" }

    private var auth: TwilioAuth { channel.twilioAuth(client) }

    /// A request to `bulkexports_url` + `path` (or to a whole `url` the API named), logged in as the channel.
    private func request(
        _ path: String, url: String? = nil, method: HTTPRequest.Method = .GET, form: [(String, String)]? = nil
    ) -> HTTPRequest {
        var request = client.twilioRequest(url ?? options.url + path, auth: auth)
        request.method = method
        if let form {
            request.headers.append(("Content-Type", "application/x-www-form-urlencoded"))
            request.body = Array(PercentEncoding.query(form).utf8)
        }
        request.maxBodyBytes = 4 << 20
        return request
    }

    /// Stages the day's records of `account` into `page` (JSON lines), writing to `staging` as they come.
    /// Blocking. - Returns: the records read. - Throws: ``JobError``-classified errors: transient while the export is
    /// still being made (the job comes back from the delay queues and reuses it), permanent when it failed.
    func extract(
        resource: String, day: Day, account: String, page: PageStream, staging: StagingWriter, tally: inout APIClient.Tally
    ) throws -> Int {
        let started = Date()
        var location = try dayFile(resource, day, account: account, tally: &tally)
        if location == nil {
            let sid =
                try findJob(resource, day, account: account, tally: &tally) ?? createJob(resource, day, account: account, tally: &tally)
            var pause = options.poll
            while location == nil {
                switch try jobState(sid, day: day, account: account, tally: &tally) {
                case .completed:
                    location = try dayFile(resource, day, account: account, tally: &tally)
                    if location == nil {
                        throw APIError(
                            api: .twilio, status: nil, code: nil,
                            message: "export job \(sid) is COMPLETED but the day file for \(day) is not there yet: read again later",
                            url: options.url + "/v1/Exports/\(resource)/Days/\(day)", errorClass: .transient)
                    }
                case .failed(let why):
                    throw APIError(
                        api: .twilio, status: nil, code: nil, message: "export job \(sid) for \(day) FAILED (\(why))",
                        url: options.url + "/v1/Exports/Jobs/\(sid)", errorClass: .permanent)
                case .running(let state):
                    let waited = -started.timeIntervalSinceNow
                    guard waited + pause <= options.wait else {
                        throw APIError(
                            api: .twilio, status: nil, code: nil,
                            message:
                                "export job \(sid) for \(day) is still \(state) after \(Int(waited)) s (bulkexport_wait_s \(Int(options.wait))): back to the delay queue; the job is reused",
                            url: options.url + "/v1/Exports/Jobs/\(sid)", errorClass: .transient)
                    }
                    guard client.stop.sleep(pause) else {
                        throw APIError(
                            api: .twilio, status: nil, code: nil,
                            message: "shutting down while export job \(sid) runs: back to the delay queue",
                            url: options.url + "/v1/Exports/Jobs/\(sid)", errorClass: .transient)
                    }
                    pause = min(pause * 1.5, 30)
                }
            }
        }
        guard let location else { return 0 }
        var download = try PresignedURL.request(
            location, what: "the export day's redirect", apiBase: options.url, hosts: options.downloadHosts,
            accept: "application/octet-stream", timeout: client.timeout)
        download.redact = channel.twilioSecrets
        page.begin()
        // A day file can be large: staged as it converts, so a break is not replayable in place (the job is read again).
        let gunzip = try GzipReader(sink: page.feed)
        return try client.stream(
            download, api: .twilio, account: account, tally: &tally,
            onChunk: { chunk in
                try gunzip.write(chunk)
                if page.tsv.count >= 4 << 20 { try staging.write(&page.tsv) }
            },
            finish: {
                try gunzip.finish()
                let result = try page.finish()
                try staging.write(&page.tsv)
                return result.records
            })
    }

    /// `GET /v1/Exports/{R}/Days/{day}`: the 307's target, or nil while the day has no file (404).
    private func dayFile(_ resource: String, _ day: Day, account: String, tally: inout APIClient.Tally) throws -> String? {
        var request = request("/v1/Exports/\(resource)/Days/\(day)")
        request.alsoAccepted = [301, 302, 307, 308]
        do {
            return try client.fetchResponse(request, api: .twilio, account: account, tally: &tally) { response -> String in
                let object = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any]
                guard let target = response.head.header("location") ?? (object?["redirect_to"] as? String), !target.isEmpty else {
                    throw APIError(
                        api: .twilio, status: response.status, code: nil, message: "the export day answered without a redirect to its file",
                        url: request.displayURL, errorClass: .permanent)
                }
                return target
            }
        } catch let error as APIError where error.status == 404 {
            return nil
        }
    }

    /// The newest job Huskimo created for the day that has not failed (its friendly name), from the resource's job list.
    private func findJob(_ resource: String, _ day: Day, account: String, tally: inout APIClient.Tally) throws -> String? {
        let name = Self.jobName(resource, day)
        var links = try PageLinks(base: options.url, maxPages: 100)
        var next: String? = options.url + "/v1/Exports/\(resource)/Jobs?PageSize=1000"
        var found: String?
        while let url = next {
            try links.visit(url)
            let (sid, nextPage) = try client.fetch(request("", url: url), api: .twilio, account: account, tally: &tally) {
                body -> (String?, String?) in
                let object = try Self.object(body, url: url)
                let jobs = object["jobs"] as? [[String: Any]] ?? []
                let mine = jobs.filter { ($0["friendly_name"] as? String) == name && !Self.state(of: $0, day: day).isFailed }
                let meta = object["meta"] as? [String: Any]
                return (mine.compactMap { $0["job_sid"] as? String }.last, meta?["next_page_url"] as? String)
            }
            if let sid { found = sid }
            next = try nextPage.map(links.resolve)
        }
        return try found.map { try Self.checkedSID($0, url: options.url) }
    }

    private func createJob(_ resource: String, _ day: Day, account: String, tally: inout APIClient.Tally) throws -> String {
        let request = request(
            "/v1/Exports/\(resource)/Jobs", method: .POST,
            form: [("StartDay", day.description), ("EndDay", day.description), ("FriendlyName", Self.jobName(resource, day))])
        var answer = request
        answer.alsoAccepted = [201]
        return try client.fetch(answer, api: .twilio, account: account, tally: &tally) { body in
            let object = try Self.object(body, url: request.url)
            return try Self.checkedSID(object["job_sid"] as? String ?? "", url: request.url)
        }
    }

    enum JobState: Equatable {
        case completed, running(String), failed(String)
        var isFailed: Bool { if case .failed = self { return true } else { return false } }
    }

    private func jobState(_ sid: String, day: Day, account: String, tally: inout APIClient.Tally) throws -> JobState {
        try client.fetch(request("/v1/Exports/Jobs/\(sid)"), api: .twilio, account: account, tally: &tally) { body in
            Self.state(of: try Self.object(body, url: options.url + "/v1/Exports/Jobs/\(sid)"), day: day)
        }
    }

    /// Where the day is in a job's `details` (`[{"status", "count", "days": [...]}]`): COMPLETED, FAILED, or another
    /// state (SUBMITTED, RUNNING…; a job that does not list the day is read as still running).
    static func state(of job: [String: Any], day: Day) -> JobState {
        let details = job["details"] as? [[String: Any]] ?? ((job["details"] as? [String: Any]).map { [$0] } ?? [])
        for group in details where (group["days"] as? [String] ?? []).contains(day.description) {
            let status = (group["status"] as? String ?? "").uppercased()
            if status == "COMPLETED" { return .completed }
            if status == "FAILED" { return .failed("Twilio's job details say FAILED for \(day)") }
            return .running(status.isEmpty ? "unknown" : String(status.printable(limit: 32)))
        }
        return .running("SUBMITTED")
    }

    static func object(_ body: [UInt8], url: String) throws -> [String: Any] {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else {
            throw APIError(
                api: .twilio, status: 200, code: nil, message: "not a JSON object (\(body.count) bytes)", url: HTTPRequest.stripQuery(url),
                errorClass: .permanent)
        }
        return object
    }

    /// A job SID goes into a URL path: only `JS` and 32 hex digits.
    static func checkedSID(_ sid: String, url: String) throws -> String {
        guard sid.utf8.count == 34, sid.hasPrefix("JS"), sid.utf8.dropFirst(2).allSatisfy({ isxdigit(Int32($0)) != 0 }) else {
            throw APIError(
                api: .twilio, status: 200, code: nil,
                message: "an export job SID that is not JS and 32 hex digits (\(sid.utf8.count) bytes)",
                url: HTTPRequest.stripQuery(url), errorClass: .permanent)
        }
        return sid
    }
}
