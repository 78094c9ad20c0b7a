import Foundation
import HuskimoCore

/// What a v2.0 report asks for to fill a 0.3 table, and which report column fills which 0.3 field.
struct SingularReportSpec: Sendable {
    /// Report columns in the order they are asked for: (v2 dimension or metric, the 0.3 record key it becomes).
    let columns: [(name: String, key: String)]
    let dimensions: [String]
    let metrics: [String]
    let discrepancyMetrics: [String]

    /// The 0.3 keys v2 fills (the other columns of the table stay NULL in v2 mode).
    var keys: Set<String> { Set(columns.map(\.key)) }

    /// Campaign stats. 0.3's `campaign_type`, `revenue` and `last_modified` have no v2.0 counterpart.
    static let campaigns = SingularReportSpec(
        dimensions: [
            ("source", "ad_network"), ("adn_campaign_name", "campaign_name"), ("adn_campaign_url", "campaign_url"),
            ("adn_sub_campaign_name", "subcampaign_name"), ("site_public_id", "app_id"), ("adn_campaign_id", "campaign_network_id"),
            ("country_field", "country"),
        ],
        metrics: [("adn_impressions", "impressions"), ("adn_cost", "cost")],
        discrepancyMetrics: [("adn_clicks", "clicks"), ("adn_installs", "installs")])

    /// Creative stats. 0.3's `campaign_type` and `modified_at` have no v2.0 counterpart.
    static let creatives = SingularReportSpec(
        dimensions: [
            ("source", "ad_network"), ("adn_creative_name", "creative_name"), ("creative_text", "creative_text"),
            ("creative_image", "image"), ("creative_image_hash", "image_hash"), ("creative_width", "width"),
            ("creative_height", "height"), ("creative_is_video", "is_video"), ("adn_campaign_name", "campaign_name"),
            ("adn_campaign_url", "campaign_url"), ("adn_sub_campaign_name", "subcampaign_name"), ("site_public_id", "app_id"),
            ("adn_campaign_id", "campaign_network_id"),
        ],
        metrics: [("adn_impressions", "impressions"), ("adn_cost", "cost")],
        discrepancyMetrics: [("adn_clicks", "clicks"), ("adn_installs", "installs")])

    private init(dimensions: [(String, String)], metrics: [(String, String)], discrepancyMetrics: [(String, String)]) {
        // Every report carries the day it is for (time_breakdown=day): `start_date` becomes 0.3's `date`.
        columns =
            dimensions.map { ($0.0, $0.1) } + metrics.map { ($0.0, $0.1) } + discrepancyMetrics.map { ($0.0, $0.1) } + [
                ("start_date", "date")
            ]
        self.dimensions = dimensions.map(\.0)
        self.metrics = metrics.map(\.0)
        self.discrepancyMetrics = discrepancyMetrics.map(\.0)
    }

    /// Which sources one report of a split day covers (Singular's `filters` on the `source` dimension).
    enum Sources: Sendable, Equatable, CustomStringConvertible {
        case only(String)
        case allBut([String])

        var description: String {
            switch self {
            case .only(let source): return "source \(source.printable(limit: 60))"
            case .allBut(let sources): return "every source but the \(sources.count) listed"
            }
        }

        /// The `filters` form field: `[{"dimension": "source", "operator": "in", "values": [...]}]`.
        var filter: String {
            let (op, values): (String, [String]) =
                switch self {
                case .only(let source): ("in", [source])
                case .allBut(let sources): ("not in", sources)
                }
            var json = Array("[{\"dimension\": \"source\", \"operator\": \"\(op)\", \"values\": [".utf8)
            for (i, value) in values.enumerated() {
                if i > 0 { json += Array(", ".utf8) }
                JSONText.appendString(value, to: &json)
            }
            json += Array("]}]".utf8)
            return String(decoding: json, as: UTF8.self)
        }
    }

    /// The form fields of `create_async_report` for one day: ISO 3166 alpha-2 countries (v2's default is alpha-3,
    /// 0.3 stored alpha-2), one row per day, no alignment rows (they would add rows 0.3 never had), CSV.
    func query(day: Day, sources: Sources? = nil) -> [(String, String)] {
        (sources.map { [("filters", $0.filter)] } ?? []) + [
            ("start_date", "\(day)"), ("end_date", "\(day)"), ("format", "csv"), ("dimensions", dimensions.joined(separator: ",")),
            ("metrics", metrics.joined(separator: ",")), ("discrepancy_metrics", discrepancyMetrics.joined(separator: ",")),
            ("time_breakdown", "day"), ("country_code_format", "iso"), ("display_alignment", "false"),
        ]
    }
}

extension SingularTable {
    /// The v2.0 report that fills this table.
    var report: SingularReportSpec { resource == .creatives ? .creatives : .campaigns }
}

/// Singular's Reporting API v2.0 for one channel: the key goes in the `Authorization` header, never in a URL; every
/// answer is the envelope `{"status": 0, "substatus": …, "value": …}` (status 1: an error whose `value` says why).
/// Blocking.
struct SingularReportsAPI: Sendable {
    let channel: ChannelConfig
    let client: APIClient
    let options: SingularOptions

    /// The most a control answer (availability, report, status) may be: they are small.
    static let maxAnswerBytes = 4 << 20

    /// A day's readiness: whether every active data source has reported, and which have not.
    struct Availability: Sendable {
        var ready: Bool
        var waitingFor: [String]
        /// Every source listed (the active ones): what a day too large for one report is split by.
        var sources: [String] = []
    }

    /// A report's state.
    enum Status: Sendable, Equatable {
        case pending(String)
        case done(downloadURL: String)
        case failed(String)
    }

    private var base: String { channel.apiURL.withoutTrailingSlashes }

    private func request(_ method: HTTPRequest.Method, _ path: String, query: [(String, String)]) -> HTTPRequest {
        let encoded = PercentEncoding.query(query)
        var headers = [("Authorization", channel.apiKey.reveal()), ("Accept", "application/json")]
        var request: HTTPRequest
        if method == .POST {
            headers.append(("Content-Type", "application/x-www-form-urlencoded"))
            request = HTTPRequest(method: .POST, url: base + path, headers: headers, body: Array(encoded.utf8), timeout: client.timeout)
        } else {
            request = HTTPRequest(
                method: method, url: base + path + (encoded.isEmpty ? "" : "?" + encoded), headers: headers, timeout: client.timeout)
        }
        request.redact = [channel.apiKey]
        request.maxBodyBytes = Self.maxAnswerBytes
        return request
    }

    /// GETs or POSTs one control request and returns the envelope's `value`. - Throws: ``APIError`` (an HTTP error, or
    /// status 1 with Singular's message: permanent), ``ConversionError`` for an answer that is not the envelope.
    private func call(_ request: HTTPRequest, tally: inout APIClient.Tally) throws -> Any {
        try client.fetch(request, api: .singular, account: channel.limiterKey, tally: &tally) { body in
            guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any], let status = object["status"] as? Int
            else {
                throw ConversionError(
                    table: "(Singular v2.0)", field: "(response)", recordSID: nil,
                    reason:
                        "expected {\"status\": …, \"value\": …} from \(request.displayURL), got \(String(decoding: body.prefix(80), as: UTF8.self).printable(limit: 80))"
                )
            }
            guard status == 0 else {
                let value = (object["value"] as? String) ?? "status \(status)"
                let substatus = (object["substatus"] as? Int).map { " (substatus \($0))" } ?? ""
                throw APIError(
                    api: .singular, status: 200, code: nil,
                    message: "Singular answered status \(status)\(substatus): \(value)".redacting([channel.apiKey]).printable(),
                    url: request.displayURL, errorClass: .permanent, method: request.method.rawValue)
            }
            return object["value"] ?? NSNull()
        }
    }

    private func malformed(_ what: String, _ request: HTTPRequest) -> ConversionError {
        ConversionError(
            table: "(Singular v2.0)", field: "(response)", recordSID: nil,
            reason: "\(what) (\(request.method.rawValue) \(request.displayURL))")
    }

    /// `GET /api/v2.0/data_availability_status`: whether `day` is complete for every active source.
    func availability(_ day: Day, tally: inout APIClient.Tally) throws -> Availability {
        let request = request(
            .GET, "/api/v2.0/data_availability_status",
            query: [("data_date", "\(day)"), ("format", "json"), ("display_non_active_sources", "false")])
        guard let value = try call(request, tally: &tally) as? [String: Any], let ready = value["is_all_data_available"] as? Bool else {
            throw malformed("no is_all_data_available in the availability answer", request)
        }
        let sources = (value["data_sources"] as? [[String: Any]]) ?? []
        let waiting = sources.filter { ($0["is_available"] as? Bool) == false }.map { source in
            let name = (source["source"] as? String) ?? "?"
            let status = (source["status"] as? String).map { " (\($0))" } ?? ""
            return (name + status).printable(limit: 80)
        }
        let names = sources.compactMap { $0["source"] as? String }.filter { !$0.isEmpty && $0.utf8.count <= 256 }
        return Availability(ready: ready, waitingFor: waiting, sources: Array(Set(names)).sorted())
    }

    /// `POST /api/v2.0/create_async_report` for one table and day. - Returns: the report's id.
    func create(
        _ table: SingularTable, _ day: Day, sources: SingularReportSpec.Sources? = nil, tally: inout APIClient.Tally
    ) throws -> String {
        let request = request(.POST, "/api/v2.0/create_async_report", query: table.report.query(day: day, sources: sources))
        guard let value = try call(request, tally: &tally) as? [String: Any], let id = value["report_id"] as? String,
            Self.isReportID(id)
        else { throw malformed("no usable report_id in the answer to create_async_report", request) }
        return id
    }

    /// `GET /api/v2.0/get_report_status`.
    func status(_ id: String, tally: inout APIClient.Tally) throws -> Status {
        let request = request(.GET, "/api/v2.0/get_report_status", query: [("report_id", id)])
        guard let value = try call(request, tally: &tally) as? [String: Any], let status = value["status"] as? String else {
            throw malformed("no status for report \(id)", request)
        }
        switch status {
        case "DONE":
            guard let url = value["download_url"] as? String else {
                throw malformed("report \(id) is DONE without a download_url", request)
            }
            return .done(downloadURL: url)
        case "FAILED":
            return .failed(((value["error_message"] as? String) ?? "no error_message").redacting([channel.apiKey]).printable(limit: 300))
        default:
            return .pending(status.printable(limit: 20))
        }
    }

    /// Whether a FAILED report's message says it had too many rows (then the day is asked for source by source).
    static func isTooManyRows(_ message: String) -> Bool {
        let text = message.lowercased()
        return text.contains("rows")
            && (text.contains("too many") || text.contains("too large") || text.contains("exceed") || text.contains("limit"))
    }

    /// A report id is Singular's opaque token: it travels in a URL and into error texts, so only a bounded, plain one is used.
    static func isReportID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 128 && id.utf8.allSatisfy { $0 < 0x80 && (isalnum(Int32($0)) != 0 || $0 == 0x2D || $0 == 0x5F) }
    }

    /// The download request of a DONE report: no credentials (the URL is presigned), and only to `api_url`'s host or a
    /// `download_hosts` one, over https (http only to this machine, as the sandbox serves it).
    /// - Throws: ``PagingError`` (permanent) naming the refused URL's origin.
    func download(_ url: String) throws -> HTTPRequest {
        var request = try PresignedURL.request(
            url, what: "the report's download_url", apiBase: base, hosts: options.downloadHosts, accept: "text/csv",
            timeout: client.timeout)
        request.redact = [channel.apiKey]
        return request
    }
}
