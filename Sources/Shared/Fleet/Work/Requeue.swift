import HuskimoConnectors
public import HuskimoCore

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

        func matches(_ headers: ParkedHeaders) -> Bool {
            if !channels.isEmpty, !channels.contains(headers.channel ?? "") { return false }
            if !resources.isEmpty, !resources.contains(headers.resource ?? "") { return false }
            if from != nil || to != nil {
                guard let day = headers.day.flatMap(Day.init) else { return false }
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
    /// (or, with `dryRun`, what would move): id and the reason it had failed. Blocking.
    public func run(_ filter: Filter, loadsOf target: String? = nil, dryRun: Bool) throws -> [(id: String, reason: String)] {
        let source = target.map { topology.failedLoadQueue($0) } ?? topology.failedQueue
        var moved: [(String, String)] = []
        try client.drain(source) { delivery in
            let parked = ParkedHeaders(delivery.headers)
            guard moved.count < filter.limit, filter.matches(parked) else { return .keep }
            let id = delivery.messageID ?? parked.id ?? "?"
            moved.append((id, parked.message))
            if dryRun { return .keep }
            if let target {
                try client.publish(AMQPMessage(exchange: topology.exchange, routingKey: topology.loadQueue(target), body: delivery.body,
                                               messageID: delivery.messageID))
            } else {
                guard var job = try? MessageCodec.decodeJob(delivery.body) else { return .keep }
                job.attempt = 0
                try client.publish(AMQPMessage(exchange: topology.exchange, routingKey: topology.extractQueue,
                                               body: MessageCodec.encode(job), messageID: job.jobID))
            }
            return .remove
        }
        return moved
    }
}
