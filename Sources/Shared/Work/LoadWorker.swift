import Foundation
public import Logging
import Synchronization

/// `huskimo-worker load --target NAME`: consumes the target's load queue (single active consumer: a second
/// loader stands by and takes over if the first dies), loads batches, then acks them. A warehouse that is
/// down is waited for with backoff while the batch stays unacked; a load that can never succeed is isolated
/// and parked in the target's failed-load queue, and the rest of its batch still loads.
public final class LoadWorker: Sendable {
    public let config: FleetConfig
    public let target: TargetConfig
    public let topology: FleetTopology
    public let batchSize: Int
    private let client: QueueClient
    private let consumer: QueueConsumer
    private let s3: S3Client
    private let logger: Logger
    private let tally = Mutex(WorkerTally())
    private let loaderBox: Mutex<WarehouseLoader?> = Mutex(nil)
    private let busy = Atomic<Bool>(false)

    public init(config: FleetConfig, target: TargetConfig, batchSize: Int = 50, logger: Logger) {
        self.config = config
        self.target = target
        self.topology = FleetTopology(config.queue, targets: config.targets.map(\.name))
        self.batchSize = batchSize
        self.logger = logger
        self.client = QueueClient(url: config.queue.url, topology: topology.topology, logger: logger)
        self.consumer = QueueConsumer(url: config.queue.url, queue: topology.loadQueue(target.name), prefetch: batchSize,
                                      topology: topology.topology, logger: logger)
        self.s3 = S3Client(config.s3.s3Endpoint)
    }

    public var summary: WorkerTally { tally.withLock { $0 } }
    public var isBusy: Bool { busy.load(ordering: .relaxed) }

    /// Whether the loader is connected to its queue: the `/readyz` probe.
    public var isReady: Bool { consumer.isConnected }

    /// Publishes every queue's depth (and, with the management API, unacked counts and the oldest message's
    /// age) as gauges every `interval` seconds until `shutdown`: one loader per target is always running, so the
    /// fleet's backlog is visible to Prometheus without scraping RabbitMQ itself.
    public func pollQueues(every interval: Double = 15, shutdown: ShutdownSignal) async {
        let management = ManagementAPI(config.queue)
        // Its own connection: the load loop closes its client when it stops, possibly while a poll is running.
        let client = QueueClient(url: config.queue.url, topology: topology.topology, retryWindow: 5, logger: logger)
        defer { client.close() }
        while !shutdown.requested {
            let polled = try? await Blocking.run { [client, topology] in
                FleetStatus.queueRows(topology: topology, client: client, management: management)
            }
            let (rows, _, problems) = polled ?? ([], "", [])
            for row in rows {
                FleetMetrics.queue(row.name, ready: row.ready, consumers: row.consumers, unacked: row.unacked,
                                   oldestReadyAge: row.oldestReadyAgeSeconds ?? (row.unacked != nil && row.ready == 0 ? 0 : nil))
            }
            for problem in problems { logger.debug("queue metrics: \(problem)") }
            let until = Date().addingTimeInterval(interval)
            while Date() < until, !shutdown.requested { try? await Task.sleep(for: .milliseconds(200)) }
        }
    }

    public func run(shutdown: ShutdownSignal, exitWhenIdle: Double? = nil) async {
        // Before the first batch: the loader is used by this loop only.
        let seeding = loader()
        _ = try? await Blocking.run { seeding.publishFreshnessFromLedger() }
        consumer.start()
        var lastActivity = Date()
        var attempt = 0
        while !shutdown.requested {
            guard let first = await consumer.next(timeout: 0.25) else {
                // Idle means "connected and nothing to deliver": a broker outage is not an empty queue.
                if !consumer.isConnected { lastActivity = Date() }
                if let exitWhenIdle, -lastActivity.timeIntervalSinceNow >= exitWhenIdle { break }
                continue
            }
            busy.store(true, ordering: .relaxed)
            var batch = [first]
            while batch.count < batchSize, let more = await consumer.next(timeout: 0.05) { batch.append(more) }
            // Hold the batch until it is loaded or parked: the warehouse being down is no reason to lose it.
            while true {
                do {
                    try await handle(batch)
                    attempt = 0
                    break
                } catch {
                    let delay = Backoff(base: 1, max: 60).delay(attempt: attempt)
                    attempt += 1
                    logger.warning("load failed, retrying", metadata: ["target": "\(target.name)", "error": "\(error)", "retry.in_s": "\(delay)"])
                    let until = Date().addingTimeInterval(delay)
                    while Date() < until, !shutdown.requested { try? await Task.sleep(for: .milliseconds(100)) }
                    if shutdown.requested { break }
                }
            }
            busy.store(false, ordering: .relaxed)
            lastActivity = Date()
        }
        await consumer.stop()
        client.close()
    }

    private func loader() -> WarehouseLoader {
        loaderBox.withLock { box in
            if let existing = box { return existing }
            let fresh = WarehouseLoader(target: target, s3: s3, s3Config: config.s3, logger: logger)
            box = fresh
            return fresh
        }
    }

    /// Loads a batch; transient failures throw (the caller retries the whole batch), permanent ones are isolated.
    func handle(_ deliveries: [AMQPDelivery]) async throws {
        var messages: [(AMQPDelivery, LoadMessage)] = []
        for delivery in deliveries {
            do {
                messages.append((delivery, try FleetMessages.decodeLoad(delivery.body)))
            } catch {
                if await park(delivery.body, id: delivery.messageID, load: nil, errorClass: .permanent, message: "not a valid load message: \(error)") { await consumer.ack(delivery) }
            }
        }
        guard !messages.isEmpty else { return }
        let loader = loader()
        do {
            let loads = messages.map(\.1)
            let outcome = try await Blocking.run { try loader.load(loads) }
            await finish(messages, outcome)
        } catch let error as any ClassifiedError where !error.isRetriable {
            // Isolate: load one by one; the ones that fail permanently are parked, the rest load.
            for (delivery, load) in messages {
                do {
                    let outcome = try await Blocking.run { try loader.load([load]) }
                    await finish([(delivery, load)], outcome)
                } catch let error as any ClassifiedError where !error.isRetriable {
                    if await park(delivery.body, id: load.loadID, load: load, errorClass: .permanent, message: error.description) { await consumer.ack(delivery) }
                }
            }
        }
    }

    private func finish(_ messages: [(AMQPDelivery, LoadMessage)], _ outcome: LoadOutcome) async {
        for (delivery, _) in messages { await consumer.ack(delivery) }
        tally.withLock {
            $0.succeeded += outcome.loaded.count
            $0.records += outcome.rowsByTable.values.reduce(0, +)
        }
        for skip in outcome.skipped {
            logger.info("load skipped", metadata: ["load.id": "\(skip.loadID)", "reason": "\(skip.reason)", "target": "\(target.name)"])
        }
        if !config.s3.keepStaged {
            let janitor = StagingJanitor(s3: s3, folder: config.s3.folderPath, targets: config.targets.map(\.name), logger: logger)
            for (_, load) in messages { janitor.markLoaded(load, by: target.name) }
        }
    }

    /// Parks a load in the failed-load queue. - Returns: false when it could not be published (then do not ack it).
    private func park(_ body: [UInt8], id: String?, load: LoadMessage?, errorClass: ErrorClass, message: String) async -> Bool {
        let headers = FleetMessages.failureHeaders(errorClass: errorClass, message: message, channel: load?.channel,
                                                   resource: load?.resource, day: load?.partition, attempts: 1, id: id)
        do {
            try await client.publish([AMQPMessage(exchange: topology.exchange, routingKey: topology.failedLoadQueue(target.name),
                                                  body: body, headers: headers, messageID: id)])
        } catch {
            logger.error("cannot park a failed load; it stays on the queue", metadata: ["load.id": "\(id ?? "?")", "error": "\(error)"])
            return false
        }
        tally.withLock { $0.failed += 1 }
        FleetMetrics.load(target: target.name, outcome: .failed)
        logger.error("load failed", metadata: ["load.id": "\(id ?? "?")", "target": "\(target.name)", "error": "\(message)"])
        return true
    }
}

/// Deletes staged objects once every target has loaded them: each loader leaves an empty marker
/// `<folder>/_loaded/<load hash>/<target>`; the loader that completes the set deletes the objects and markers.
public struct StagingJanitor: Sendable {
    let s3: S3Client
    let folder: String
    let targets: [String]
    let logger: Logger

    public func markLoaded(_ load: LoadMessage, by target: String) {
        let base = [folder, "_loaded", Digest.sha256Hex(Array(load.loadID.utf8))].filter { !$0.isEmpty }.joined(separator: "/")
        do {
            try s3.put("\(base)/\(target)", [])
            let markers = Set(try s3.list(prefix: base + "/").map { String($0.key.dropFirst(base.count + 1)) })
            guard Set(targets).isSubset(of: markers) else { return }
            try s3.delete(load.objects.map(\.key) + markers.map { "\(base)/\($0)" })
        } catch {
            // Leftover objects cost storage, not correctness: note it and carry on.
            logger.warning("cannot clean staged objects", metadata: ["load.id": "\(load.loadID)", "error": "\(error)"])
        }
    }
}
