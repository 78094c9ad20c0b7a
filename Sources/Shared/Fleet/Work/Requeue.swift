import HuskimoConnectors
package import HuskimoCore
import Synchronization

/// Re-drives parked messages: failed extract jobs back to the work queue with their attempt count reset, or a
/// target's failed loads back to its load queue.
package struct Requeue: Sendable {
    package struct Filter: Sendable {
        package var channels: [String] = []
        package var resources: [String] = []
        package var from: Day?
        package var to: Day?
        package var limit: Int = .max

        package init(channels: [String] = [], resources: [String] = [], from: Day? = nil, to: Day? = nil, limit: Int = .max) {
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

    package let driver: any QueueDriver
    package let topology: FleetTopology

    package init(driver: any QueueDriver, topology: FleetTopology) {
        self.driver = driver
        self.topology = topology
    }

    /// Moves matching failed jobs (or, with `loadsOf`, a target's failed loads) back: a job with its attempt count
    /// reset, a load as it was. Returns what moved (or, with `dryRun`, what would move): id and the reason it had
    /// failed. A parked job whose body is not a job stays parked (it is listed by `status`).
    package func run(_ filter: Filter, loadsOf target: String? = nil, dryRun: Bool) async throws -> [(id: String, reason: String)] {
        let source = target.map(topology.failedLoadQueue) ?? topology.failedQueue
        let moved = Mutex<[(id: String, reason: String)]>([])
        let names = topology
        try await driver.drain(source, limit: .max) { delivery in
            let parked = ParkedHeaders(delivery.headers)
            guard moved.withLock({ $0.count }) < filter.limit, filter.matches(parked) else { return .keep }
            let message: AMQPMessage
            if let target {
                message = AMQPMessage(
                    exchange: names.exchange, routingKey: names.loadQueue(target), body: delivery.body,
                    messageID: delivery.messageID)
            } else {
                guard var job = try? MessageCodec.decodeJob(delivery.body) else { return .keep }
                job.attempt = 0
                message = AMQPMessage(
                    exchange: names.exchange, routingKey: names.extractQueue, body: MessageCodec.encode(job),
                    messageID: job.jobID)
            }
            moved.withLock { $0.append((delivery.messageID ?? parked.id ?? "?", parked.message)) }
            return dryRun ? .keep : .move(message)
        }
        return moved.withLock { $0 }
    }
}
