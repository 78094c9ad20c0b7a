import Foundation
import HuskimoCore
import Synchronization

/// The sandbox Singular Reporting API v2.0, over the same records as the 0.3 endpoints: the key in the `Authorization`
/// header; `GET /api/v2.0/data_availability_status`; `POST /api/v2.0/create_async_report` (a form) →
/// `GET /api/v2.0/get_report_status` (QUEUED on the first poll, STARTED on the second, then DONE or FAILED) → a
/// presigned `GET /singular-downloads/{id}.csv?Expires=…&Signature=…` that refuses any `Authorization` header.
/// Answers are Singular's envelope `{"status": 0, "substatus": 0, "value": …}`; errors `{"status": 1, "substatus": N,
/// "value": "…"}`. Reports of one key running at once (QUEUED or STARTED) beyond ``SandboxFaults/singularReportLimit``
/// are refused (429).
extension SandboxSingular {
    /// 0.3's record key → the v2.0 report column that carries the same value (what Singular calls it today).
    static let v2Names: [String: String] = [
        "ad_network": "source", "campaign_name": "adn_campaign_name", "campaign_url": "adn_campaign_url",
        "subcampaign_name": "adn_sub_campaign_name", "app_id": "site_public_id", "campaign_network_id": "adn_campaign_id",
        "country": "country_field", "impressions": "adn_impressions", "clicks": "adn_clicks", "installs": "adn_installs",
        "cost": "adn_cost", "date": "start_date", "creative_name": "adn_creative_name", "creative_text": "creative_text",
        "image": "creative_image", "image_hash": "creative_image_hash", "width": "creative_width", "height": "creative_height",
        "is_video": "creative_is_video",
    ]

    static let iso3: [String: String] = ["US": "USA", "GB": "GBR", "DE": "DEU", "JP": "JPN", "BR": "BRA"]

    /// One report as the sandbox keeps it.
    struct Report: Sendable {
        var key: String
        var resource: String
        var day: Int
        var revision: Int
        var columns: [String]
        var iso3: Bool
        var polls = 0
        var fails: Bool
        var stuck: Bool
        var broken: Bool
        /// The `source` filter: (`in` or `not in`, the sources), nil for every source.
        var sources: (op: String, values: [String])? = nil
        /// The most rows the report may have (0: any); more ends it FAILED.
        var rowLimit = 0
        var created = Date()
        /// QUEUED or STARTED (a report nobody polls to the end stops counting after two minutes).
        var running: Bool { (stuck || polls < 3) && Date().timeIntervalSince(created) < 120 }
    }

    /// Every report the sandbox has made, and what is left of each counted fault (``SandboxFaults/singularFailingDays``…).
    struct Reports: Sendable {
        var byID: [String: Report] = [:]
        var left: [String: Int] = [:]

        /// Whether the fault `kind` of `counts` strikes `day` this time (its count then goes down by one).
        mutating func strikes(_ kind: String, _ counts: [String: Int], _ day: String) -> Bool {
            let remaining = left[kind + "/" + day] ?? counts[day] ?? 0
            left[kind + "/" + day] = max(0, remaining - 1)
            return remaining > 0
        }
    }

    /// The report's CSV: its columns in reverse order of the request (a reader must go by the header, not the order),
    /// plus `adn_original_currency`, which nobody asked for; strings quoted, numbers bare, nulls empty, booleans
    /// `True`/`False` (as Singular's CSV writes them).
    static func csv(_ report: Report, key: Key) -> [UInt8] {
        let columns = Array(report.columns.reversed()) + ["adn_original_currency"]
        var out = Array(columns.joined(separator: ",").utf8) + Array("\r\n".utf8)
        var rows: [[String: (value: String?, string: Bool)]] = filtered(report, key: key).map { record in
            var byName: [String: (value: String?, string: Bool)] = [:]
            for field in record.fields {
                if let name = v2Names[field.key] { byName[name] = (field.value, field.string) }
            }
            if report.iso3, let country = byName["country_field"]?.value { byName["country_field"] = (iso3[country] ?? country, true) }
            if let video = byName["creative_is_video"]?.value { byName["creative_is_video"] = (video == "true" ? "True" : "False", false) }
            byName["adn_original_currency"] = ("USD", true)
            return byName
        }
        if report.broken {
            // The first row's impressions are not a number (on an empty day, a row of its own).
            if rows.isEmpty {
                rows = [
                    [
                        "source": ("AdWords", true), "adn_campaign_name": ("broken", true), "creative_image": ("x", true),
                        "creative_image_hash": ("x", true), "creative_is_video": ("False", false),
                        "start_date": (Day(ordinal: report.day).description, true),
                    ]
                ]
            }
            rows[0]["adn_impressions"] = ("many", true)
        }
        for byName in rows {
            let cells = columns.map { name -> String in
                guard let cell = byName[name], let value = cell.value else { return "" }
                return cell.string ? "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : value
            }
            out += Array(cells.joined(separator: ",").utf8) + Array("\r\n".utf8)
        }
        return out
    }

    /// The records a report covers (its `source` filter applied).
    static func filtered(_ report: Report, key: Key) -> [Record] {
        let resource = report.resource == "creatives" ? "creative_stats" : "stats"
        let all = records(key: key, resource: resource, day: report.day, revision: report.revision)
        guard let filter = report.sources else { return all }
        return all.filter { record in
            let source = record.fields.first { $0.key == "ad_network" }?.value ?? ""
            return filter.values.contains(source) == (filter.op == "in")
        }
    }

    /// Every source the sandbox's records come from (what data availability lists).
    package static let sources = ["AdWords", "Facebook", "Twitter", "Unity Ads", "ironSource «Ads»", "Apple Search Ads"]

    /// The signature of a report's download URL (what makes it presigned).
    static func signature(_ id: String) -> String { String(Digest.sha256Hex(Array("sandbox-presign/\(id)".utf8)).prefix(32)) }
}

extension SandboxAPI {
    /// Singular's envelope around a value (JSON text).
    static func singularOK(_ value: String) -> SandboxResponse {
        .json(200, Array("{\"status\": 0, \"substatus\": 0, \"value\": \(value)}".utf8))
    }

    /// Singular's error envelope.
    static func singularError(_ http: Int, _ substatus: Int, _ message: String, headers: [(String, String)] = []) -> SandboxResponse {
        var o = JSONObject()
        o.raw("status", "1")
        o.raw("substatus", String(substatus))
        o.string("value", message)
        return .json(http, o.finish(), headers: headers)
    }

    /// `/api/v2.0/…`.
    func singularV2(_ request: SandboxRequest) -> SandboxResponse {
        let f = faults.withLock { $0 }
        // The key belongs in the Authorization header; one seen in the URL is counted (a test asserts none is).
        let url = request.path + "?" + request.rawQuery
        if SandboxSingular.keys.contains(where: { url.contains($0.key) }) { stats.withLock { $0.singularKeyInURL += 1 } }
        guard let header = request.headers["authorization"], let key = SandboxSingular.keys.first(where: { $0.key == header }),
            !f.revoked.contains(header)
        else { return Self.singularError(401, 2, "Invalid API key") }
        if f.latencyMs > 0 { usleep(UInt32(f.latencyMs * 1000)) }
        let response: SandboxResponse
        switch (request.method, request.path) {
        case ("GET", "/api/v2.0/data_availability_status"):
            guard let day = request.parameter("data_date").flatMap(Day.init) else {
                return Self.singularError(400, 4, "data_date must be YYYY-MM-DD")
            }
            let ready = !singularReports.withLock { $0.strikes("not-ready", f.singularNotReadyDays, day.description) }
            stats.withLock { $0.singularAvailability += 1 }
            let sources = SandboxSingular.sources.map { ($0, $0 != "Facebook" || ready) }.map { name, available in
                "{\"source\": \"\(name.replacingOccurrences(of: "\"", with: "\\\""))\", \"username\": \"ops@example.com\", \"status\": \"\(available ? "SUCCESS" : "PROCESSING")\", \"is_available\": \(available), \"is_empty_data\": false, \"is_active_last_30_days\": true, \"last_updated_utc\": \"\(day)T06:00:00\"}"
            }
            response = Self.singularOK("{\"is_all_data_available\": \(ready), \"data_sources\": [\(sources.joined(separator: ", "))]}")
        case ("POST", "/api/v2.0/create_async_report"):
            response = createReport(request, key: key, f)
        case ("GET", "/api/v2.0/get_report_status"):
            response = reportStatus(request, key: key)
        default:
            return Self.singularError(404, 1, "no such endpoint: \(request.method) \(request.path)")
        }
        return withFaults(f, response) { status, _, message, headers in Self.singularError(status, 9, message, headers: headers) }
    }

    private func createReport(_ request: SandboxRequest, key: SandboxSingular.Key, _ f: SandboxFaults) -> SandboxResponse {
        let form = Self.form(request.body)
        guard let start = form["start_date"].flatMap(Day.init), let end = form["end_date"].flatMap(Day.init), start == end else {
            return Self.singularError(400, 4, "start_date and end_date must be one day (YYYY-MM-DD) in the sandbox")
        }
        guard form["format"] == "csv" else { return Self.singularError(400, 4, "format: the sandbox serves csv") }
        let dimensions = (form["dimensions"] ?? "").split(separator: ",").map(String.init)
        let resource = dimensions.contains("adn_creative_name") ? "creatives" : "campaigns"
        let known = Set(SandboxSingular.v2Names.values)
        let asked =
            dimensions + (form["metrics"] ?? "").split(separator: ",").map(String.init)
            + (form["discrepancy_metrics"] ?? "").split(separator: ",").map(String.init)
        if let unknown = asked.first(where: { !known.contains($0) }) {
            return Self.singularError(400, 5, "unknown dimension or metric: \(unknown)")
        }
        let columns = asked + (form["time_breakdown"] == "day" ? ["start_date"] : [])
        var sources: (op: String, values: [String])?
        if let text = form["filters"] {
            guard let filters = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]], filters.count == 1,
                filters[0]["dimension"] as? String == "source", let op = filters[0]["operator"] as? String, ["in", "not in"].contains(op),
                let values = filters[0]["values"] as? [String]
            else { return Self.singularError(400, 5, "filters: the sandbox takes one filter on source, operator in or not in") }
            sources = (op, values)
        }
        let day = start.description
        return singularReports.withLock { state -> SandboxResponse in
            let running = state.byID.values.filter { $0.key == key.key && $0.running }.count
            if running >= f.singularReportLimit {
                stats.withLock { $0.singularReportsRefused += 1 }
                return Self.singularError(429, 7, "too many concurrent reports: \(running) running, the limit is \(f.singularReportLimit)")
            }
            let fails = state.strikes("failing", f.singularFailingDays, day)
            let stuck = state.strikes("stuck", f.singularStuckDays, day)
            let id =
                "rep"
                + String(Digest.sha256Hex(Array("\(key.key)/\(day)/\(state.byID.count)/\(Date().timeIntervalSince1970)".utf8)).prefix(20))
            state.byID[id] = SandboxSingular.Report(
                key: key.key, resource: resource, day: start.ordinal, revision: f.singularRevision, columns: columns,
                iso3: form["country_code_format"] != "iso", fails: fails, stuck: stuck,
                broken: f.singularBrokenDays.contains(day), sources: sources, rowLimit: f.singularRowsPerReport)
            let now = state.byID.values.filter { $0.key == key.key && $0.running }.count
            stats.withLock {
                $0.singularReportsCreated += 1
                $0.singularMaxRunningReports = max($0.singularMaxRunningReports, now)
            }
            return Self.singularOK("{\"report_id\": \"\(id)\"}")
        }
    }

    private func reportStatus(_ request: SandboxRequest, key: SandboxSingular.Key) -> SandboxResponse {
        guard let id = request.parameter("report_id") else { return Self.singularError(400, 4, "report_id required") }
        let base = Self.base(request)
        return singularReports.withLock { state -> SandboxResponse in
            guard var report = state.byID[id], report.key == key.key else { return Self.singularError(404, 6, "no report \(id)") }
            report.polls += 1
            state.byID[id] = report
            let status: String
            var extra = ""
            if report.stuck || report.polls == 1 {
                status = "QUEUED"
            } else if report.polls == 2 {
                status = "STARTED"
            } else if report.fails {
                status = "FAILED"
                extra = ", \"error_message\": \"Query timed out on the reporting cluster\""
            } else if report.rowLimit > 0,
                let rows = SandboxSingular.keys.first(where: { $0.key == report.key }).map({
                    SandboxSingular.filtered(report, key: $0).count
                }), rows > report.rowLimit
            {
                stats.withLock { $0.singularReportsTooLarge += 1 }
                status = "FAILED"
                extra =
                    ", \"error_message\": \"Report exceeds the limit of \(report.rowLimit) rows per report (\(rows) rows): add filters\""
            } else {
                status = "DONE"
                let expires = Int(Date().timeIntervalSince1970) + 3600
                extra =
                    ", \"download_url\": \"\(base)/singular-downloads/\(id).csv?Expires=\(expires)&Signature=\(SandboxSingular.signature(id))\", \"url_expires_in\": 3600"
            }
            return Self.singularOK("{\"report_id\": \"\(id)\", \"status\": \"\(status)\"\(extra)}")
        }
    }

    /// `/singular-downloads/{id}.csv`: presigned, so any `Authorization` header is refused (as S3 refuses a second
    /// auth mechanism), and so is a wrong signature.
    func singularDownload(_ request: SandboxRequest) -> SandboxResponse {
        let f = faults.withLock { $0 }
        let url = request.path + "?" + request.rawQuery
        if SandboxSingular.keys.contains(where: { url.contains($0.key) }) { stats.withLock { $0.singularKeyInURL += 1 } }
        if request.headers["authorization"] != nil {
            stats.withLock { $0.singularDownloadsWithCredentials += 1 }
            return .ok(
                status: 400, headers: [("Content-Type", "application/xml")],
                body: Array("<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>".utf8))
        }
        let id = String(request.path.dropFirst("/singular-downloads/".count).dropLast(".csv".count))
        guard request.parameter("Signature") == SandboxSingular.signature(id),
            let report = singularReports.withLock({ $0.byID[id] }), let key = SandboxSingular.keys.first(where: { $0.key == report.key })
        else {
            return .ok(
                status: 403, headers: [("Content-Type", "application/xml")], body: Array("<Error><Code>AccessDenied</Code></Error>".utf8))
        }
        stats.withLock { $0.pages += 1 }
        return withFaults(f, .ok(status: 200, headers: [("Content-Type", "text/csv")], body: SandboxSingular.csv(report, key: key))) {
            status, _, message, headers in Self.singularError(status, 9, message, headers: headers)
        }
    }
}
