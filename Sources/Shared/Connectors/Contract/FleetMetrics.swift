import CoreMetrics
package import HuskimoCore

/// Every metric Huskimo records, in one place: names, labels and units are the contract of the dashboards and
/// alerts in `deploy/`. Recorded through the swift-metrics façade (a no-op until HuskimoFleet's `MetricsServer`
/// bootstraps the Prometheus exporter), so library code and tests never depend on an exporter.
///
/// Labels are bounded: resource, table, target, channel (all from the configuration), API, outcome and
/// status class. Never a SID, a day or a key.
package enum FleetMetrics {
    // MARK: Extract workers

    /// One API request answered (`status`) or failed in transport (`nil`).
    package static func request(api: ChannelType, status: Int?, seconds: Double) {
        let statusClass = status.map { $0 == 429 ? "429" : "\($0 / 100)xx" } ?? "transport"
        Counter(label: "huskimo_api_requests_total", dimensions: [("api", api.rawValue), ("status_class", statusClass)]).increment()
        if status == 429 { Counter(label: "huskimo_api_throttled_total", dimensions: [("api", api.rawValue)]).increment() }
        if status == 200 {
            Timer(label: "huskimo_api_page_duration_seconds", dimensions: [("api", api.rawValue)])
                .recordNanoseconds(Int64(seconds * 1e9))
        }
    }

    package enum JobOutcome: String, Sendable { case succeeded, retried, failed }

    /// An extract job finished.
    /// - Parameter seconds: how long the attempt took (nil when unknown: no duration sample).
    package static func job(resource: String, outcome: JobOutcome, seconds: Double?, records: Int = 0, stagedBytes: Int = 0) {
        Counter(label: "huskimo_jobs_total", dimensions: [("resource", resource), ("outcome", outcome.rawValue)]).increment()
        if let seconds {
            Timer(label: "huskimo_job_duration_seconds", dimensions: [("resource", resource)]).recordNanoseconds(Int64(seconds * 1e9))
        }
        if records > 0 { Counter(label: "huskimo_records_total", dimensions: [("resource", resource)]).increment(by: records) }
        if stagedBytes > 0 { Counter(label: "huskimo_staged_bytes_total", dimensions: [("resource", resource)]).increment(by: stagedBytes) }
    }

    package static func jobsInFlight(_ count: Int) {
        Gauge(label: "huskimo_jobs_in_flight").record(count)
    }

    /// The adaptive request limit of a channel's account now.
    package static func apiConcurrency(channel: String, limit: Int) {
        Gauge(label: "huskimo_api_concurrency", dimensions: [("channel", channel)]).record(limit)
    }

    // MARK: Loaders

    /// `identical`: a re-read with the content of what is loaded, skipped (counted apart from `skipped`: already
    /// loaded, or older than what is loaded).
    package enum LoadOutcome: String, Sendable { case succeeded, skipped, identical, failed }

    package static func load(target: String, outcome: LoadOutcome, count: Int = 1) {
        Counter(label: "huskimo_loads_total", dimensions: [("target", target), ("outcome", outcome.rawValue)]).increment(by: count)
    }

    package static func loadedTable(target: String, table: String, rows: Int, seconds: Double) {
        Counter(label: "huskimo_load_rows_total", dimensions: [("target", target), ("table", table)]).increment(by: rows)
        Timer(label: "huskimo_load_duration_seconds", dimensions: [("target", target), ("table", table)])
            .recordNanoseconds(Int64(seconds * 1e9))
    }

    /// 1 while a target's loader is paused by a target-wide failure (credentials refused, schema missing, S3
    /// refusing the staged objects), 0 once it loads again.
    package static func loaderPaused(target: String, _ paused: Bool) {
        Gauge(label: "huskimo_loader_paused", dimensions: [("target", target)]).record(paused ? 1 : 0)
    }

    /// What a replace changed, record by record (by SID): `change` is `changed`, `added` or `removed`.
    package static func changedRecords(target: String, table: String, changed: Int, added: Int, removed: Int) {
        for (change, count) in [("changed", changed), ("added", added), ("removed", removed)] where count > 0 {
            Counter(label: "huskimo_load_changed_records_total", dimensions: [("target", target), ("table", table), ("change", change)])
                .increment(by: count)
        }
    }

    /// The newest day a (target, table, channel) has loaded, as the Unix time of its midnight (UTC).
    package static func loadedDay(target: String, table: String, channel: String, day: Day) {
        Gauge(label: "huskimo_loaded_day_timestamp_seconds", dimensions: [("target", target), ("table", table), ("channel", channel)])
            .record(day.ordinal * 86_400)
    }

    /// How many (channel, day, kind) of a target disagree with the API's billed counts after a re-read (``Reconciler``).
    package static func unreconciledDays(target: String, count: Int) {
        Gauge(label: "huskimo_unreconciled_days", dimensions: [("target", target)]).record(count)
    }

    /// Always 1, labelled with the running version (`huskimo_build_info{version="0.4.0"}`): which versions a fleet runs.
    package static func buildInfo(version: String) {
        Gauge(label: "huskimo_build_info", dimensions: [("version", version)]).record(1)
    }

    // MARK: Queues (polled by loaders)

    /// One poll of a queue. Unknown figures (no management API, or it failed this time) are exported as NaN,
    /// not left at their last value: a stale figure would keep an alert firing, or silent, on old news.
    package static func queue(
        _ name: String, ready: Int, consumers: Int, unacked: Int?, oldestReadyAge: Double?, members: Int? = nil, online: Int? = nil
    ) {
        Gauge(label: "huskimo_queue_members", dimensions: [("queue", name)]).record(members.map(Double.init) ?? .nan)
        Gauge(label: "huskimo_queue_members_online", dimensions: [("queue", name)]).record(online.map(Double.init) ?? .nan)
        Gauge(label: "huskimo_queue_messages_ready", dimensions: [("queue", name)]).record(ready)
        Gauge(label: "huskimo_queue_consumers", dimensions: [("queue", name)]).record(consumers)
        Gauge(label: "huskimo_queue_messages_unacked", dimensions: [("queue", name)]).record(unacked.map(Double.init) ?? .nan)
        Gauge(label: "huskimo_queue_oldest_ready_age_seconds", dimensions: [("queue", name)]).record(oldestReadyAge ?? .nan)
    }
}

extension FleetMetrics {
    /// One exported metric, as Prometheus sees it.
    package struct Metric: Sendable, Hashable {
        package enum Kind: String, Sendable { case counter, gauge, histogram }
        package let name: String
        package let kind: Kind
        package let labels: [String]
        package let help: String
    }

    /// Every metric the functions above record: the machine-readable contract of the dashboards and alerts
    /// (`huskimo-planner metrics` prints it; `deploy/prometheus/metrics.json` is that output, and `deploy/check.py`
    /// checks the alert rules and dashboard queries against it). A test records through every function with the real
    /// exporter and requires exactly these names and kinds.
    static let catalogue: [Metric] = [
        Metric(
            name: "huskimo_api_requests_total", kind: .counter, labels: ["api", "status_class"],
            help: "API requests by answer class (2xx, 4xx, 429, 5xx, transport)"),
        Metric(name: "huskimo_api_throttled_total", kind: .counter, labels: ["api"], help: "API requests answered 429"),
        Metric(name: "huskimo_api_page_duration_seconds", kind: .histogram, labels: ["api"], help: "time to a 200 page"),
        Metric(
            name: "huskimo_jobs_total", kind: .counter, labels: ["resource", "outcome"],
            help: "extract jobs ended: succeeded, retried, failed"),
        Metric(name: "huskimo_job_duration_seconds", kind: .histogram, labels: ["resource"], help: "extract job attempts"),
        Metric(name: "huskimo_records_total", kind: .counter, labels: ["resource"], help: "records extracted"),
        Metric(name: "huskimo_staged_bytes_total", kind: .counter, labels: ["resource"], help: "gzip bytes staged on S3"),
        Metric(name: "huskimo_jobs_in_flight", kind: .gauge, labels: [], help: "extract jobs being processed by this worker"),
        Metric(
            name: "huskimo_api_concurrency", kind: .gauge, labels: ["channel"], help: "the adaptive request limit of a channel's account"),
        Metric(
            name: "huskimo_loads_total", kind: .counter, labels: ["target", "outcome"],
            help: "load messages: succeeded, skipped, identical, failed"),
        Metric(name: "huskimo_load_rows_total", kind: .counter, labels: ["target", "table"], help: "rows loaded"),
        Metric(
            name: "huskimo_load_duration_seconds", kind: .histogram, labels: ["target", "table"], help: "one table's batch transaction"),
        Metric(name: "huskimo_loader_paused", kind: .gauge, labels: ["target"], help: "1 while a target-wide failure pauses its loader"),
        Metric(
            name: "huskimo_load_changed_records_total", kind: .counter, labels: ["target", "table", "change"],
            help: "records a replace changed, added or removed (by SID)"),
        Metric(
            name: "huskimo_loaded_day_timestamp_seconds", kind: .gauge, labels: ["target", "table", "channel"],
            help: "midnight (UTC) of the newest loaded day"),
        Metric(name: "huskimo_queue_messages_ready", kind: .gauge, labels: ["queue"], help: "messages ready (polled by loaders)"),
        Metric(name: "huskimo_queue_consumers", kind: .gauge, labels: ["queue"], help: "consumers of a queue"),
        Metric(
            name: "huskimo_queue_messages_unacked", kind: .gauge, labels: ["queue"],
            help: "messages delivered, not acked (management API; NaN without it)"),
        Metric(
            name: "huskimo_queue_oldest_ready_age_seconds", kind: .gauge, labels: ["queue"],
            help: "age of the oldest ready message (management API; NaN without it)"),
        Metric(name: "huskimo_build_info", kind: .gauge, labels: ["version"], help: "1, labelled with the running version"),
        Metric(
            name: "huskimo_unreconciled_days", kind: .gauge, labels: ["target"],
            help: "days whose rows disagree with the billed usage after a re-read"),
        Metric(
            name: "huskimo_queue_members", kind: .gauge, labels: ["queue"],
            help: "a quorum queue's members (management API; NaN without it)"),
        Metric(
            name: "huskimo_queue_members_online", kind: .gauge, labels: ["queue"],
            help: "a quorum queue's members online now (management API; NaN without it)"),
    ]

    /// The catalogue as JSON, one metric a line (what `huskimo-planner metrics` prints).
    package static var catalogueJSON: String {
        let quote = JSONDocument.quote
        let lines = catalogue.map { metric in
            "  {\"name\": \(quote(metric.name)), \"type\": \(quote(metric.kind.rawValue)), "
                + "\"labels\": [\(metric.labels.map(quote).joined(separator: ", "))], \"help\": \(quote(metric.help))}"
        }
        return "[\n" + lines.joined(separator: ",\n") + "\n]\n"
    }
}
