import Foundation
import HuskimoCore

/// Singular: campaign and creative stats per day, from the Reporting API v2.0 (async reports) or, with `api: legacy`,
/// 0.3's endpoints; every run appends a snapshot stamped `when_retrieved` (0.3's history semantics). Its channel keys:
/// ``SingularOptions``.
struct SingularConnector: Connector {
    package init() {}

    package var type: ChannelType { .singular }
    package var defaultAPIURL: String { "https://api.singular.net" }
    package var probeName: String { "Singular reporting" }
    package var channelKeys: [String] { SingularOptions.keys }

    package var resources: [ResourceSpec] {
        [
            ResourceSpec(.campaigns, of: .singular, table: "singular_campaigns", appendOnly: true),
            ResourceSpec(.creatives, of: .singular, table: "singular_creatives", appendOnly: true),
        ]
    }

    /// A Singular channel is paced by its own key.
    package func limiterKey(_ channel: ChannelConfig) -> String { "singular/\(channel.name)" }

    package func problems(_ channel: ChannelConfig) -> [(key: String, message: String)] { SingularOptions.read(channel).problems }

    package func settings(_ channel: ChannelConfig) -> [(key: String, value: String)] {
        let o = SingularOptions.read(channel).options
        guard o.api == .v2 else { return [("api", "legacy")] }
        return [
            ("api", "v2"), ("report_wait_s", "\(Int(o.reportWait))"), ("report_poll_s", "\(o.reportPoll)"),
            ("report_attempts", "\(o.reportAttempts)"), ("concurrent_reports", "\(o.concurrentReports) (fleet-wide)"),
            ("download_hosts", o.downloadHosts.joined(separator: ", ")),
        ]
    }

    /// Spend is not final for weeks: every run re-fetches the `lookback` days ending at the run day (0.3 fetched
    /// lookback + 1 days, today's partial one included: D10). No catch-up, no window.
    package func days(_ request: DayPlanRequest) -> DayPlan {
        DayPlan(days: request.explicit ?? (0..<max(request.lookback, 1)).map { request.runDay.adding(days: -$0) })
    }

    package func extract(
        _ job: ExtractJob, channel: ChannelConfig, context: ExtractContext, fetched: (@Sendable () -> Void)?
    ) throws
        -> ExtractReport
    {
        try SingularExtractor(channel: channel, client: context.api, s3: context.s3, folder: context.folder, leases: context.leases)
            .extract(job, fetched: fetched)
    }

    package func probe(_ channel: ChannelConfig, context: ExtractContext) throws -> String {
        let day = Day.today.adding(days: -1)
        return try SingularExtractor(channel: channel, client: context.api, s3: context.s3, folder: context.folder, leases: context.leases)
            .probe(day: day)
    }

    package func probeFix(_ error: any Error, channel: ChannelConfig) -> String {
        probeFix(error, channel: channel, credentials: "api_key", notFound: "api_url")
    }
}
