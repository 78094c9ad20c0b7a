import Foundation

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
        public var unacked: Int?
        public var consumers: Int
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
    public var failures: [FailureGroup] = []
    public var freshness: [Freshness] = []
    public var problems: [String] = []
    public var failedTotal: Int { failures.reduce(0) { $0 + $1.count } }

    /// Reads queue depths over AMQP, groups parked messages by class and channel, and reads each target's
    /// ledger for the newest loaded day.
    public static func collect(config: FleetConfig, client: QueueClient) -> FleetStatus {
        let topology = FleetTopology(config.queue, targets: config.targets.map(\.name))
        var status = FleetStatus()
        for name in topology.allQueues {
            do {
                let depth = try client.depth(name)
                status.queues.append(QueueRow(name: name, ready: depth.ready, unacked: nil, consumers: depth.consumers))
            } catch {
                status.problems.append("queue \(name): \(error)")
            }
        }
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

    /// The human-readable form.
    public var text: String {
        var lines = ["QUEUE".padding(toLength: 44, withPad: " ", startingAt: 0) + "READY  UNACKED  CONSUMERS"]
        for q in queues {
            lines.append(q.name.padding(toLength: 44, withPad: " ", startingAt: 0)
                         + String(q.ready).padding(toLength: 7, withPad: " ", startingAt: 0)
                         + (q.unacked.map(String.init) ?? "-").padding(toLength: 9, withPad: " ", startingAt: 0) + String(q.consumers))
        }
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
}
