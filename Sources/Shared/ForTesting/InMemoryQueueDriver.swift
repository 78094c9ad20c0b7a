import Foundation
package import HuskimoCore
package import HuskimoFleet
import Synchronization

/// A broker in memory, for unit tests of the workers' decisions: a direct exchange whose routing keys are queue
/// names, deliveries with tags and the redelivered flag, acks, rejects, and what a broker does when a consumer
/// lets go (its unacked deliveries go back to the front of their queue, marked redelivered). Publishing can be
/// made to fail, as a broker that refuses or is away.
package final class InMemoryQueueDriver: QueueDriver {
    struct Stored: Sendable {
        var message: AMQPMessage
        var redelivered: Bool
    }

    struct State {
        var queues: [String: [Stored]] = [:]
        var unacked: [UInt64: (queue: String, stored: Stored, subscription: Int)] = [:]
        var nextTag: UInt64 = 0
        var nextSubscription = 0
        var failPublishes = false
        var published: [AMQPMessage] = []
        var declared: Set<String> = []
        var consumers: [Int: String] = [:]
    }

    let state = Mutex(State())

    package init() {}

    /// While true, every publish throws a transient ``AMQPError``-like error and publishes nothing.
    package var failPublishes: Bool {
        get { state.withLock { $0.failPublishes } }
        set { state.withLock { $0.failPublishes = newValue } }
    }

    /// Puts a message on `queue` (as if published and routed there), optionally marked redelivered.
    package func enqueue(_ body: [UInt8], on queue: String, messageID: String? = nil, headers: AMQPTable = [:], redelivered: Bool = false) {
        let message = AMQPMessage(exchange: "", routingKey: queue, body: body, headers: headers, messageID: messageID)
        state.withLock { $0.queues[queue, default: []].append(Stored(message: message, redelivered: redelivered)) }
    }

    /// The messages waiting in `queue` (not delivered, or handed back), in order.
    package func messages(in queue: String) -> [AMQPMessage] { state.withLock { ($0.queues[queue] ?? []).map(\.message) } }

    /// Whether each message on `queue` would be delivered marked redelivered (a consumer let go of it).
    package func redeliveredFlags(in queue: String) -> [Bool] { state.withLock { ($0.queues[queue] ?? []).map(\.redelivered) } }

    /// Empties `queue` (as `rabbitmqctl purge_queue`).
    package func purge(_ queue: String) { state.withLock { $0.queues[queue] = [] } }

    /// Deliveries handed out and not yet settled.
    package var unackedCount: Int { state.withLock { $0.unacked.count } }

    /// Every message published through the driver, in order.
    package var published: [AMQPMessage] { state.withLock { $0.published } }

    package func publish(_ messages: [AMQPMessage]) async throws {
        try state.withLock { state in
            if state.failPublishes { throw InMemoryQueueError(reason: "publishing refused (failPublishes)") }
            for message in messages {
                state.queues[message.routingKey, default: []].append(Stored(message: message, redelivered: false))
                state.published.append(message)
            }
        }
    }

    package func depth(_ queue: String) async throws -> QueueDepth {
        try state.withLock { state in
            guard state.declared.contains(queue) || state.queues[queue] != nil else {
                throw InMemoryQueueError(reason: "no queue '\(queue)' (NOT_FOUND)", errorClass: .permanent)
            }
            return QueueDepth(
                queue: queue, ready: state.queues[queue]?.count ?? 0,
                consumers: state.consumers.values.filter { $0 == queue }.count)
        }
    }

    /// As RabbitMQ's `basic.get` drain: each message of the queue (up to `limit`) is seen once; a kept one stays in
    /// its place, marked redelivered (it was delivered and handed back); a moved one is published, then removed.
    @discardableResult
    package func drain(
        _ queue: String, limit: Int, _ handler: @escaping @Sendable (AMQPDelivery) throws -> DrainDecision
    ) async throws
        -> Int
    {
        let taken: [Stored] = state.withLock { state in
            let list = state.queues[queue] ?? []
            state.queues[queue] = Array(list.dropFirst(min(limit, list.count)))
            return Array(list.prefix(limit))
        }
        var kept: [Stored] = []
        var removed = 0
        defer {
            // What was not removed goes back to the front, in order (as when the drain's connection closes).
            state.withLock { state in state.queues[queue, default: []].insert(contentsOf: kept, at: 0) }
        }
        for (index, stored) in taken.enumerated() {
            let delivery = state.withLock { state -> AMQPDelivery in
                state.nextTag += 1
                return AMQPDelivery(
                    deliveryTag: state.nextTag, generation: 1, exchange: stored.message.exchange,
                    routingKey: stored.message.routingKey, redelivered: stored.redelivered,
                    messageID: stored.message.messageID, headers: stored.message.headers, body: stored.message.body)
            }
            let decision: DrainDecision
            do {
                decision = try handler(delivery)
            } catch {
                kept += taken[index...].map { Stored(message: $0.message, redelivered: true) }
                throw error
            }
            switch decision {
            case .keep:
                kept.append(Stored(message: stored.message, redelivered: true))
            case .move(let message):
                do {
                    try await publish([message])
                } catch {
                    kept += taken[index...].map { Stored(message: $0.message, redelivered: true) }
                    throw error
                }
                removed += 1
            case .remove:
                removed += 1
            }
        }
        return removed
    }

    package func declare(_ topology: QueueTopology) async throws {
        state.withLock { state in for queue in topology.queues { state.declared.insert(queue.name) } }
    }

    package func deleteQueue(_ queue: String) async throws {
        state.withLock { state in
            state.declared.remove(queue)
            state.queues[queue] = nil
        }
    }

    package func subscribe(_ queue: String, prefetch: Int) -> any QueueSubscription {
        let id = state.withLock { state -> Int in
            state.nextSubscription += 1
            return state.nextSubscription
        }
        return Subscription(driver: self, queue: queue, prefetch: prefetch, id: id)
    }

    package func close() {}

    fileprivate func take(from queue: String, prefetch: Int, subscription: Int) -> AMQPDelivery? {
        state.withLock { state in
            let held = state.unacked.values.filter { $0.subscription == subscription }.count
            guard held < prefetch, var list = state.queues[queue], !list.isEmpty else { return nil }
            let stored = list.removeFirst()
            state.queues[queue] = list
            state.nextTag += 1
            state.unacked[state.nextTag] = (queue, stored, subscription)
            return AMQPDelivery(
                deliveryTag: state.nextTag, generation: 1, exchange: stored.message.exchange,
                routingKey: stored.message.routingKey, redelivered: stored.redelivered,
                messageID: stored.message.messageID, headers: stored.message.headers, body: stored.message.body)
        }
    }

    fileprivate func settle(_ tag: UInt64, requeue: Bool) -> Bool {
        state.withLock { state in
            guard let entry = state.unacked.removeValue(forKey: tag) else { return false }
            if requeue {
                var stored = entry.stored
                stored.redelivered = true
                state.queues[entry.queue, default: []].insert(stored, at: 0)
            }
            return true
        }
    }

    fileprivate func release(subscription: Int) {
        state.withLock { state in
            let held = state.unacked.filter { $0.value.subscription == subscription }.sorted { $0.key < $1.key }
            for (tag, entry) in held.reversed() {
                state.unacked.removeValue(forKey: tag)
                var stored = entry.stored
                stored.redelivered = true
                state.queues[entry.queue, default: []].insert(stored, at: 0)
            }
        }
    }

    final class Subscription: QueueSubscription {
        let driver: InMemoryQueueDriver
        let queue: String
        let prefetch: Int
        let id: Int
        private let flags = Mutex((started: false, paused: false, stopped: false))

        init(driver: InMemoryQueueDriver, queue: String, prefetch: Int, id: Int) {
            self.driver = driver
            self.queue = queue
            self.prefetch = prefetch
            self.id = id
        }

        func start() {
            flags.withLock { $0.started = true }
            driver.state.withLock { $0.consumers[id] = queue }
        }
        var isConnected: Bool { flags.withLock { $0.started && !$0.stopped } }

        func next(timeout: Double) async -> AMQPDelivery? {
            let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
            while true {
                let (started, paused, stopped) = flags.withLock { ($0.started, $0.paused, $0.stopped) }
                if started, !paused, !stopped, let delivery = driver.take(from: queue, prefetch: prefetch, subscription: id) {
                    return delivery
                }
                if stopped || ContinuousClock.now >= deadline { return nil }
                try? await Task.sleep(for: .milliseconds(2))
            }
        }

        func ack(_ delivery: AMQPDelivery) async -> Bool { driver.settle(delivery.deliveryTag, requeue: false) }
        func reject(_ delivery: AMQPDelivery, requeue: Bool) async -> Bool { driver.settle(delivery.deliveryTag, requeue: requeue) }
        func pause() { flags.withLock { $0.paused = true } }

        func stop() async {
            flags.withLock { $0.stopped = true }
            driver.state.withLock { _ = $0.consumers.removeValue(forKey: id) }
            driver.release(subscription: id)
        }
    }
}

/// A refused publish of the in-memory broker: transient, as a broker that is away.
package struct InMemoryQueueError: ClassifiedError {
    package let reason: String
    package var errorClass: ErrorClass = .transient
    package var description: String { "InMemoryQueueError: \(reason)" }
}
