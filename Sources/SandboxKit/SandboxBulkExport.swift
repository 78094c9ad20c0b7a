import Foundation
import HuskimoCore
import Synchronization

/// Twilio's Bulk Export API (`bulkexports.twilio.com/v1/Exports/...`) as the sandbox serves it: custom jobs created
/// per date range, polled until COMPLETED, each day's file reached by a 307 to a presigned URL that refuses
/// credentials, gzipped JSON lines with ISO-8601 times and fewer fields than the list API. An account and its
/// subaccounts share a quota of export days created per UTC day (``SandboxFaults/bulkExportQuota``).
enum SandboxBulkExport {
    struct Job: Sendable {
        var sid: String
        var account: String
        var resource: String
        var name: String
        var start: Day
        var end: Day
        var polls = 0
    }

    struct State: Sendable {
        var jobs: [String: Job] = [:]
        /// Export days created per (root account, UTC day).
        var used: [String: Int] = [:]
        /// Day files ready: `account|Resource|day`.
        var files: Set<String> = []
    }

    /// The resource names the API takes, and the sandbox's own names for them.
    static let resources = ["Calls": "calls", "Messages": "messages"]

    /// The list fields an export does not carry (their columns stay NULL), and the times it writes as ISO-8601.
    static let dropped: Set<String> = [
        "api_version", "answered_by", "forwarded_from", "caller_name", "phone_number_sid", "error_message", "uri",
        "subresource_uris", "to_formatted", "from_formatted", "group_sid",
    ]
    static let times: Set<String> = ["date_created", "date_updated", "date_sent", "start_time", "end_time"]

    static func jobJSON(_ job: Job, state: String) -> String {
        var o = JSONObject()
        o.string("resource_type", job.resource)
        o.string("friendly_name", job.name)
        o.string("start_day", job.start.description)
        o.string("end_day", job.end.description)
        o.string("job_sid", job.sid)
        o.string("webhook_url", nil)
        o.string("webhook_method", nil)
        o.string("email", nil)
        let days = (job.start.ordinal...job.end.ordinal).map { "\"\(Day(ordinal: $0))\"" }.joined(separator: ", ")
        o.raw("details", "[{\"status\": \"\(state)\", \"count\": \(job.end.ordinal - job.start.ordinal + 1), \"days\": [\(days)]}]")
        o.string("job_queue_position", state == "COMPLETED" ? nil : "1")
        o.string("estimated_completion_time", state == "COMPLETED" ? nil : "2026-01-01T00:00:00Z")
        return String(decoding: o.finish(), as: UTF8.self)
    }

    /// Day files made, by account (its SID and the hash of its whole definition: tests define accounts of the same SID
    /// differently), resource, day and revision: a benchmark's day of 200,000 records takes seconds to make, and a file
    /// is the same every time it is asked for (at most 64 kept).
    static let made = Mutex<[String: [UInt8]]>([:])

    /// One day's file: the list records reshaped as an export writes them, one JSON object per line, gzipped.
    static func file(_ account: SandboxAccount, resource: String, day: Int, revision: Int) -> [UInt8] {
        let key = "\(account.sid)|\(account.hashValue)|\(resource)|\(day)|\(revision)"
        if let file = made.withLock({ $0[key] }) { return file }
        var lines: [UInt8] = []
        for record in SandboxData.records(account, resource, day: day, revision: revision) {
            guard let object = try? JSONSerialization.jsonObject(with: Data(record.json)) as? [String: Any] else { continue }
            var o = JSONObject()
            for key in object.keys.sorted() where !dropped.contains(key) {
                let value = object[key]
                if times.contains(key) {
                    o.string(key, (value as? String).flatMap(isoTime))
                } else if let text = value as? String {
                    // Exports write counts as numbers where the list writes strings.
                    o.raw(key, ["num_segments", "num_media", "duration"].contains(key) && Int(text) != nil ? text : jsonString(text))
                } else if value is NSNull || value == nil {
                    o.raw(key, "null")
                } else if let data = try? JSONSerialization.data(withJSONObject: value!, options: [.fragmentsAllowed]) {
                    o.raw(key, String(decoding: data, as: UTF8.self))
                }
            }
            lines += o.finish()
            lines.append(0x0A)
        }
        var gz: [UInt8] = []
        if let writer = try? GzipWriter(sink: { gz.append(contentsOf: $0) }) {
            try? writer.write(lines)
            try? writer.finish()
        }
        made.withLock {
            if $0.count >= 64 { $0.removeAll() }
            $0[key] = gz
        }
        return gz
    }

    /// The list's "Fri, 20 Nov 2026 00:00:01 +0000" as an export writes it, "2026-11-20T00:00:01Z" (the sandbox's
    /// times are all UTC; a DateFormatter per record made a benchmark's day take minutes).
    static func isoTime(_ rfc: String) -> String? {
        let parts = rfc.split(separator: " ")
        guard parts.count == 6, parts[5] == "+0000", let day = Int(parts[1]),
            let month = SandboxData.months.firstIndex(of: String(parts[2])),
            let year = Int(parts[3]), parts[4].count == 8
        else { return nil }
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(year)-\(two(month + 1))-\(two(day))T\(parts[4])Z"
    }

    static func jsonString(_ text: String) -> String {
        var out: [UInt8] = []
        JSONObject.appendString(text, to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}

extension SandboxAPI {
    /// `/v1/Exports/{Calls|Messages}/Jobs` (POST: create; GET: list), `/v1/Exports/Jobs/{JS…}` (GET: one job, each poll
    /// bringing it closer to COMPLETED), `/v1/Exports/{Resource}/Days/{day}` (307 to the file, 404 before it exists).
    func bulkExport(_ request: SandboxRequest, caller: SandboxAccount, parts: [String]) -> SandboxResponse {
        let f = faults.withLock { $0 }
        if parts.count == 4, parts[2] == "Jobs" {
            let sid = parts[3]
            guard let job = bulkExports.withLock({ $0.jobs[sid] }), job.account == caller.sid else { return Self.notFound(request.path) }
            if request.method == "DELETE" {
                bulkExports.withLock { _ = $0.jobs.removeValue(forKey: sid) }
                return .ok(status: 204, headers: [], body: [])
            }
            let polls = bulkExports.withLock { state -> Int in
                state.jobs[sid]!.polls += 1
                return state.jobs[sid]!.polls
            }
            let done = polls >= f.bulkExportPolls
            if done {
                bulkExports.withLock { state in
                    for day in job.start.ordinal...job.end.ordinal {
                        state.files.insert("\(caller.sid)|\(job.resource)|\(Day(ordinal: day))")
                    }
                }
            }
            return .json(200, Array(SandboxBulkExport.jobJSON(job, state: done ? "COMPLETED" : "RUNNING").utf8))
        }
        guard parts.count >= 4, SandboxBulkExport.resources[parts[2]] != nil else { return Self.notFound(request.path) }
        if parts.count == 4, parts[3] == "Jobs", request.method == "POST" {
            let form = Self.form(request.body)
            guard let start = form["StartDay"].flatMap(Day.init), let end = form["EndDay"].flatMap(Day.init), start <= end,
                let name = form["FriendlyName"], !name.isEmpty
            else { return Self.error(400, 20001, "StartDay, EndDay (yyyy-MM-dd) and FriendlyName are required") }
            guard end.ordinal <= Day.today.ordinal - 2 else {
                return Self.error(400, 20001, "EndDay must be 2 days earlier than the current UTC day")
            }
            let days = end.ordinal - start.ordinal + 1
            let root = caller.parent ?? caller.sid
            let key = "\(root)|\(Day.today)"
            let created = bulkExports.withLock { state -> SandboxBulkExport.Job? in
                guard state.used[key, default: 0] + days <= f.bulkExportQuota else { return nil }
                state.used[key, default: 0] += days
                let sid = "JS" + String(format: "%016llx%016llx", SandboxData.hash(caller.sid, name), UInt64(state.jobs.count + 1))
                let job = SandboxBulkExport.Job(sid: sid, account: caller.sid, resource: parts[2], name: name, start: start, end: end)
                state.jobs[sid] = job
                return job
            }
            guard let job = created else {
                stats.withLock { $0.exportDaysRefused += days }
                return Self.error(
                    429, 20429, "Too Many Requests", detail: "the account's \(f.bulkExportQuota) export days for today are used",
                    headers: [("Retry-After", "3600")])
            }
            stats.withLock { $0.exportJobsCreated += 1 }
            return .json(201, Array(SandboxBulkExport.jobJSON(job, state: "SUBMITTED").utf8))
        }
        if parts.count == 4, parts[3] == "Jobs" {
            let jobs = bulkExports.withLock { $0.jobs.values.filter { $0.account == caller.sid && $0.resource == parts[2] } }
                .sorted { $0.sid < $1.sid }
            let body =
                "{\"jobs\": [\(jobs.map { SandboxBulkExport.jobJSON($0, state: $0.polls >= f.bulkExportPolls ? "COMPLETED" : "RUNNING") }.joined(separator: ", "))], \"meta\": {\"page\": 0, \"page_size\": 1000, \"next_page_url\": null, \"key\": \"jobs\"}}"
            return .json(200, Array(body.utf8))
        }
        if parts.count == 5, parts[3] == "Days", let day = Day(parts[4]) {
            guard bulkExports.withLock({ $0.files.contains("\(caller.sid)|\(parts[2])|\(day)") }) else {
                return Self.notFound(request.path)
            }
            stats.withLock { $0.exportDayRedirects += 1 }
            let signature = Digest.sha256Hex(Array("export|\(caller.sid)|\(parts[2])|\(day)".utf8)).prefix(32)
            let location =
                f.bulkExportRedirect
                ?? "\(Self.base(request))/sandbox-exports/\(caller.sid)/\(parts[2])/\(day).json.gz?X-Amz-Signature=\(signature)"
            return .ok(
                status: 307, headers: [("Location", location), ("Content-Type", "application/json")],
                body: Array("{\"redirect_to\": \"\(location)\"}".utf8))
        }
        return Self.notFound(request.path)
    }

    /// `/sandbox-exports/{AC}/{Resource}/{day}.json.gz`: presigned (a wrong signature is refused), and any
    /// `Authorization` header is refused, as S3 refuses a second auth mechanism.
    func exportDownload(_ request: SandboxRequest) -> SandboxResponse {
        if request.headers["authorization"] != nil {
            stats.withLock { $0.exportDownloadsWithCredentials += 1 }
            return .ok(
                status: 400, headers: [("Content-Type", "application/xml")],
                body: Array("<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>".utf8))
        }
        let parts = request.path.split(separator: "/").map(String.init)
        guard parts.count == 4, let account = accounts.first(where: { $0.sid == parts[1] }),
            let resource = SandboxBulkExport.resources[parts[2]], parts[3].hasSuffix(".json.gz"),
            let day = Day(String(parts[3].dropLast(8))),
            request.parameter("X-Amz-Signature")
                == String(Digest.sha256Hex(Array("export|\(account.sid)|\(parts[2])|\(day)".utf8)).prefix(32))
        else {
            return .ok(
                status: 403, headers: [("Content-Type", "application/xml")], body: Array("<Error><Code>AccessDenied</Code></Error>".utf8))
        }
        stats.withLock { $0.exportDownloads += 1 }
        let revision = faults.withLock { $0.twilioRevision }
        let f = faults.withLock { $0 }
        return withFaults(
            f,
            .ok(
                status: 200, headers: [("Content-Type", "application/octet-stream")],
                body: SandboxBulkExport.file(account, resource: resource, day: day.ordinal, revision: revision))
        ) { status, code, message, headers in Self.error(status, code, message, headers: headers) }
    }
}
