import HuskimoConnectors
package import HuskimoCore
import Logging

/// Every use of the message broker goes through this seam: publish with confirms, consume one queue with acks,
/// queue depth, drain (read, remove or re-drive) parked messages, declare and delete. ``QueueDriverFactory`` makes
/// the production one from the configuration (where every connection to RabbitMQ is made); HuskimoTesting's
/// `InMemoryQueueDriver` lets the workers' decisions, requeue, status, planning and the run monitor be tested
/// without a broker.
package protocol QueueDriver: Sendable {
    /// Publishes `messages` (routed by their routing key); returns once the broker holds every one durably.
    func publish(_ messages: [AMQPMessage]) async throws
    /// A consumer of `queue` allowed `prefetch` unacknowledged deliveries. Not started: call `start()`.
    func subscribe(_ queue: String, prefetch: Int) -> any QueueSubscription
    /// Ready messages and consumers of `queue`, real-time. - Throws: when the queue does not exist.
    func depth(_ queue: String) async throws -> QueueDepth
    /// Takes up to `limit` messages of `queue` one at a time and lets `handler` decide each (keep, remove, or move:
    /// published with a confirm before the original is removed). Kept ones stay in the queue, each seen once.
    /// - Returns: how many were removed or moved.
    @discardableResult
    func drain(_ queue: String, limit: Int, _ handler: @escaping @Sendable (AMQPDelivery) throws -> DrainDecision) async throws -> Int
    /// Declares exchanges, queues and bindings (idempotent).
    func declare(_ topology: QueueTopology) async throws
    /// Deletes a queue (`check`'s probe queue).
    func deleteQueue(_ queue: String) async throws
    /// Closes the driver's publishing connection (it reopens on the next publish).
    func close()
}

/// Makes the production queue driver from the configuration: the one place a connection to RabbitMQ is set up.
enum QueueDriverFactory {
    /// - Parameter retryWindow: how long a call keeps reconnecting before it fails (a command: seconds; a worker: a
    ///   minute).
    package static func make(_ config: FleetConfig, retryWindow: Double = 60, logger: Logger) -> any QueueDriver {
        RabbitMQDriver(
            nodes: AMQPNodes(config.queue.nodes), topology: FleetTopology(config).topology, retryWindow: retryWindow, logger: logger)
    }
}

/// One queue's deliveries, settled one by one.
package protocol QueueSubscription: Sendable {
    /// Starts receiving.
    func start()
    /// Whether deliveries can arrive now: while not connected, an empty queue proves nothing (idle timers wait).
    var isConnected: Bool { get }
    /// The next delivery, or nil after `timeout` seconds without one.
    func next(timeout: Double) async -> AMQPDelivery?
    /// Removes a delivery from its queue. False when it can no longer be acked (its connection is gone and the
    /// broker will deliver it again).
    @discardableResult func ack(_ delivery: AMQPDelivery) async -> Bool
    /// Hands a delivery back (`requeue`) or drops it to the queue's dead-letter exchange.
    @discardableResult func reject(_ delivery: AMQPDelivery, requeue: Bool) async -> Bool
    /// Stops new deliveries; deliveries already taken can still be settled.
    func pause()
    /// Settles what is queued, then lets go: every unacknowledged delivery goes back to the queue.
    func stop() async
}

extension QueueConsumer: QueueSubscription {}

/// The production driver: ``QueueClient`` for publishing (publisher confirms, reconnects) and a
/// ``QueueConsumer`` (own thread and connection) per subscription, each declaring the fleet's topology on
/// every connect.
final class RabbitMQDriver: QueueDriver {
    let client: QueueClient
    private let nodes: AMQPNodes
    private let topology: QueueTopology
    private let logger: Logger

    package init(nodes: AMQPNodes, topology: QueueTopology, retryWindow: Double = 60, logger: Logger) {
        self.nodes = nodes
        self.topology = topology
        self.logger = logger
        self.client = QueueClient(nodes: nodes, topology: topology, retryWindow: retryWindow, logger: logger)
    }

    package func publish(_ messages: [AMQPMessage]) async throws {
        try await Blocking.run { [client] in try client.publishBlocking(messages) }
    }

    package func depth(_ queue: String) async throws -> QueueDepth {
        try await Blocking.run { [client] in try client.depthBlocking(queue) }
    }

    @discardableResult
    package func drain(
        _ queue: String, limit: Int, _ handler: @escaping @Sendable (AMQPDelivery) throws -> DrainDecision
    ) async throws
        -> Int
    {
        try await Blocking.run { [client] in try client.drainBlocking(queue, limit: limit, handler) }
    }

    package func declare(_ topology: QueueTopology) async throws {
        try await Blocking.run { [client] in try client.declareBlocking(topology) }
    }

    package func deleteQueue(_ queue: String) async throws {
        try await Blocking.run { [client] in try client.deleteQueueBlocking(queue) }
    }

    package func subscribe(_ queue: String, prefetch: Int) -> any QueueSubscription {
        QueueConsumer(nodes: nodes, queue: queue, prefetch: prefetch, topology: topology, logger: logger)
    }

    package func close() { client.close() }
}
