/// Exchanges, queues and bindings that a process declares on every (re)connect. Declarations are
/// idempotent as long as the arguments match; a mismatch is a permanent `PRECONDITION_FAILED`.
package struct QueueTopology: Sendable, Hashable {
    package struct Queue: Sendable, Hashable {
        package var name: String
        package var arguments: AMQPTable
        /// Routing keys that bind this queue to the topology's exchange.
        package var bindings: [String]

        package init(name: String, arguments: AMQPTable = [:], bindings: [String] = []) {
            self.name = name
            self.arguments = arguments
            self.bindings = bindings
        }
    }

    package var exchange: String
    package var queues: [Queue]

    package init(exchange: String, queues: [Queue]) {
        self.exchange = exchange
        self.queues = queues
    }

    func declare(on connection: AMQPConnection) throws {
        if !exchange.isEmpty { try connection.declareExchange(exchange) }
        for queue in queues {
            try connection.declareQueue(queue.name, arguments: queue.arguments(forMajorVersion: connection.serverMajorVersion))
            for key in queue.bindings where !exchange.isEmpty {
                try connection.bindQueue(queue.name, exchange: exchange, routingKey: key)
            }
        }
    }
}

extension QueueTopology.Queue {
    /// What a quorum queue does with a message delivered too often.
    package enum DeliveryLimit: Sendable, Hashable {
        /// Never drops or moves a message however often it is delivered: `-1` on RabbitMQ 4 (which otherwise limits
        /// every quorum queue to 20 deliveries and then drops), nothing on 3.x (which has no default limit).
        case unlimited
        /// Dead-lettered after this many deliveries (to the queue's dead-letter target, at least once).
        case limit(Int)
    }

    /// A durable quorum queue, replicated on every node, its leader placed by RabbitMQ's balanced locator (so a
    /// fleet's queues do not all lead on the node that declared them). Dead-lettering is at least once (it needs
    /// `reject-publish` overflow): a message is never lost between a queue and its dead-letter target.
    package static func quorum(
        _ name: String, bindings: [String] = [], deadLetterTo: (exchange: String, routingKey: String)? = nil,
        deliveryLimit: DeliveryLimit, singleActiveConsumer: Bool = false, ttlSeconds: Double? = nil
    ) -> Self {
        var arguments: AMQPTable = ["x-queue-type": .string("quorum"), "x-queue-leader-locator": .string("balanced")]
        if let deadLetterTo {
            arguments["x-dead-letter-exchange"] = .string(deadLetterTo.exchange)
            arguments["x-dead-letter-routing-key"] = .string(deadLetterTo.routingKey)
            arguments["x-dead-letter-strategy"] = .string("at-least-once")
            arguments["x-overflow"] = .string("reject-publish")
        }
        switch deliveryLimit {
        case .unlimited: arguments["x-delivery-limit"] = .int(-1)
        case .limit(let n): arguments["x-delivery-limit"] = .int(Int64(n))
        }
        if let ttlSeconds { arguments["x-message-ttl"] = .int(Int64(ttlSeconds * 1000)) }
        if singleActiveConsumer { arguments["x-single-active-consumer"] = .bool(true) }
        return Self(name: name, arguments: arguments, bindings: bindings)
    }

    /// The arguments to declare with on a broker of `major` version: RabbitMQ 3.x refuses an unlimited (`-1`)
    /// delivery limit (it has none by default, so it is left out) and predates the balanced leader locator.
    func arguments(forMajorVersion major: Int) -> AMQPTable {
        guard major > 0, major < 4 else { return arguments }
        var older = arguments
        if older["x-delivery-limit"] == .int(-1) { older["x-delivery-limit"] = nil }
        older["x-queue-leader-locator"] = nil
        return older
    }

    /// A classic durable queue whose messages expire after `ttlSeconds` into `deadLetterTo`: a delay line.
    package static func delay(
        _ name: String, bindings: [String] = [], ttlSeconds: Double,
        deadLetterTo: (exchange: String, routingKey: String)
    ) -> Self {
        Self(
            name: name,
            arguments: [
                "x-message-ttl": .int(Int64(ttlSeconds * 1000)),
                "x-dead-letter-exchange": .string(deadLetterTo.exchange),
                "x-dead-letter-routing-key": .string(deadLetterTo.routingKey),
            ], bindings: bindings)
    }
}

/// Depth of one queue as the broker reports it over AMQP (passive declare): messages ready for delivery
/// and consumers attached. Unacknowledged counts come from the management API.
package struct QueueDepth: Sendable, Hashable, Codable {
    package var queue: String
    package var ready: Int
    package var consumers: Int

    package init(queue: String, ready: Int, consumers: Int) {
        self.queue = queue
        self.ready = ready
        self.consumers = consumers
    }
}
