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
            try connection.declareQueue(queue.name, arguments: queue.arguments)
            for key in queue.bindings where !exchange.isEmpty {
                try connection.bindQueue(queue.name, exchange: exchange, routingKey: key)
            }
        }
    }
}

extension QueueTopology.Queue {
    /// A durable quorum queue (replicated, poison-message handling by `x-delivery-limit`).
    package static func quorum(
        _ name: String, bindings: [String] = [], deadLetterTo: (exchange: String, routingKey: String)? = nil,
        deliveryLimit: Int? = nil, singleActiveConsumer: Bool = false
    ) -> Self {
        var arguments: AMQPTable = ["x-queue-type": .string("quorum")]
        if let deadLetterTo {
            arguments["x-dead-letter-exchange"] = .string(deadLetterTo.exchange)
            arguments["x-dead-letter-routing-key"] = .string(deadLetterTo.routingKey)
        }
        if let deliveryLimit { arguments["x-delivery-limit"] = .int(Int64(deliveryLimit)) }
        if singleActiveConsumer { arguments["x-single-active-consumer"] = .bool(true) }
        return Self(name: name, arguments: arguments, bindings: bindings)
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
