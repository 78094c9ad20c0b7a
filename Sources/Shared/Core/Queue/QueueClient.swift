import Foundation
public import Logging

/// A thread-safe RabbitMQ client for publishing (with confirms) and queue management. One connection,
/// used by one caller at a time under a lock; a lost connection is replaced on the next call, and calls
/// that failed on a lost connection are retried with backoff for up to `retryWindow` seconds.
public final class QueueClient: @unchecked Sendable {  // mutable state is guarded by `lock`
    public let url: AMQPURL
    public let topology: QueueTopology?
    private let logger: Logger
    private let retryWindow: Double
    private let lock = NSLock()
    private var connection: AMQPConnection?
    private var generation = 0

    public init(url: AMQPURL, topology: QueueTopology? = nil, retryWindow: Double = 60, logger: Logger) {
        self.url = url
        self.topology = topology
        self.retryWindow = retryWindow
        self.logger = logger
    }

    /// Runs `body` with a live connection; reconnects and retries on transient failures.
    func withConnection<T>(_ what: String, _ body: (AMQPConnection, Int) throws -> T) throws -> T {
        try lock.withLock {
            let backoff = Backoff.reconnect
            let deadline = Date().addingTimeInterval(retryWindow)
            var attempt = 0
            while true {
                do {
                    if connection == nil || connection!.broken {
                        connection = nil
                        let fresh = try AMQPConnection(url: url)
                        try topology?.declare(on: fresh)
                        connection = fresh
                        generation += 1
                        if generation > 1 { logger.info("reconnected to RabbitMQ", metadata: ["amqp.url": "\(url)"]) }
                    }
                    return try body(connection!, generation)
                } catch let error as AMQPError {
                    if connection?.broken ?? true { connection = nil }
                    // Only failures of the connection itself are worth a retry here; a refused publish is not.
                    let retriable = error.isRetriable && error.code != .nacked
                    guard retriable, Date() < deadline else { throw error }
                    let delay = backoff.delay(attempt: attempt)
                    logger.warning(
                        "RabbitMQ \(what) failed, retrying", metadata: ["error": "\(error)", "retry.in_s": "\(delay)"])
                    Thread.sleep(forTimeInterval: delay)
                    attempt += 1
                }
            }
        }
    }

    /// Publishes messages with publisher confirms; returns once the broker has them all.
    public func publish(_ messages: [AMQPMessage], batchSize: Int = 500) throws {
        var index = 0
        while index < messages.count {
            let batch = Array(messages[index..<min(index + batchSize, messages.count)])
            try withConnection("publish") { connection, _ in try connection.publish(batch) }
            index += batch.count
        }
    }

    public func publish(_ message: AMQPMessage) throws { try publish([message]) }

    public func declare(_ topology: QueueTopology) throws {
        try withConnection("declare") { connection, _ in try topology.declare(on: connection) }
    }

    /// Ready messages and consumers of `queue`, read with a passive declare (real-time, unlike the
    /// management API's sampled counters).
    public func depth(_ queue: String) throws -> QueueDepth {
        try withConnection("depth") { connection, _ in
            let (messages, consumers) = try connection.declareQueue(queue, passive: true)
            return QueueDepth(queue: queue, ready: messages, consumers: consumers)
        }
    }

    public func deleteQueue(_ queue: String) throws {
        try withConnection("delete") { connection, _ in try connection.deleteQueue(queue) }
    }

    public func deleteExchange(_ exchange: String) throws {
        try withConnection("delete") { connection, _ in try connection.deleteExchange(exchange) }
    }

    /// What to do with a message taken by ``drain(_:limit:_:)``.
    public enum DrainDecision: Sendable {
        /// Acknowledge (remove) it: the handler has republished or recorded it.
        case remove
        /// Leave it in its queue.
        case keep
    }

    /// Takes up to `limit` messages from `queue` one at a time (basic.get) and lets `handler` decide each.
    /// Kept messages are returned to the queue when the drain ends. The handler may publish through this
    /// client: the drain uses a connection of its own.
    /// - Returns: how many messages were removed.
    @discardableResult
    public func drain(_ queue: String, limit: Int = .max, _ handler: (AMQPDelivery) throws -> DrainDecision) throws -> Int {
        do {
            // A dedicated connection: kept messages stay unacked until it closes, so `basic.get` does not
            // hand the same message back twice within one drain.
            let connection = try AMQPConnection(url: url)
            var removed = 0
            var seen = 0
            while seen < limit, let delivery = try connection.get(queue: queue, generation: 0) {
                seen += 1
                switch try handler(delivery) {
                case .remove:
                    try connection.ack(delivery.deliveryTag)
                    removed += 1
                case .keep:
                    continue
                }
            }
            return removed  // closing the connection returns kept messages to the queue
        }
    }

    /// Closes the connection (it reopens on the next call).
    public func close() { lock.withLock { connection = nil } }
}

extension QueueClient {
    public func publish(_ messages: [AMQPMessage]) async throws {
        try await Blocking.run { try self.publish(messages) }
    }

    public func depth(_ queue: String) async throws -> QueueDepth {
        try await Blocking.run { try self.depth(queue) }
    }
}
