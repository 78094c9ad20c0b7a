import Foundation
import HuskimoTesting
import Synchronization
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

@Suite(.serialized, .timeLimit(.minutes(3)))
struct AMQPIntegrationTests {
    /// Takes `count` deliveries (or fewer, after `timeout` seconds of silence), acking each unless told not to.
    /// Up to `count` deliveries, each within `timeout` seconds of the one before (the first within `firstTimeout`).
    static func consume(
        _ consumer: QueueConsumer, count: Int, timeout: Double = 10, firstTimeout: Double? = nil,
        ack: Bool = true
    ) async -> [AMQPDelivery] {
        var received: [AMQPDelivery] = []
        while received.count < count, let delivery = await consumer.next(timeout: received.isEmpty ? firstTimeout ?? timeout : timeout) {
            if ack { await consumer.ack(delivery) }
            received.append(delivery)
        }
        return received
    }

    @Test func tenThousandPersistentMessagesNoneLostNoneDuplicated() async throws {
        let url = try TestServices.amqpURL()
        let queue = TestServices.unique("test.bulk")
        let topology = QueueTopology(exchange: "", queues: [.quorum(queue, deliveryLimit: .unlimited)])
        let client = QueueClient(url: url, topology: topology, logger: TestServices.logger)
        defer { try? client.deleteQueueBlocking(queue) }
        let messages = (0..<10_000).map { i in
            AMQPMessage(exchange: "", routingKey: queue, body: Array("{\"n\":\(i)}".utf8), messageID: "m\(i)")
        }
        try await Blocking.run { try client.publishBlocking(messages) }
        #expect(try await Blocking.run { try client.depthBlocking(queue) }.ready == 10_000)

        let consumer = QueueConsumer(url: url, queue: queue, prefetch: 500, logger: TestServices.logger)
        consumer.start()
        let received = await Self.consume(consumer, count: 10_000)
        await consumer.stop()
        let ids = received.compactMap(\.messageID)
        #expect(ids.count == 10_000)
        #expect(Set(ids).count == 10_000, "duplicates delivered")
        #expect(Set(ids) == Set((0..<10_000).map { "m\($0)" }))
        #expect(received.first.map { String(decoding: $0.body, as: UTF8.self) }?.hasPrefix("{\"n\":") == true)
        #expect(try await Blocking.run { try client.depthBlocking(queue) }.ready == 0)
    }

    /// 32 threads publishing one message at a time, 50 each, through one client: every message arrives, and a caller
    /// whose message cannot be routed is the only one to get the error. (A group commit of concurrent publishes was
    /// tried and measured: no difference on bench/run.sh cluster, so it is not there.)
    @Test func concurrentPublishersEachGetTheirOwnOutcome() async throws {
        let url = try TestServices.amqpURL()
        let queue = TestServices.unique("test.group")
        let client = QueueClient(
            url: url, topology: QueueTopology(exchange: "", queues: [.quorum(queue, deliveryLimit: .unlimited)]),
            logger: TestServices.logger)
        defer { try? client.deleteQueueBlocking(queue) }
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 32) { thread in
            for n in 0..<50 {
                // Thread 7's 10th message goes nowhere (mandatory, no such queue): returned, its publish fails.
                let bad = thread == 7 && n == 10
                let message = AMQPMessage(
                    exchange: "", routingKey: bad ? queue + ".nowhere" : queue, body: Array("\(thread)/\(n)".utf8),
                    messageID: "\(thread)/\(n)")
                do { try client.publishBlocking([message]) } catch { failures.withLock { $0.append("\(thread)/\(n)") } }
            }
        }
        #expect(failures.withLock { $0 } == ["7/10"])
        var ids: [String] = []
        try client.drainBlocking(queue) {
            ids.append($0.messageID ?? "")
            return .remove
        }
        let expected = Set((0..<32).flatMap { t in (0..<50).map { "\(t)/\($0)" } }).subtracting(["7/10"])
        #expect(Set(ids) == expected && ids.count == expected.count)
    }

    @Test func aNackedMessageIsRedeliveredAndHeadersSurvive() async throws {
        let url = try TestServices.amqpURL()
        let queue = TestServices.unique("test.nack")
        let client = QueueClient(
            url: url, topology: QueueTopology(exchange: "", queues: [.quorum(queue, deliveryLimit: .unlimited)]),
            logger: TestServices.logger)
        defer { try? client.deleteQueueBlocking(queue) }
        try client.publishBlocking(
            AMQPMessage(
                exchange: "", routingKey: queue, body: [1, 2, 3],
                headers: ["x-attempt": .int(2), "x-class": .string("transient")], messageID: "one"))
        let consumer = QueueConsumer(url: url, queue: queue, prefetch: 1, logger: TestServices.logger)
        consumer.start()
        let first = await Self.consume(consumer, count: 1, ack: false)
        let delivery = try #require(first.first)
        #expect(!delivery.redelivered)
        #expect(delivery.headers["x-attempt"] == .int(2))
        #expect(delivery.headers["x-class"] == .string("transient"))
        #expect(await consumer.nack(delivery, requeue: true))
        let second = await Self.consume(consumer, count: 1)
        #expect(second.first?.messageID == "one")
        #expect(second.first?.redelivered == true)
        #expect(second.first?.body == [1, 2, 3])
        await consumer.stop()
        #expect(try await Blocking.run { try client.depthBlocking(queue) }.ready == 0)
    }

    @Test func aRejectedMessageIsDeadLetteredToItsDLXQueue() async throws {
        let url = try TestServices.amqpURL()
        let exchange = TestServices.unique("test.dlx")
        let work = exchange + ".work", failed = exchange + ".failed"
        let topology = QueueTopology(
            exchange: exchange,
            queues: [
                .quorum(work, bindings: [work], deadLetterTo: (exchange, failed), deliveryLimit: .limit(3)),
                .quorum(failed, bindings: [failed], deliveryLimit: .unlimited),
            ])
        let client = QueueClient(url: url, topology: topology, logger: TestServices.logger)
        defer {
            try? client.deleteQueueBlocking(work)
            try? client.deleteQueueBlocking(failed)
            try? client.deleteExchangeBlocking(exchange)
        }
        try client.publishBlocking(AMQPMessage(exchange: exchange, routingKey: work, body: Array("poison".utf8), messageID: "p"))
        let consumer = QueueConsumer(url: url, queue: work, prefetch: 1, logger: TestServices.logger)
        consumer.start()
        let got = await Self.consume(consumer, count: 1, ack: false)
        #expect(await consumer.reject(try #require(got.first), requeue: false))
        await consumer.stop()
        // The broker moves it asynchronously: poll the passive-declare count briefly.
        var depth = 0
        for _ in 0..<50 {
            depth = try await Blocking.run { try client.depthBlocking(failed) }.ready
            if depth == 1 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(depth == 1)
        #expect(try await Blocking.run { try client.depthBlocking(work) }.ready == 0)
        var seen: [AMQPDelivery] = []
        try client.drainBlocking(failed) {
            seen.append($0)
            return .remove
        }
        #expect(seen.map(\.messageID) == ["p"])
        #expect(seen.first?.body == Array("poison".utf8))
        #expect(seen.first?.headers["x-death"] != nil || seen.first?.headers["x-first-death-reason"] != nil)
    }

    @Test func depthAndConsumerCountAreReadBack() async throws {
        let url = try TestServices.amqpURL()
        let queue = TestServices.unique("test.depth")
        let client = QueueClient(
            url: url, topology: QueueTopology(exchange: "", queues: [.quorum(queue, deliveryLimit: .unlimited)]),
            logger: TestServices.logger)
        defer { try? client.deleteQueueBlocking(queue) }
        try await Blocking.run {
            try client.publishBlocking((0..<37).map { AMQPMessage(exchange: "", routingKey: queue, body: [UInt8($0)]) })
        }
        #expect(try await Blocking.run { try client.depthBlocking(queue) } == QueueDepth(queue: queue, ready: 37, consumers: 0))
        let consumer = QueueConsumer(url: url, queue: queue, prefetch: 5, logger: TestServices.logger)
        consumer.start()
        _ = await Self.consume(consumer, count: 5, ack: false)
        let during = try await Blocking.run { try client.depthBlocking(queue) }
        #expect(during.consumers == 1)
        #expect(during.ready == 32)  // 5 delivered and unacked
        await consumer.stop()
        var after = try await Blocking.run { try client.depthBlocking(queue) }
        for _ in 0..<20 where after.ready != 37 || after.consumers != 0 {
            try await Task.sleep(for: .milliseconds(100))
            after = try await Blocking.run { try client.depthBlocking(queue) }
        }
        #expect(after == QueueDepth(queue: queue, ready: 37, consumers: 0))  // the unacked five came back
        #expect(throws: AMQPError.self) { try client.depthBlocking(TestServices.unique("no.such.queue")) }
    }

    @Test func amqpsVerifiesTheBrokerAgainstTheConfiguredCA() throws {
        // The stack's broker has a certificate of a local test CA on its amqps:// listener.
        let base = try TestServices.require("AMQPS_URL"), ca = try TestServices.require("AMQPS_CA")
        let queue = TestServices.unique("test.tls")
        let url = try AMQPURL(base + "?cacertfile=" + PercentEncoding.encode(ca, keepSlash: false))
        #expect(url.tls && url.caCertFile == ca)
        let client = QueueClient(
            url: url, topology: QueueTopology(exchange: "", queues: [.init(name: queue)]), retryWindow: 5,
            logger: TestServices.logger)
        defer {
            try? client.deleteQueueBlocking(queue)
            client.close()
        }
        try client.publishBlocking(AMQPMessage(exchange: "", routingKey: queue, body: Array("over tls".utf8), messageID: "t1"))
        var got: [UInt8]?
        try client.drainBlocking(queue, limit: 1) {
            got = $0.body
            return .remove
        }
        #expect(got == Array("over tls".utf8), "a message round-tripped over TLS")
        #expect(!"\(url)".contains("guest:guest"), "the password is not in the URL's description")

        // Against the system's CA bundle the test CA's certificate does not verify: refused, permanently, named.
        let unverified = try #require(throws: AMQPError.self) { _ = try AMQPConnection(url: try AMQPURL(base)) }
        #expect(unverified.errorClass == .permanent, "\(unverified)")
        #expect("\(unverified)".contains("certificate"), "\(unverified)")
        #expect(throws: AMQPError.self) { _ = try AMQPConnection(url: try AMQPURL(base + "?cacertfile=%2Fnonexistent%2Fca.pem")) }
    }

    @Test func unroutableMandatoryPublishFailsPermanently() throws {
        let url = try TestServices.amqpURL()
        let client = QueueClient(url: url, retryWindow: 2, logger: TestServices.logger)
        let error = #expect(throws: AMQPError.self) {
            try client.publishBlocking(AMQPMessage(exchange: "", routingKey: TestServices.unique("nowhere"), body: [1]))
        }
        #expect(error?.code == .returned)
        #expect(error?.errorClass == .permanent)
    }

    @Test func aConsumerSurvivesABrokerRestartWithoutLosingMessages() async throws {
        let url = try TestServices.amqpURL()
        let queue = TestServices.unique("test.restart")
        // A classic durable queue: this tests the consumer's recovery. (A quorum queue on this single-node
        // RabbitMQ 3.10 stays "leader not known" for minutes after a SIGKILL restart: docs/operations.md, "Known limits".)
        let topology = QueueTopology(exchange: "", queues: [.init(name: queue)])
        let client = QueueClient(url: url, topology: topology, logger: TestServices.logger)
        try await Blocking.run {
            try client.publishBlocking((0..<200).map { AMQPMessage(exchange: "", routingKey: queue, body: [], messageID: "r\($0)") })
        }
        let consumer = QueueConsumer(url: url, queue: queue, prefetch: 20, topology: topology, logger: TestServices.logger)
        consumer.start()
        // Ack 100, hold 20 more unacked, then kill the broker under the consumer.
        let acked = await Self.consume(consumer, count: 100)
        let unacked = await Self.consume(consumer, count: 20, ack: false)
        #expect(acked.count == 100 && unacked.count == 20)
        try TestServices.stack("restart-rabbitmq")  // SIGKILL, then a fresh boot on the same data
        // What the broker recovered, for the failure message below (the consumer may take 20 of it meanwhile).
        let recovered = try? await Blocking.run { try client.depthBlocking(queue) }
        // Acks for the old connection are refused: the broker has put those messages back.
        #expect(await consumer.ack(unacked[0]) == false)
        // Drain until quiet. A SIGKILLed broker may also redeliver messages whose acks it had not yet
        // persisted (AMQP acks are at-least-once): duplicates are allowed, losses are not. The consumer may be
        // in its reconnect backoff (up to 5 s, Backoff.reconnect) when the broker is back: the first delivery
        // gets that much more time (CI lost this race once, with a 12 s broker boot).
        let rest = await Self.consume(consumer, count: .max, timeout: 5, firstTimeout: 30)
        await consumer.stop()
        #expect(consumer.reconnects >= 1)
        let ackedIDs = Set(acked.compactMap(\.messageID))
        let restIDs = Set(rest.compactMap(\.messageID))
        let everything = Set((0..<200).map { "r\($0)" })
        #expect(ackedIDs.union(restIDs) == everything, "a message was lost (the broker recovered \(String(describing: recovered)))")
        #expect(everything.subtracting(ackedIDs).isSubset(of: restIDs), "a message never acked did not come back")
        #expect(Set(unacked.compactMap(\.messageID)).isSubset(of: restIDs))
        #expect(try await Blocking.run { try client.depthBlocking(queue) }.ready == 0)  // the client reconnected too
        try client.deleteQueueBlocking(queue)
    }

    /// A fleet-wide limit's slots (exclusive queues): two holders fill a set of two, a third waits in vain; a slot held
    /// longer than two heartbeats (1 s here) stays held, since its keeper keeps the idle connection alive; a released one
    /// is taken at once. (A holder whose connection dies frees its slot by the broker's rule for exclusive queues.)
    @Test func slotLeasesAreFleetWideAndOutliveMissedHeartbeats() throws {
        let url = try AMQPURL(try TestServices.require("AMQP_URL") + "?heartbeat=1")
        let leases = AMQPSlotLeases(nodes: AMQPNodes(url), prefix: "slots\(UInt32.random(in: 0...UInt32.max))")
        let stop = StopLatch()
        let a = try #require(try leases.acquire("set", limit: 2, wait: 2, stop: stop))
        let b = try #require(try leases.acquire("set", limit: 2, wait: 2, stop: stop))
        #expect(Set([a.slot, b.slot]) == [0, 1])
        #expect(try leases.acquire("set", limit: 2, wait: 0.5, stop: stop) == nil, "the set is full")
        Thread.sleep(forTimeInterval: 4)  // four heartbeat intervals without a word from the holders themselves
        #expect(try leases.acquire("set", limit: 2, wait: 0.5, stop: stop) == nil, "both slots still held")
        a.release()
        let c = try #require(try leases.acquire("set", limit: 2, wait: 2, stop: stop))
        #expect(c.slot == a.slot)
        // A stopped wait returns at once.
        stop.stop()
        let started = Date()
        #expect(try leases.acquire("set", limit: 2, wait: 30, stop: stop) == nil && -started.timeIntervalSinceNow < 5)
        b.release()
        c.release()
        let d = try #require(try leases.acquire("set", limit: 2, wait: 2, stop: StopLatch()), "released slots are free again")
        d.release()
    }
}
