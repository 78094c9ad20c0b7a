public import HuskimoCore
public import Logging
import HuskimoConnectors

/// What the workers need of a message broker: publish with confirms, and consume one queue with acks. The
/// RabbitMQ driver is the production one; HuskimoTesting's `InMemoryQueueDriver` lets the workers' decisions
/// (ack, retry with its delay, park with headers, redelivery counting, shutdown hand-back) be tested without one.
public protocol QueueDriver: Sendable {
    /// Publishes `messages` (routed by their routing key); returns once the broker holds every one durably.
    func publish(_ messages: [AMQPMessage]) async throws
    /// A consumer of `queue` allowed `prefetch` unacknowledged deliveries. Not started: call `start()`.
    func subscribe(_ queue: String, prefetch: Int) -> any QueueSubscription
    /// Closes the driver's publishing connection (it reopens on the next publish).
    func close()
}

/// One queue's deliveries, settled one by one.
public protocol QueueSubscription: Sendable {
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
public final class RabbitMQDriver: QueueDriver {
    public let client: QueueClient
    private let url: AMQPURL
    private let topology: QueueTopology
    private let logger: Logger

    public init(url: AMQPURL, topology: QueueTopology, logger: Logger) {
        self.url = url
        self.topology = topology
        self.logger = logger
        self.client = QueueClient(url: url, topology: topology, logger: logger)
    }

    public func publish(_ messages: [AMQPMessage]) async throws { try await client.publish(messages) }

    public func subscribe(_ queue: String, prefetch: Int) -> any QueueSubscription {
        QueueConsumer(url: url, queue: queue, prefetch: prefetch, topology: topology, logger: logger)
    }

    public func close() { client.close() }
}
