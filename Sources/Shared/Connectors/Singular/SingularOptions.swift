import Foundation
import HuskimoCore

/// A Singular channel's own keys: which of Singular's APIs it reads, and how the v2.0 reports are run.
///
/// - `api` (`v2` | `legacy`, default `v2`): `v2` is the Reporting API v2.0 (availability, then an asynchronous report
///   per day, downloaded from its presigned URL); `legacy` the 0.3 endpoints `/api/{key}/adv/…`, for accounts that
///   still have them.
/// - `report_wait_s` (default 1800): how long one report may stay queued or running before the job goes back to the
///   delay queues (transient); also the longest wait for a free report slot.
/// - `report_poll_s` (default 2): the first pause between status polls; each later one is 1.5 times longer, at most 30 s.
/// - `report_attempts` (default 3): reports created for a day that keep ending FAILED before the job is parked with
///   the last report's id and Singular's message.
/// - `concurrent_reports` (default 100, Singular's documented limit): reports of one API key running at once across
///   the whole fleet (slots held on the broker, see ``SlotLeases``).
/// - `download_hosts` (comma-separated host patterns, default `*.singular.net, *.amazonaws.com`): the hosts a
///   report's download URL may name besides `api_url`'s; any other host is refused (the URL comes from the API).
struct SingularOptions: Sendable, Equatable {
    enum API: String, Sendable, CaseIterable { case v2, legacy }

    var api = API.v2
    var reportWait = 1800.0
    var reportPoll = 2.0
    var reportAttempts = 3
    var concurrentReports = 100
    var downloadHosts = ["*.singular.net", "*.amazonaws.com"]

    static let keys = ["api", "report_wait_s", "report_poll_s", "report_attempts", "concurrent_reports", "download_hosts"]

    /// The options of `channel` and what is wrong with them (key, message); defaults where a key is absent or wrong.
    static func read(_ channel: ChannelConfig) -> (options: SingularOptions, problems: [(key: String, message: String)]) {
        var o = SingularOptions()
        var reader = ChannelOptions(channel)
        if let text = reader.values["api"] {
            if let api = API(rawValue: text) {
                o.api = api
            } else {
                reader.problem("api", "expected v2 or legacy, got \"\(text.printable(limit: 40))\"")
            }
        }
        o.reportWait = reader.seconds("report_wait_s", 1...86_400) ?? o.reportWait
        o.reportPoll = reader.seconds("report_poll_s", 0.01...300) ?? o.reportPoll
        o.reportAttempts = reader.integer("report_attempts", 1...20) ?? o.reportAttempts
        o.concurrentReports = reader.integer("concurrent_reports", 1...1_000) ?? o.concurrentReports
        o.downloadHosts = reader.hosts("download_hosts") ?? o.downloadHosts
        var problems = reader.problems
        let values = reader.values
        if o.api == .legacy {
            for key in keys.dropFirst() where values[key] != nil {
                problems.append((key, "applies to api: v2 only (this channel reads the legacy endpoints)"))
            }
        }
        return (o, problems)
    }

    /// Whether a download URL's host is `api_url`'s or one of ``downloadHosts``.
    func allowsDownload(host: String, apiHost: String) -> Bool {
        PresignedURL.allows(host: host, apiHost: apiHost, patterns: downloadHosts)
    }
}
