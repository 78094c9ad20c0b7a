import Foundation
package import Logging

/// A thread-safe RabbitMQ client for publishing (with confirms) and queue management. One connection,
/// used by one caller at a time under a lock; a lost connection is replaced on the next call, and calls
/// that failed on a lost connection are retried with backoff for up to `retryWindow` seconds.
package final class QueueClient: @unchecked Sendable {  // mutable state is guarded by `lock`
    /// The cluster's nodes: a lost connection is replaced by one to the next node that answers.
    package let nodes: AMQPNodes
    package var url: AMQPURL { nodes.primary }
    package let topology: QueueTopology?
    private let logger: Logger
    private let retryWindow: Double
    private let lock = NSLock()
    private var connection: AMQPConnection?
    private var generation = 0

    package convenience init(url: AMQPURL, topology: QueueTopology? = nil, retryWindow: Double = 60, logger: Logger) {
        self.init(nodes: AMQPNodes(url), topology: topology, retryWindow: retryWindow, logger: logger)
    }

    package init(nodes: AMQPNodes, topology: QueueTopology? = nil, retryWindow: Double = 60, logger: Logger) {
        self.nodes = nodes
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
                        let fresh = try nodes.connect()
                        try topology?.declare(on: fresh)
                        connection = fresh
                        generation += 1
                        if generation > 1 { logger.info("reconnected to RabbitMQ", metadata: ["amqp.node": "\(fresh.endpoint)"]) }
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

    /// Publishes messages with publisher confirms; returns once the broker has them all. Blocking.
    package func publishBlocking(_ messages: [AMQPMessage], batchSize: Int = 500) throws {
        var index = 0
        while index < messages.count {
            let batch = Array(messages[index..<min(index + batchSize, messages.count)])
            try withConnection("publish") { connection, _ in try connection.publish(batch) }
            index += batch.count
        }
    }

    package func publishBlocking(_ message: AMQPMessage) throws { try publishBlocking([message]) }

    package func declareBlocking(_ topology: QueueTopology) throws {
        try withConnection("declare") { connection, _ in try topology.declare(on: connection) }
    }

    /// Ready messages and consumers of `queue`, read with a passive declare (real-time, unlike the
    /// management API's sampled counters). Blocking.
    package func depthBlocking(_ queue: String) throws -> QueueDepth {
        try withConnection("depth") { connection, _ in
            let (messages, consumers) = try connection.declareQueue(queue, passive: true)
            return QueueDepth(queue: queue, ready: messages, consumers: consumers)
        }
    }

    package func deleteQueueBlocking(_ queue: String) throws {
        try withConnection("delete") { connection, _ in try connection.deleteQueue(queue) }
    }

    func deleteExchangeBlocking(_ exchange: String) throws {
        try withConnection("delete") { connection, _ in try connection.deleteExchange(exchange) }
    }

    /// Takes up to `limit` messages from `queue` one at a time (basic.get) and lets `handler` decide each: a moved
    /// message is published (with a confirm, through this client's own connection) before it is acked, so a crash in
    /// between duplicates it, never loses it. A kept message is published again to the end of its queue, unchanged
    /// (body, headers, id), under a confirm, and then acked: it is never handed back by a reject or a closed
    /// connection, which would count a delivery against it (RabbitMQ 4 drops a quorum queue's message after 20 by
    /// default; reading parked messages must cost them nothing). The queue's depth when the drain starts bounds it,
    /// so each message is seen once. Blocking.
    /// - Returns: how many messages were removed or moved.
    @discardableResult
    package func drainBlocking(_ queue: String, limit: Int = .max, _ handler: (AMQPDelivery) throws -> DrainDecision) throws -> Int {
        // A connection of its own: what is taken stays unacked until it is settled here.
        let connection = try nodes.connect()
        let depth = try connection.declareQueue(queue, passive: true).messages
        var removed = 0
        var seen = 0
        var kept: [AMQPDelivery] = []
        func putBack() throws {
            guard !kept.isEmpty else { return }
            try publishBlocking(
                kept.map {
                    AMQPMessage(exchange: "", routingKey: queue, body: $0.body, headers: $0.headers, messageID: $0.messageID)
                })
            for delivery in kept { try connection.ack(delivery.deliveryTag) }
            kept = []
        }
        do {
            while seen < min(limit, depth), let delivery = try connection.get(queue: queue, generation: 0) {
                seen += 1
                switch try handler(delivery) {
                case .keep:
                    kept.append(delivery)
                    if kept.count >= 200 { try putBack() }
                case .move(let message):
                    try publishBlocking([message])
                    try connection.ack(delivery.deliveryTag)
                    removed += 1
                case .remove:
                    try connection.ack(delivery.deliveryTag)
                    removed += 1
                }
            }
        } catch {
            try? putBack()
            throw error
        }
        try putBack()
        return removed
    }

    /// Closes the connection (it reopens on the next call).
    package func close() { lock.withLock { connection = nil } }
}

/// What to do with a message taken by a drain.
package enum DrainDecision: Sendable {
    /// Leave it in its queue.
    case keep
    /// Acknowledge (remove) it: the handler has recorded it.
    case remove
    /// Publish this message (with a confirm), then remove the one taken: a re-drive.
    case move(AMQPMessage)
}
