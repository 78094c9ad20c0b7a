public import Foundation

/// Re-drives parked messages: failed extract jobs back to the work queue with their attempt count reset, or a
/// target's failed loads back to its load queue.
public struct Requeue: Sendable {
    public struct Filter: Sendable {
        public var channels: [String] = []
        public var resources: [String] = []
        public var from: Day?
        public var to: Day?
        public var limit: Int = .max

        public init(channels: [String] = [], resources: [String] = [], from: Day? = nil, to: Day? = nil, limit: Int = .max) {
            self.channels = channels
            self.resources = resources
            self.from = from
            self.to = to
            self.limit = limit
        }

        func matches(_ headers: AMQPTable) -> Bool {
            if !channels.isEmpty, !channels.contains(headers["x-channel"]?.stringValue ?? "") { return false }
            if !resources.isEmpty, !resources.contains(headers["x-resource"]?.stringValue ?? "") { return false }
            if from != nil || to != nil {
                guard let day = headers["x-day"]?.stringValue.flatMap(Day.init) else { return false }
                if let from, day < from { return false }
                if let to, day > to { return false }
            }
            return true
        }
    }

    public let client: QueueClient
    public let topology: FleetTopology

    public init(client: QueueClient, topology: FleetTopology) {
        self.client = client
        self.topology = topology
    }

    /// Moves matching failed jobs (or, with `loadsOf`, a target's failed loads) back. Returns what moved
    /// (or, with `dryRun`, what would move): id and the reason it had failed.
    public func run(_ filter: Filter, loadsOf target: String? = nil, dryRun: Bool) throws -> [(id: String, reason: String)] {
        let source = target.map { topology.failedLoadQueue($0) } ?? topology.failedQueue
        var moved: [(String, String)] = []
        try client.drain(source) { delivery in
            guard moved.count < filter.limit, filter.matches(delivery.headers) else { return .keep }
            let id = delivery.messageID ?? delivery.headers["x-id"]?.stringValue ?? "?"
            moved.append((id, delivery.headers["x-error-message"]?.stringValue ?? ""))
            if dryRun { return .keep }
            if let target {
                try client.publish(AMQPMessage(exchange: topology.exchange, routingKey: topology.loadQueue(target), body: delivery.body,
                                               messageID: delivery.messageID))
            } else {
                guard var job = try? FleetMessages.decodeJob(delivery.body) else { return .keep }
                job.attempt = 0
                try client.publish(AMQPMessage(exchange: topology.exchange, routingKey: topology.extractQueue,
                                               body: FleetMessages.encode(job), messageID: job.jobID))
            }
            return .remove
        }
        return moved
    }
}

/// What `huskimo-planner status` shows.
public struct FleetStatus: Sendable, Codable {
    public struct QueueRow: Sendable, Codable {
        public var name: String
        public var ready: Int
        /// Delivered, not yet acked (from the management API; nil without it).
        public var unacked: Int?
        public var consumers: Int
        /// Messages per second in and out (management API).
        public var publishRate: Double?
        public var deliverRate: Double?
        /// Age of the oldest ready message in seconds (management API, classic queues).
        public var oldestReadyAgeSeconds: Double?
    }

    public struct FailureGroup: Sendable, Codable {
        public var queue: String
        public var errorClass: String
        public var channel: String
        public var count: Int
        public var newestMessage: String
    }

    public struct Freshness: Sendable, Codable {
        public var target: String
        public var table: String
        public var channel: String
        public var newestDay: String?
        public var lastLoadedAt: String?
    }

    public var queues: [QueueRow] = []
    /// Where queue figures came from: `amqp`, or `management` when the management API answered.
    public var queueSource = "amqp"
    /// The extract queue's oldest waiting job, in seconds (nil: none waiting, or unknown without the management API).
    public var oldestWaitingJobSeconds: Double?
    public var failures: [FailureGroup] = []
    public var freshness: [Freshness] = []
    public var problems: [String] = []
    public var failedTotal: Int { failures.reduce(0) { $0 + $1.count } }

    /// Reads queue depths over AMQP, groups parked messages by class and channel, and reads each target's
    /// ledger for the newest loaded day.
    public static func collect(config: FleetConfig, client: QueueClient) -> FleetStatus {
        let topology = FleetTopology(config.queue, targets: config.targets.map(\.name))
        var status = FleetStatus()
        (status.queues, status.queueSource, status.problems) = queueRows(topology: topology, client: client,
                                                                         management: ManagementAPI(config.queue))
        status.oldestWaitingJobSeconds = status.queues.first { $0.name == topology.extractQueue }?.oldestReadyAgeSeconds
        let parked = [topology.failedQueue] + config.targets.map { topology.failedLoadQueue($0.name) }
        for queue in parked {
            var groups: [String: FailureGroup] = [:]
            do {
                try client.drain(queue, limit: 10_000) { delivery in
                    let cls = delivery.headers["x-error-class"]?.stringValue ?? "unknown"
                    let channel = delivery.headers["x-channel"]?.stringValue ?? "-"
                    let key = cls + "\u{0}" + channel
                    var group = groups[key] ?? FailureGroup(queue: queue, errorClass: cls, channel: channel, count: 0, newestMessage: "")
                    group.count += 1
                    group.newestMessage = delivery.headers["x-error-message"]?.stringValue ?? ""
                    groups[key] = group
                    return .keep
                }
            } catch {
                status.problems.append("queue \(queue): \(error)")
            }
            status.failures += groups.values.sorted { ($0.errorClass, $0.channel) < ($1.errorClass, $1.channel) }
        }
        for target in config.targets {
            do {
                let pg = try PostgresConnection(target.postgresSettings)
                let rows = try pg.query("""
                    SELECT table_name, channel_name, max(partition_key) FILTER (WHERE partition_key <> 'snapshot'),
                           to_char(max(loaded_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                    FROM \(sqlIdentifier(target.schema)).load_ledger GROUP BY 1, 2 ORDER BY 1, 2
                    """)
                status.freshness += rows.map {
                    Freshness(target: target.name, table: $0[0] ?? "", channel: $0[1] ?? "", newestDay: $0[2], lastLoadedAt: $0[3])
                }
            } catch {
                status.problems.append("target \(target.name): \(error)")
            }
        }
        return status
    }

    /// Every queue's figures: from the management API where configured and answering (unacked, rates, oldest
    /// age), else from AMQP (ready and consumers). Also feeds the loaders' queue metrics.
    public static func queueRows(topology: FleetTopology, client: QueueClient, management: ManagementAPI?,
                                 now: Date = Date()) -> (rows: [QueueRow], source: String, problems: [String]) {
        var rows: [QueueRow] = []
        var problems: [String] = []
        var managementFailed = false
        for name in topology.allQueues {
            if let management, !managementFailed {
                do {
                    let stats = try management.queue(name)
                    rows.append(QueueRow(
                        name: name, ready: stats.ready, unacked: stats.unacked, consumers: stats.consumers,
                        publishRate: stats.publishRate, deliverRate: stats.deliverRate,
                        oldestReadyAgeSeconds: stats.headMessageTimestamp.map { max(0, now.timeIntervalSince1970 - Double($0)) }))
                    continue
                } catch {
                    // One failure (API down, wrong URL): AMQP for the rest, and say so.
                    problems.append("management API: \(error); queue figures from AMQP")
                    managementFailed = true
                }
            }
            do {
                let depth = try client.depth(name)
                rows.append(QueueRow(name: name, ready: depth.ready, unacked: nil, consumers: depth.consumers))
            } catch {
                problems.append("queue \(name): \(error)")
            }
        }
        // Mixed figures (the API failed part-way) are reported as AMQP's: unacked counts are then incomplete.
        return (rows, management != nil && !managementFailed ? "management" : "amqp", problems)
    }


    /// The human-readable form.
    public var text: String {
        func cell(_ text: String, _ width: Int) -> String { text.padding(toLength: max(width, text.count + 1), withPad: " ", startingAt: 0) }
        func rate(_ value: Double?) -> String { value.map { String(format: "%.1f", $0) } ?? "-" }
        var lines = [cell("QUEUE", 44) + cell("READY", 8) + cell("UNACKED", 9) + cell("CONSUMERS", 11) + cell("IN/s", 8)
                     + cell("OUT/s", 8) + "OLDEST"]
        for q in queues {
            lines.append(cell(q.name, 44) + cell(String(q.ready), 8) + cell(q.unacked.map(String.init) ?? "-", 9)
                         + cell(String(q.consumers), 11) + cell(rate(q.publishRate), 8) + cell(rate(q.deliverRate), 8)
                         + (q.oldestReadyAgeSeconds.map(FleetStatus.age) ?? "-"))
        }
        if queueSource == "amqp" {
            lines.append("(queue figures from AMQP: set queue.management_url for unacked counts, rates and ages)")
        } else {
            lines.append("(queue figures from the management API, which refreshes them every few seconds)")
        }
        if let oldest = oldestWaitingJobSeconds { lines.append("oldest waiting job: \(FleetStatus.age(oldest))") }
        lines.append("")
        if failures.isEmpty {
            lines.append("FAILED: none")
        } else {
            lines.append("FAILED: \(failedTotal)  (re-drive with: huskimo-planner requeue --config …)")
            for f in failures {
                lines.append("  \(f.count) × \(f.errorClass) in \(f.channel) (\(f.queue)): \(f.newestMessage.prefix(160))")
            }
        }
        lines.append("")
        lines.append("NEWEST LOADED (target / table / channel → day, last load)")
        for f in freshness {
            lines.append("  \(f.target) / \(f.table) / \(f.channel) → \(f.newestDay ?? "snapshot"), \(f.lastLoadedAt ?? "-")")
        }
        for p in problems { lines.append("problem: \(p)") }
        return lines.joined(separator: "\n")
    }

    /// `42s`, `17m`, `3h05m`, `2d04h`.
    static func age(_ seconds: Double) -> String {
        let s = Int(seconds)
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m" }
        if s < 86_400 { return String(format: "%dh%02dm", s / 3600, s / 60 % 60) }
        return String(format: "%dd%02dh", s / 86_400, s / 3600 % 24)
    }
}
