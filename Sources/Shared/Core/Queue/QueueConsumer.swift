import Foundation
package import Logging
import Synchronization

/// Consumes one queue on a connection and thread of its own (rabbitmq-c calls block, and a channel's acks
/// must go out on the channel that delivered). Deliveries are taken with ``next(timeout:)``; acks, nacks and
/// rejects are queued to the consumer thread and wake it through a pipe: the thread sleeps in poll(2) on the
/// broker's socket and that pipe, so a consumer costs no CPU while nothing arrives (it wakes every third of the
/// heartbeat interval for rabbitmq-c to send its heartbeat; over TLS, whose library may hold bytes the socket no
/// longer shows, every 200 ms).
///
/// A lost connection is replaced with backoff; the broker returns that connection's unacked messages to the
/// queue, so acks for them are dropped (``ack(_:)`` answers false) and the messages are delivered again:
/// handlers must be idempotent.
package final class QueueConsumer: Sendable {
    private enum Command {
        case ack(UInt64, Int)
        case nack(UInt64, Int, requeue: Bool)
        case reject(UInt64, Int, requeue: Bool)
    }

    private struct State {
        var commands: [(Command, @Sendable (Bool) -> Void)] = []
        var pausing = false
        var stopping = false
        var generation = 0
        var reconnects = 0
        var buffer: [AMQPDelivery] = []
        var waiters: [(id: Int, continuation: CheckedContinuation<AMQPDelivery?, Never>)] = []
        var nextWaiterID = 0
        var finished = false
        var connected = false
    }

    package let nodes: AMQPNodes
    package var url: AMQPURL { nodes.primary }
    package let queue: String
    package let prefetch: Int
    package let topology: QueueTopology?
    private let state = Mutex(State())
    private let logger: Logger
    private let finished = DispatchSemaphore(value: 0)
    private let pollInterval: Double
    private let wake = WakePipe()

    /// - Parameters:
    ///   - prefetch: unacknowledged deliveries the broker may hand this consumer at once.
    ///   - topology: declared on every connect, before consuming.
    /// - Parameters:
    ///   - pollInterval: the pause between checks while paused.
    package convenience init(
        url: AMQPURL, queue: String, prefetch: Int, topology: QueueTopology? = nil, pollInterval: Double = 0.02,
        logger: Logger
    ) {
        self.init(nodes: AMQPNodes(url), queue: queue, prefetch: prefetch, topology: topology, pollInterval: pollInterval, logger: logger)
    }

    /// A consumer that reconnects to the next live node of `nodes` when its connection is lost, and resumes its queue.
    package init(
        nodes: AMQPNodes, queue: String, prefetch: Int, topology: QueueTopology? = nil, pollInterval: Double = 0.02,
        logger: Logger
    ) {
        self.nodes = nodes
        self.queue = queue
        self.prefetch = prefetch
        self.topology = topology
        self.logger = logger
        self.pollInterval = pollInterval
    }

    /// Starts the consumer thread.
    package func start() {
        let thread = Thread { [self] in run() }
        thread.name = "amqp-consumer \(queue)"
        thread.start()
    }

    /// Connections opened after the first one.
    package var reconnects: Int { state.withLock { $0.reconnects } }

    /// Whether the consumer holds a live connection now. While it does not, an empty ``next(timeout:)`` says
    /// nothing about the queue (idle timers must not run).
    package var isConnected: Bool { state.withLock { $0.connected } }

    // MARK: - Taking deliveries

    /// The next delivery, or nil when none arrives within `timeout` seconds or the consumer has stopped.
    /// Several tasks may wait at once; each delivery goes to one of them.
    package func next(timeout: Double) async -> AMQPDelivery? {
        await withCheckedContinuation { (continuation: CheckedContinuation<AMQPDelivery?, Never>) in
            let id: Int? = state.withLock { state in
                if !state.buffer.isEmpty {
                    continuation.resume(returning: state.buffer.removeFirst())
                    return nil
                }
                if state.finished {
                    continuation.resume(returning: nil)
                    return nil
                }
                state.nextWaiterID += 1
                state.waiters.append((state.nextWaiterID, continuation))
                return state.nextWaiterID
            }
            guard let id else { return }
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout) { [self] in
                let expired = self.state.withLock { state -> CheckedContinuation<AMQPDelivery?, Never>? in
                    guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                    return state.waiters.remove(at: index).continuation
                }
                expired?.resume(returning: nil)
            }
        }
    }

    private func hand(_ delivery: AMQPDelivery) {
        let waiter = state.withLock { state -> CheckedContinuation<AMQPDelivery?, Never>? in
            if state.waiters.isEmpty {
                state.buffer.append(delivery)
                return nil
            }
            return state.waiters.removeFirst().continuation
        }
        waiter?.resume(returning: delivery)
    }

    private func finish() {
        let waiters = state.withLock { state in
            state.finished = true
            let waiters = state.waiters.map(\.continuation)
            state.waiters = []
            return waiters
        }
        for waiter in waiters { waiter.resume(returning: nil) }
    }

    // MARK: - Settling deliveries

    /// Acknowledges a delivery. Answers false when its connection is gone (the broker redelivers it).
    @discardableResult
    package func ack(_ delivery: AMQPDelivery) async -> Bool {
        await send(.ack(delivery.deliveryTag, delivery.generation))
    }

    /// Negative-acknowledges a delivery; with `requeue: false` a queue with a dead-letter exchange moves it there.
    @discardableResult
    func nack(_ delivery: AMQPDelivery, requeue: Bool) async -> Bool {
        await send(.nack(delivery.deliveryTag, delivery.generation, requeue: requeue))
    }

    @discardableResult
    package func reject(_ delivery: AMQPDelivery, requeue: Bool) async -> Bool {
        await send(.reject(delivery.deliveryTag, delivery.generation, requeue: requeue))
    }

    private func send(_ command: Command) async -> Bool {
        await withCheckedContinuation { (done: CheckedContinuation<Bool, Never>) in
            let accepted = state.withLock { state -> Bool in
                guard !state.stopping else { return false }
                state.commands.append((command, { done.resume(returning: $0) }))
                return true
            }
            if accepted { wake.signal() } else { done.resume(returning: false) }
        }
    }

    // MARK: - Stopping

    /// Stops new deliveries (basic.cancel) but keeps the connection so in-flight deliveries can still be acked.
    package func pause() {
        state.withLock { $0.pausing = true }
        wake.signal()
    }

    /// Sends the acks already queued, closes the connection (the broker requeues whatever is unacked, the
    /// buffered deliveries included) and wakes every waiting ``next(timeout:)`` with nil. Waits up to `timeout` seconds for the consumer thread.
    package func stop() async { await stop(timeout: 10) }

    /// ``stop()``, waiting at most `timeout` seconds for the consumer thread.
    package func stop(timeout: Double) async {
        state.withLock { $0.stopping = true }
        wake.signal()
        let finished = self.finished
        _ = try? await Blocking.run { finished.wait(timeout: .now() + timeout) }
    }

    // MARK: - The consumer thread

    private func run() {
        var connection: AMQPConnection?
        var generation = 0
        var cancelled = false
        var failures = 0
        let backoff = Backoff.reconnect
        // rabbitmq-c cannot be woken from a blocking read: the thread waits in poll(2) on the socket and the wake
        // pipe instead, and reads from rabbitmq-c only what has arrived.
        let idleWake = url.tls ? 0.2 : Double(max(url.heartbeatSeconds, 3)) / 3
        defer {
            if let connection, !cancelled { try? connection.cancelConsuming() }
            connection = nil
            finish()
            finished.signal()
        }
        while true {
            let (commands, pausing, stopping) = state.withLock { state in
                let commands = state.commands
                state.commands = []
                return (commands, state.pausing, state.stopping)
            }
            for (command, done) in commands {
                done(settle(command, on: connection, generation: generation))
            }
            if stopping { return }
            if pausing {
                if let live = connection, !cancelled {
                    try? live.cancelConsuming()
                    cancelled = true
                }
                Thread.sleep(forTimeInterval: pollInterval)
                continue
            }
            if connection == nil || connection!.broken {
                connection = nil
                do {
                    let fresh = try nodes.connect()
                    try topology?.declare(on: fresh)
                    try fresh.startConsuming(queue: queue, prefetch: prefetch)
                    connection = fresh
                    generation += 1
                    failures = 0
                    state.withLock {
                        $0.generation = generation
                        $0.connected = true
                        if generation > 1 { $0.reconnects += 1 }
                    }
                    if generation > 1 {
                        logger.info(
                            "consumer reconnected", metadata: ["messaging.destination.name": "\(queue)", "amqp.node": "\(fresh.endpoint)"])
                    }
                } catch {
                    let delay = backoff.delay(attempt: failures)
                    failures += 1
                    logger.warning(
                        "consumer cannot connect, retrying",
                        metadata: ["messaging.destination.name": "\(queue)", "error": "\(error)", "retry.in_s": "\(delay)"])
                    sleepUnlessStopping(delay)
                    continue
                }
            }
            do {
                let ready = connection!.waitReadable(wake: wake.readFD, timeout: idleWake)
                if ready.woken { wake.drain() }
                // Readable: the rest of a frame that has begun to arrive comes within moments. Not: a zero-timeout
                // call, in which rabbitmq-c sends a heartbeat that is due.
                if let delivery = try connection!.nextDelivery(timeout: ready.broker ? 0.05 : 0, generation: generation) {
                    hand(delivery)
                }
            } catch {
                logger.warning("consumer lost its connection", metadata: ["messaging.destination.name": "\(queue)", "error": "\(error)"])
                connection = nil
                state.withLock { $0.connected = false }
            }
        }
    }

    private func settle(_ command: Command, on connection: AMQPConnection?, generation: Int) -> Bool {
        guard let connection, !connection.broken else { return false }
        do {
            switch command {
            case .ack(let tag, let gen):
                guard gen == generation else { return false }
                try connection.ack(tag)
            case .nack(let tag, let gen, let requeue):
                guard gen == generation else { return false }
                try connection.nack(tag, requeue: requeue)
            case .reject(let tag, let gen, let requeue):
                guard gen == generation else { return false }
                try connection.reject(tag, requeue: requeue)
            }
            return true
        } catch {
            logger.warning("settling a delivery failed", metadata: ["error": "\(error)"])
            return false
        }
    }

    private func sleepUnlessStopping(_ seconds: Double) {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if state.withLock({ $0.stopping }) { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }
}
