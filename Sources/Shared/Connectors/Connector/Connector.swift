import Foundation
package import HuskimoCore

/// One API, whole: its channel type, its resources, which days it plans, how it authenticates and extracts, and how
/// `check` probes it. Everything outside a connector's folder reaches it through ``ConnectorRegistry``; adding an API
/// is a folder with a `Connector`, its resources, its row layouts, and its tables in `WarehouseSchema`.
package protocol Connector: Sendable {
    /// The configuration's `type:` value.
    var type: ChannelType { get }
    /// Every resource this API serves, in planning order.
    var resources: [ResourceSpec] { get }
    /// `api_url` when the configuration names none.
    var defaultAPIURL: String { get }
    /// The channel keys only this API has (`api`, `report_wait_s`…): the configuration admits them for its channels,
    /// keeps their text in ``ChannelConfig/options``, and ``problems(_:)`` checks them.
    var channelKeys: [String] { get }
    /// Its channel keys that hold secrets (`oauth_client_secret`): kept as ``Secret`` in ``ChannelConfig/secretOptions``,
    /// scrubbed from every text, and refused when a secret of another field is expanded into them.
    var secretChannelKeys: [String] { get }
    /// Which request limit paces a channel: channels sharing it share one ``AdaptiveLimiter``.
    func limiterKey(_ channel: ChannelConfig) -> String
    /// What is wrong with a channel of this type (key under the channel, message); empty when it is usable.
    func problems(_ channel: ChannelConfig) -> [(key: String, message: String)]
    /// Settings worth showing in `huskimo-planner config` besides name, type, credentials and `api_url`.
    func settings(_ channel: ChannelConfig) -> [(key: String, value: String)]
    /// The days one of its day resources gets for a run (the planning-days policy).
    func days(_ request: DayPlanRequest) -> DayPlan
    /// Runs one job and stages its rows. Blocking. - Throws: ``JobError`` (classified), secrets scrubbed.
    func extract(
        _ job: ExtractJob, channel: ChannelConfig, context: ExtractContext, fetched: (@Sendable () -> Void)?
    ) throws
        -> ExtractReport
    /// `check`'s name for its probe (`Twilio account`).
    var probeName: String { get }
    /// One authenticated request that shows the credentials and the response shape work; nothing staged. Blocking.
    /// - Returns: a line saying what answered.
    func probe(_ channel: ChannelConfig, context: ExtractContext) throws -> String
    /// Which accounts a channel reads when it discovers them (Twilio's subaccounts), in a line for `plan --dry-run` and
    /// `status`; nil for a channel of one account. Blocking (it asks the API).
    func accounts(_ channel: ChannelConfig, context: ExtractContext) throws -> String?
    /// The accounts a channel's day jobs are split into, one job each (the parent first); nil: one job per day reads
    /// the channel whole. Blocking (it asks the API).
    func accountIDs(_ channel: ChannelConfig, context: ExtractContext) throws -> [String]?
    /// What to fix when ``probe(_:context:)`` failed with `error`.
    func probeFix(_ error: any Error, channel: ChannelConfig) -> String
    /// Days older than its list window that a bulk API serves (nil: none).
    func history(_ channel: ChannelConfig) -> HistoryPolicy?
    /// Which loaded rows are checked against which billed counts (empty: none).
    var reconciliation: [ReconciliationRule] { get }
}

/// What every connector extracts with: one HTTP client with its account limiters, S3, the staging folder, limits.
package struct ExtractContext: Sendable {
    package let api: APIClient
    package let s3: S3Client
    package let folder: String
    /// Pages one job may read per list before it is refused as endless.
    package var maxPages: Int
    /// Limits the whole fleet keeps (Singular's concurrent reports): held on the broker by a worker, in process by
    /// `check`.
    package var leases: any SlotLeases

    package init(
        api: APIClient, s3: S3Client, folder: String, maxPages: Int = 100_000, leases: any SlotLeases = LocalSlotLeases()
    ) {
        self.api = api
        self.s3 = s3
        self.folder = folder
        self.maxPages = maxPages
        self.leases = leases
    }
}

/// The inputs of a connector's planning-days policy for one channel and resource.
package struct DayPlanRequest: Sendable {
    /// `--from/--to`: exactly these days (no policy applies).
    package var explicit: [Day]?
    /// `--date`, else yesterday (UTC).
    package var runDay: Day
    package var today: Day
    /// `fetch.settle_days`, `fetch.lookback`, `fetch.start_date`.
    package var settleDays: Int
    package var lookback: Int
    package var startDate: Day?
    /// The days every target's ledger already has for this (table, channel); asked only by a connector whose
    /// ``DayPlan`` policy catches up (it reads the ledgers).
    package var loaded: @Sendable () -> Set<Day>
    /// The channel planned (its own keys may shape the policy, e.g. a list window shorter than the API's default).
    package var channel: ChannelConfig?

    package init(
        explicit: [Day]?, runDay: Day, today: Day, settleDays: Int, lookback: Int, startDate: Day?,
        loaded: @escaping @Sendable () -> Set<Day> = { [] }, channel: ChannelConfig? = nil
    ) {
        self.channel = channel
        self.explicit = explicit
        self.runDay = runDay
        self.today = today
        self.settleDays = settleDays
        self.lookback = lookback
        self.startDate = startDate
        self.loaded = loaded
    }
}

/// The days a policy plans, newest first (the run day leads, so a backlog never delays it), and those it refuses
/// with the reason (a warning for the operator).
package struct DayPlan: Sendable, Equatable {
    package var days: [Day]
    package var refused: [Day]
    package var reason: String?

    package init(days: [Day], refused: [Day] = [], reason: String? = nil) {
        self.days = days
        self.refused = refused
        self.reason = reason
    }
}

/// Every connector Huskimo has, and the one lookup everything else uses: the worker, `check`, the planner and
/// configuration validation.
package enum ConnectorRegistry {
    /// Every connector, in the order their resources are planned.
    package static let all: [any Connector] = [TwilioConnector(), SingularConnector()]

    private static let byName: [String: ResourceSpec] = {
        var specs: [String: ResourceSpec] = [:]
        for connector in all {
            for spec in connector.resources {
                precondition(
                    spec.channelType == connector.type, "\(spec.resource) is declared by \(connector.type) for \(spec.channelType)")
                precondition(specs.updateValue(spec, forKey: spec.resource.rawValue) == nil, "two connectors declare \(spec.resource)")
            }
        }
        return specs
    }()

    /// Every resource, in order.
    package static let resources: [Resource] = all.flatMap { $0.resources.map(\.resource) }

    /// Every channel type, in order.
    package static var types: [ChannelType] { all.map(\.type) }

    /// The connector of a channel type (nil: no such API).
    package static func connector(for type: ChannelType) -> (any Connector)? { all.first { $0.type == type } }

    /// Every connector's reconciliation rules.
    package static var reconciliationRules: [ReconciliationRule] { all.flatMap(\.reconciliation) }

    /// The spec of a resource name (nil: no connector serves it).
    static func spec(named name: String) -> ResourceSpec? { byName[name] }
}

extension Connector {
    package var channelKeys: [String] { [] }
    package var secretChannelKeys: [String] { [] }
    package func accounts(_ channel: ChannelConfig, context: ExtractContext) throws -> String? { nil }
    package func history(_ channel: ChannelConfig) -> HistoryPolicy? { nil }
    package func accountIDs(_ channel: ChannelConfig, context: ExtractContext) throws -> [String]? { nil }
    package var reconciliation: [ReconciliationRule] { [] }

    /// The fix for a failed probe, by what went wrong: refused credentials (`credentials`: which keys to check), not
    /// found (`notFound`), unreachable, or an answer Huskimo does not expect.
    func probeFix(_ error: any Error, channel: ChannelConfig, credentials: String, notFound: String) -> String {
        switch (error as? APIError)?.status {
        case 401?, 403?: return "the API refuses the credentials: check \(credentials) of \(channel.name)"
        case 404?: return "not found: check \(notFound) of \(channel.name)"
        case nil where error is APIError: return "cannot reach \(channel.apiURL): check api_url and the network path"
        default: return "see the error: \(channel.name)'s API answered something Huskimo does not expect"
        }
    }
}

extension ConnectorRegistry {
    /// The connector of a configured channel's type (configuration validation admits only registered types).
    package static func connector(of channel: ChannelConfig) -> any Connector {
        guard let connector = connector(for: channel.type) else { preconditionFailure("no connector for channel type \(channel.type)") }
        return connector
    }
}

/// What a connector reads beyond its list window through a bulk API (Twilio's Bulk Export), and the quota that
/// paces it: `huskimo-planner backfill` plans those days, at most ``daysPerDay`` per ``quotaKey`` and UTC day.
package struct HistoryPolicy: Sendable {
    /// The resources history serves (Twilio: calls and messages).
    package var resources: [Resource]
    /// Days older than today minus this many are history; newer ones are read from the lists.
    package var listWindow: Int
    /// History days one quota key may have planned per UTC day.
    package var daysPerDay: Int
    /// Channels with the same key share the quota (Twilio: the account SID; subaccounts share their parent's).
    package var quotaKey: String
    /// Why this channel cannot read history (nil: it can).
    package var unavailable: String?
}

/// How a connector's loaded rows of a day are checked against what the API says it billed that day: the rows of
/// ``rows`` whose `status` is one of ``billedStatuses`` against the sum of `count` over ``categories`` in ``usage``'s
/// table. A day that disagrees is read again once, then reported as unreconciled.
package struct ReconciliationRule: Sendable {
    /// The name in `status`, the bookkeeping table and the metric (`calls`).
    package var kind: String
    package var rows: Resource
    /// The statuses that are billed (the others — busy, failed, canceled… — are the documented reasons to differ).
    package var billedStatuses: [String]
    package var usage: Resource
    package var categories: [String]

    package init(kind: String, rows: Resource, billedStatuses: [String], usage: Resource, categories: [String]) {
        self.kind = kind
        self.rows = rows
        self.billedStatuses = billedStatuses
        self.usage = usage
        self.categories = categories
    }
}
