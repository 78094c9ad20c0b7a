import Foundation

/// A limit the whole fleet keeps, not each worker: at most `limit` holders of a named set of slots at once (Singular's
/// concurrent reports per key). Blocking.
package protocol SlotLeases: Sendable {
    /// Holds one of `limit` slots of `name` until the lease is released or its holder dies; waits up to `wait` seconds
    /// for one to free (a stopped latch ends the wait). - Returns: nil when none freed in time.
    func acquire(_ name: String, limit: Int, wait: Double, stop: StopLatch) throws -> (any SlotLease)?
}

/// One held slot.
package protocol SlotLease: Sendable {
    /// Which slot (0..<limit), for logs.
    var slot: Int { get }
    /// Gives the slot back (once; later calls do nothing).
    func release()
}

/// Slots held as RabbitMQ exclusive queues: slot `i` of `name` is the queue `{prefix}.slot.{name}.{i}`, declared
/// exclusive on a connection of its own. The broker lets one connection of the whole cluster hold a name and deletes
/// the queue when that connection closes, so a worker that dies gives its slots back by itself; nothing to seed,
/// count or clean up. Each lease costs one connection while it is held.
package struct AMQPSlotLeases: SlotLeases {
    package let nodes: AMQPNodes
    package let prefix: String

    package init(nodes: AMQPNodes, prefix: String) {
        self.nodes = nodes
        self.prefix = prefix
    }

    package func acquire(_ name: String, limit: Int, wait: Double, stop: StopLatch) throws -> (any SlotLease)? {
        precondition(limit > 0, "a slot set has at least one slot")
        let connection = try nodes.connect()
        let deadline = Date(timeIntervalSinceNow: wait)
        var round = 0
        while true {
            // From a random slot, so holders spread and a full set is scanned once a round.
            let start = Int.random(in: 0..<limit)
            for offset in 0..<limit {
                let slot = (start + offset) % limit
                let queue = queueName(name, slot)
                if try connection.claimExclusive(queue) { return Lease(connection: connection, slot: slot, queue: queue) }
            }
            let pause = min(Backoff(base: 0.1, max: 2).delay(attempt: round), max(0, deadline.timeIntervalSinceNow))
            guard pause > 0, stop.sleep(pause) else { return nil }
            round += 1
        }
    }

    package func queueName(_ name: String, _ slot: Int) -> String { "\(prefix).slot.\(name).\(slot)" }

    /// Holds its connection (and with it the exclusive queue) until released. The connection does nothing else, so a
    /// keeper thread touches the queue every few seconds (a passive declare): without traffic rabbitmq-c sends no
    /// heartbeats, and the broker would close the connection after two missed ones, freeing the slot while the report
    /// still runs. Must be released (the keeper holds it until then).
    final class Lease: SlotLease, @unchecked Sendable {  // `connection` is guarded by `condition`
        let slot: Int
        private let queue: String
        private let condition = NSCondition()
        private var connection: AMQPConnection?

        init(connection: AMQPConnection, slot: Int, queue: String) {
            self.connection = connection
            self.slot = slot
            self.queue = queue
            let thread = Thread { self.keep() }
            thread.stackSize = 256 << 10
            thread.start()
        }

        private func keep() {
            condition.lock()
            defer { condition.unlock() }
            while let held = connection {
                if condition.wait(until: Date(timeIntervalSinceNow: 2)) { continue }  // woken: released, or spurious
                guard connection != nil else { return }
                do {
                    try held.declareQueue(queue, passive: true)
                } catch {
                    connection = nil  // lost (its node went away): the broker has freed the slot already
                    return
                }
            }
        }

        func release() {
            condition.lock()
            connection = nil  // closing the connection deletes the queue
            condition.broadcast()
            condition.unlock()
        }
    }
}

/// Slots counted in this process only: for a single process (`check`, tests without a broker).
package final class LocalSlotLeases: SlotLeases, @unchecked Sendable {  // `held` is guarded by `condition`
    private let condition = NSCondition()
    private var held: [String: Set<Int>] = [:]

    package init() {}

    package func acquire(_ name: String, limit: Int, wait: Double, stop: StopLatch) throws -> (any SlotLease)? {
        let deadline = Date(timeIntervalSinceNow: wait)
        while true {
            let slot: Int? = condition.withLock {
                guard let free = (0..<limit).first(where: { !(held[name]?.contains($0) ?? false) }) else { return nil }
                held[name, default: []].insert(free)
                return free
            }
            if let slot { return Lease(owner: self, name: name, slot: slot) }
            let pause = min(0.05, max(0, deadline.timeIntervalSinceNow))
            guard pause > 0, stop.sleep(pause) else { return nil }
        }
    }

    fileprivate func free(_ name: String, _ slot: Int) { _ = condition.withLock { held[name]?.remove(slot) } }

    final class Lease: SlotLease, @unchecked Sendable {  // `released` is guarded by `lock`
        let slot: Int
        private let owner: LocalSlotLeases
        private let name: String
        private let lock = NSLock()
        private var released = false

        init(owner: LocalSlotLeases, name: String, slot: Int) {
            self.owner = owner
            self.name = name
            self.slot = slot
        }

        func release() {
            let first = lock.withLock {
                defer { released = true }
                return !released
            }
            if first { owner.free(name, slot) }
        }
        deinit { release() }
    }
}
