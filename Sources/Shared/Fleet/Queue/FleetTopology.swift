import HuskimoConnectors
package import HuskimoCore

/// The fleet's RabbitMQ names and declarations (docs/architecture.md, "Queue topology"), from the configured prefix.
package struct FleetTopology: Sendable {
    package let prefix: String
    package let quorum: Bool
    package let retryDelays: [Int]
    package let targets: [String]

    /// The fleet's topology: the configured prefix and queue type, every target's load queues.
    package init(_ config: FleetConfig) { self.init(config.queue, targets: config.targets.map(\.name)) }

    package init(_ queue: QueueConfig, targets: [String]) {
        self.prefix = queue.prefix
        self.quorum = queue.quorum
        self.retryDelays = queue.retryDelays
        self.targets = targets
    }

    package var exchange: String { prefix }
    var extractQueue: String { "\(prefix).extract" }
    var failedQueue: String { "\(prefix).extract.failed" }
    func retryQueue(delay: Int) -> String { "\(prefix).extract.retry.\(delay)s" }
    func loadQueue(_ target: String) -> String { "\(prefix).load.\(target)" }
    func failedLoadQueue(_ target: String) -> String { "\(prefix).load.\(target).failed" }

    /// Deliveries of one work message before RabbitMQ moves it to its parked queue (a worker or loader that crashes on
    /// it every time): the worker's own attempt count parks it long before, so this only bounds crash loops.
    static let deliveryLimit = 20

    private func work(_ name: String, deadLetter: String?, singleActiveConsumer: Bool = false) -> QueueTopology.Queue {
        if quorum {
            // A parked queue (no dead-letter target) never drops what it holds, however often it is read.
            return .quorum(
                name, bindings: [name], deadLetterTo: deadLetter.map { (exchange, $0) },
                deliveryLimit: deadLetter == nil ? .unlimited : .limit(Self.deliveryLimit), singleActiveConsumer: singleActiveConsumer)
        }
        var arguments: AMQPTable = [:]
        if let deadLetter {
            arguments["x-dead-letter-exchange"] = .string(exchange)
            arguments["x-dead-letter-routing-key"] = .string(deadLetter)
        }
        if singleActiveConsumer { arguments["x-single-active-consumer"] = .bool(true) }
        return QueueTopology.Queue(name: name, arguments: arguments, bindings: [name])
    }

    /// Everything, declared idempotently by every process.
    package var topology: QueueTopology {
        var queues = [
            work(extractQueue, deadLetter: failedQueue),
            work(failedQueue, deadLetter: nil),
        ]
        for delay in Set(retryDelays).sorted() {
            let name = retryQueue(delay: delay)
            // Quorum too: a job waiting out its delay survives the loss of any one node (TTL expiry dead-letters it
            // to the extract queue at least once; nobody consumes a delay queue, so no delivery limit is reached).
            queues.append(
                quorum
                    ? .quorum(
                        name, bindings: [name], deadLetterTo: (exchange, extractQueue), deliveryLimit: .unlimited,
                        ttlSeconds: Double(delay))
                    : .delay(name, bindings: [name], ttlSeconds: Double(delay), deadLetterTo: (exchange, extractQueue)))
        }
        for target in targets {
            queues.append(work(loadQueue(target), deadLetter: failedLoadQueue(target), singleActiveConsumer: true))
            queues.append(work(failedLoadQueue(target), deadLetter: nil))
        }
        return QueueTopology(exchange: exchange, queues: queues)
    }

    /// Every queue name, for status.
    var allQueues: [String] {
        topology.queues.map(\.name)
    }
}
