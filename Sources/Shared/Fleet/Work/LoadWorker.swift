import Foundation
import HuskimoConnectors
import HuskimoCore
import Logging
import Synchronization

/// Applies batches of load messages to one target: what a loader does between taking a batch and acking it.
/// ``WarehouseLoader`` in production.
protocol BatchLoader: Sendable {
    /// Loads a batch. - Throws: a classified error: transient (try the batch again later) or permanent (some
    /// message of it can never load as is).
    func load(_ batch: [LoadMessage]) async throws -> BatchOutcome
    /// Seeds the freshness gauge from what earlier loaders loaded (best effort).
    func seedFreshness() async
    /// What S3 answers the loader's own credentials for each key (a HEAD: 200, 403, 404; nil when it did not answer).
    func probe(_ keys: [String]) async -> [String: Int?]
    /// Reconciles the days `loads` applied against their billed counts (``Reconciler``); with how many are unreconciled
    /// now. - Throws: what the warehouse answered (a loader logs it and goes on: loads never wait for it).
    func reconcile(_ loads: [LoadMessage], settledBefore: Day) async throws -> (Reconciler.Outcome, unreconciled: Int)
}

extension BatchLoader {
    func probe(_ keys: [String]) async -> [String: Int?] { [:] }
    func reconcile(_ loads: [LoadMessage], settledBefore: Day) async throws -> (Reconciler.Outcome, unreconciled: Int) { (.init(), 0) }
}

/// `huskimo-worker load --target NAME`: consumes the target's load queue (single active consumer: a second
/// loader stands by and takes over if the first dies), loads batches, then acks them. A warehouse that is
/// down is waited for with backoff while the batch stays unacked; a load that can never succeed (a corrupt or
/// missing staged object, a row count off, an unknown table) is isolated and parked in the target's failed-load
/// queue, and the rest of its batch still loads.
final class LoadWorker: Sendable {
    package let config: FleetConfig
    package let target: TargetConfig
    package let topology: FleetTopology
    package let batchSize: Int
    private let driver: any QueueDriver
    private let consumer: any QueueSubscription
    private let loader: any BatchLoader
    private let janitor: StagingJanitor?
    private let parking: Parking
    private let check: LoadMessageCheck
    private let logger: Logger
    private let tally = Mutex(WorkerTally())
    /// A key this loader last read from S3 (a witness that S3 serves its credentials when one object is refused).
    private let lastRead = Mutex<String?>(nil)
    private let busy = Atomic<Bool>(false)
    /// The wait between tries of a batch (the warehouse away, a conflict, a timeout).
    private let backoff: Backoff

    /// - Parameter janitor: deletes staged objects once every target has loaded them (nil: keep them).
    package init(
        config: FleetConfig, target: TargetConfig, driver: any QueueDriver, loader: any BatchLoader,
        janitor: StagingJanitor?, batchSize: Int = 50, backoff: Backoff = RetryPolicy.warehouseBackoff, logger: Logger
    ) {
        self.backoff = backoff
        self.config = config
        self.target = target
        self.topology = FleetTopology(config)
        self.batchSize = batchSize
        self.logger = logger
        self.driver = driver
        self.consumer = driver.subscribe(topology.loadQueue(target.name), prefetch: batchSize)
        self.loader = loader
        self.janitor = janitor
        self.check = LoadMessageCheck(config: config)
        self.parking = Parking(
            driver: driver, exchange: topology.exchange, queue: topology.failedLoadQueue(target.name),
            noun: "load", logger: logger, metadata: ["target": "\(target.name)"])
    }

    /// The production loader: RabbitMQ, the target's warehouse, S3.
    package convenience init(config: FleetConfig, target: TargetConfig, batchSize: Int = 50, logger: Logger) {
        let s3 = S3Client(config.s3.s3Endpoint)
        let janitor =
            config.s3.keepStaged
            ? nil
            : StagingJanitor(
                s3: s3, layout: StagingLayout(folder: config.s3.folderPath), targets: config.targets.map(\.name), logger: logger)
        self.init(
            config: config, target: target,
            driver: QueueDriverFactory.make(config, logger: logger),
            loader: WarehouseLoader(target: target, s3: s3, s3Config: config.s3, logger: logger), janitor: janitor,
            batchSize: batchSize, logger: logger)
    }

    var summary: WorkerTally { tally.withLock { $0 } }
    var isBusy: Bool { busy.load(ordering: .relaxed) }

    /// Whether the loader is connected to its queue: the `/readyz` probe.
    var isReady: Bool { consumer.isConnected }

    /// Publishes every queue's depth (and, with the management API, unacked counts and the oldest message's
    /// age) as gauges every `interval` seconds until shutdown: one loader per target is always running, so the
    /// fleet's backlog is visible to Prometheus without scraping RabbitMQ itself.
    func pollQueues(every interval: Double = 15) async {
        let management = ManagementAPI(config.queue)
        // Its own connection: the load loop closes its client when it stops, possibly while a poll is running.
        let driver = QueueDriverFactory.make(config, retryWindow: 5, logger: logger)
        defer { driver.close() }
        while !WorkLoop.stopping {
            let (rows, _, problems) = await FleetStatus.queueRows(topology: topology, driver: driver, management: management)
            for row in rows {
                FleetMetrics.queue(
                    row.name, ready: row.ready, consumers: row.consumers, unacked: row.unacked,
                    oldestReadyAge: row.oldestReadyAgeSeconds ?? (row.unacked != nil && row.ready == 0 ? 0 : nil),
                    members: row.members, online: row.online)
            }
            for problem in problems { logger.debug("queue metrics: \(problem)") }
            let until = Date().addingTimeInterval(interval)
            while Date() < until, !WorkLoop.stopping { try? await Task.sleep(for: .milliseconds(200)) }
        }
    }

    /// Runs until a graceful shutdown, or until the queue has been idle `exitWhenIdle` seconds. A batch being
    /// loaded finishes first (one transaction per table: seconds); a batch waiting for its warehouse is let go
    /// unacked.
    package func run(exitWhenIdle: Double? = nil) async {
        await loader.seedFreshness()
        consumer.start()
        var lastActivity = Date()
        var attempt = 0
        let idleWait = WorkLoop.idleWait(exitWhenIdle: exitWhenIdle)
        while !WorkLoop.stopping {
            guard let first = await consumer.next(timeout: idleWait) else {
                // Idle means "connected and nothing to deliver": a broker outage is not an empty queue.
                if !consumer.isConnected { lastActivity = Date() }
                if let exitWhenIdle, -lastActivity.timeIntervalSinceNow >= exitWhenIdle { break }
                continue
            }
            busy.store(true, ordering: .relaxed)
            var batch = [first]
            while batch.count < batchSize, let more = await consumer.next(timeout: 0.05) { batch.append(more) }
            // Hold the batch until every message is loaded or parked: the warehouse being down is no reason to
            // lose it. Only what is still unsettled is tried again. A failure that follows the batch's content (a
            // statement timeout, the warehouse out of resources) splits it after `strikesBeforeSplit` tries, half by
            // half, until the load that causes it is alone; alone, it gets `strikesBeforeSplit` more and is parked.
            var width = batch.count
            var strikes = 0
            while !batch.isEmpty {
                var part = Array(batch.prefix(width))
                let rest = Array(batch.dropFirst(width))
                do {
                    try await handle(&part)
                    batch = part + rest
                    if attempt > 0 { FleetMetrics.loaderPaused(target: target.name, false) }
                    attempt = 0
                    strikes = 0
                    // After a split the next part has the same width (the culprit is in what is left); whole again once
                    // it is parked.
                    width = max(1, min(width, batch.count))
                } catch {
                    batch = part + rest
                    if LoadWorker.followsTheBatch(error), !part.isEmpty {
                        strikes += 1
                        if strikes >= LoadWorker.strikesBeforeSplit {
                            strikes = 0
                            if part.count > 1 {
                                width = (part.count + 1) / 2
                                logger.warning(
                                    "a batch keeps failing: split to find the load that causes it",
                                    metadata: ["target": "\(target.name)", "error": "\(error)", "loads": "\(width) of \(part.count)"])
                                continue
                            }
                            if await parkAlone(part[0], error) {
                                batch.removeFirst()
                                width = batch.count
                                attempt = 0
                                continue
                            }
                        }
                    }
                    let delay = backoff.delay(attempt: attempt)
                    attempt += 1
                    if let paused = error as? TargetPaused {
                        // Nothing of the batch is parked: the fault is the target's, and every load would fail alike.
                        FleetMetrics.loaderPaused(target: target.name, true)
                        logger.error(
                            "target paused: every load fails until this is fixed; the batch waits",
                            metadata: ["target": "\(target.name)", "reason": "\(paused.reason)", "retry.in_s": "\(delay)"])
                    } else {
                        logger.warning(
                            "load failed, retrying", metadata: ["target": "\(target.name)", "error": "\(error)", "retry.in_s": "\(delay)"])
                    }
                    let until = Date().addingTimeInterval(delay)
                    while Date() < until, !WorkLoop.stopping { try? await Task.sleep(for: .milliseconds(100)) }
                    if WorkLoop.stopping { break }
                }
            }
            busy.store(false, ordering: .relaxed)
            lastActivity = Date()
        }
        await consumer.stop()
        driver.close()
    }

    /// Loads the deliveries in `pending`, removing each one as it is settled (acked after its load committed, or
    /// parked). Transient failures throw with the rest still pending; permanent ones are isolated: the batch is
    /// loaded one message at a time, and the ones that fail permanently are parked.
    func handle(_ pending: inout [AMQPDelivery]) async throws {
        func settled(_ delivery: AMQPDelivery) {
            pending.removeAll { $0.deliveryTag == delivery.deliveryTag && $0.generation == delivery.generation }
        }
        var messages: [(AMQPDelivery, LoadMessage)] = []
        for delivery in pending {
            let load: LoadMessage
            do {
                load = try MessageCodec.decodeLoad(delivery.body)
            } catch {
                let headers = ParkedHeaders(
                    errorClass: .permanent, message: "not a valid load message: \(error)", channel: nil,
                    resource: nil, day: nil, attempts: 1, id: delivery.messageID)
                try await park(delivery, headers)
                settled(delivery)
                continue
            }
            do {
                try check.check(load)
            } catch {
                // Checked before anything acts on it: a crafted message deletes, copies and skips nothing.
                let headers = ParkedHeaders(
                    errorClass: .permanent, message: "\(error)", channel: load.channel, resource: load.resource,
                    day: load.partition, attempts: 1, id: load.loadID)
                try await park(delivery, headers)
                settled(delivery)
                continue
            }
            messages.append((delivery, load))
        }
        guard !messages.isEmpty else { return }
        do {
            let outcome = try await loader.load(messages.map(\.1))
            await finish(messages, outcome)
            for (delivery, _) in messages { settled(delivery) }
        } catch let error as S3Error where error.status == 403 {
            // One refused object must not pause the target, nor may wrong credentials park the backlog: S3 is asked
            // about every object of the batch (and the last one read). If it serves any, the refused ones are their
            // loads' own problem (a bucket policy, an ACL, a KMS key): those are parked, the rest loads.
            let refused = await refusedLoads(messages)
            guard !refused.isEmpty else { throw TargetPaused(reason: TargetPaused.reason(error) ?? "\(error)") }
            for (delivery, load, reason) in refused {
                let headers = ParkedHeaders(
                    errorClass: .permanent, message: reason, channel: load.channel, resource: load.resource, day: load.partition,
                    attempts: 1, id: load.loadID)
                try await park(delivery, headers)
                settled(delivery)
            }
            try await handle(&pending)
        } catch  where ErrorClass.of(error) == .permanent {
            if let reason = TargetPaused.reason(error) { throw TargetPaused(reason: reason) }
            for (delivery, load) in messages {
                do {
                    let outcome = try await loader.load([load])
                    await finish([(delivery, load)], outcome)
                } catch  where ErrorClass.of(error) == .permanent {
                    if let reason = TargetPaused.reason(error) { throw TargetPaused(reason: reason) }
                    let headers = ParkedHeaders(
                        errorClass: .permanent, message: "\(error)", channel: load.channel,
                        resource: load.resource, day: load.partition, attempts: 1, id: load.loadID)
                    try await park(delivery, headers)
                }
                settled(delivery)
            }
        }
    }

    /// The loads of `messages` whose objects S3 refuses (403) while it serves another key to the same credentials, with
    /// the reason to park them under; empty when S3 serves none (then the fault is the credentials': the target pauses).
    /// A 404 counts as served: S3 only says "no such key" to a caller it lets list the bucket.
    private func refusedLoads(_ messages: [(AMQPDelivery, LoadMessage)]) async -> [(AMQPDelivery, LoadMessage, String)] {
        var keys = messages.flatMap { $0.1.objects.map(\.key) }.prefix(Self.maxProbes).map { $0 }
        if let last = lastRead.withLock({ $0 }) { keys.append(last) }
        let answers = await loader.probe(keys)
        guard let witness = keys.first(where: { answers[$0] == 200 || answers[$0] == 404 }) else { return [] }
        return messages.compactMap { delivery, load in
            guard let key = load.objects.map(\.key).first(where: { answers[$0] == 403 }) else { return nil }
            return (
                delivery, load,
                "S3 refuses \(key) (403) while it serves \(witness) to the same credentials: this object's permissions "
                    + "(a bucket policy, an object ACL, its KMS key) keep it from the loader; fix them and re-drive this load"
            )
        }
    }

    /// The most keys one refusal asks S3 about (a HEAD each).
    static let maxProbes = 200

    private func finish(_ messages: [(AMQPDelivery, LoadMessage)], _ outcome: BatchOutcome) async {
        for (delivery, _) in messages { await consumer.ack(delivery) }
        if let applied = messages.first(where: { outcome.loaded.contains($0.1.loadID) })?.1.objects.first?.key {
            lastRead.withLock { $0 = applied }
        }
        tally.withLock {
            $0.succeeded += outcome.loaded.count
            $0.records += outcome.rowsByTable.values.reduce(0, +)
        }
        for skip in outcome.skipped {
            logger.info("load skipped", metadata: ["load.id": "\(skip.loadID)", "reason": "\(skip.reason)", "target": "\(target.name)"])
        }
        let identical = Set(outcome.reports.filter(\.identical).map(\.loadID))
        await reconcile(messages.map(\.1).filter { outcome.loaded.contains($0.loadID) || identical.contains($0.loadID) })
        if let janitor {
            // Only what this batch applied (or found identical to what it holds, its ledger row written): a load skipped
            // as older or already loaded leaves its objects alone.
            let applied = Set(outcome.loaded).union(outcome.reports.filter(\.identical).map(\.loadID))
            let loads = messages.map(\.1).filter { applied.contains($0.loadID) }
            let target = target.name
            _ = try? await Blocking.run { janitor.markLoaded(loads, by: target) }
        }
    }

    /// Checks the days this batch applied against what the API billed (``Reconciler``): a day that disagrees is read
    /// again once (its rows' job published to the extract queue under a new run id), then reported unreconciled in the
    /// log, `status` and `huskimo_unreconciled_days`. Never holds loading up: a failure is logged.
    private func reconcile(_ applied: [LoadMessage]) async {
        // Only batches that touched a table some rule reads: the others (Singular, pricing…) cost no query.
        let tables = Set(ConnectorRegistry.reconciliationRules.flatMap { [$0.rows.table, $0.usage.table] })
        let loads = applied.filter { tables.contains($0.table) }
        guard !loads.isEmpty else { return }
        let settledBefore = Day.today.adding(days: -max(config.fetch.settleDays, 1))
        do {
            let (outcome, unreconciled) = try await loader.reconcile(loads, settledBefore: settledBefore)
            FleetMetrics.unreconciledDays(target: target.name, count: unreconciled)
            for check in outcome.checks where check.state != .reconciled {
                let metadata: Logger.Metadata = [
                    "target": "\(target.name)", "channel": "\(check.channel)", "day": "\(check.day)", "kind": "\(check.kind)",
                    "rows.billable": "\(check.rows)", "billed": "\(check.billed)", "state": "\(check.state.rawValue)",
                ]
                switch check.state {
                case .unreconciled:
                    logger.error("day unreconciled: its rows still disagree with the billed count after a re-read", metadata: metadata)
                case .rereading: logger.warning("day disagrees with the billed count: reading its rows again once", metadata: metadata)
                default: logger.info("day still settling: rows and billed count differ for now", metadata: metadata)
                }
            }
            guard !outcome.rereads.isEmpty else { return }
            let now = Date()
            let jobs = outcome.rereads.map {
                ExtractJob(
                    runID: UTCTime.compact(now), channel: $0.channel, resource: $0.resource, day: $0.day, plannedAt: UTCTime.iso(now),
                    account: $0.account)
            }
            try await driver.publish(Planning.messages(jobs, topology: topology))
        } catch {
            logger.warning("reconciliation failed (loads go on): \(error)", metadata: ["target": "\(target.name)"])
        }
    }

    /// Tries of one batch (or part of one) before a failure that follows its content splits it, and of a load alone
    /// before it is parked.
    static let strikesBeforeSplit = 3

    /// Whether `error` follows what the batch holds rather than the warehouse's state: a statement timeout (57014) or the
    /// warehouse out of resources (53xxx). A connection lost, a lock wait or a conflict is retried whole, never split.
    static func followsTheBatch(_ error: any Error) -> Bool {
        let state = (error as? PQError)?.sqlState ?? (error as? LoadError)?.sqlState
        return state == "57014" || state?.hasPrefix("53") == true
    }

    /// Parks a load that kept failing alone. - Returns: whether it was parked (acked).
    private func parkAlone(_ delivery: AMQPDelivery, _ error: any Error) async -> Bool {
        let load = try? MessageCodec.decodeLoad(delivery.body)
        let headers = ParkedHeaders(
            errorClass: .transient,
            message: "failed \(LoadWorker.strikesBeforeSplit) times alone, so it is this load's: \(error)",
            channel: load?.channel, resource: load?.resource, day: load?.partition, attempts: LoadWorker.strikesBeforeSplit,
            id: load?.loadID ?? delivery.messageID)
        return (try? await park(delivery, headers)) != nil
    }

    /// Parks a delivery and acks it. - Throws: a transient error when it could not be parked (it stays pending).
    private func park(_ delivery: AMQPDelivery, _ headers: ParkedHeaders) async throws {
        guard await parking.park(delivery.body, headers: headers) else {
            throw LoadError(loadID: headers.id ?? "?", errorClass: .transient, message: "cannot park it in \(parking.queue) now")
        }
        await consumer.ack(delivery)
        tally.withLock { $0.failed += 1 }
        FleetMetrics.load(target: target.name, outcome: .failed)
    }
}

/// A failure of the whole target, not of one load: its credentials are refused, its schema or tables are missing,
/// or S3 refuses the loader's reads. Parking would move the whole backlog to the failed queue one message at a
/// time; instead the loader holds its batch and retries with backoff, with an error log line and
/// `huskimo_loader_paused{target}` at 1 (alert `HuskimoLoaderPaused`) until it loads again.
struct TargetPaused: Error, CustomStringConvertible {
    let reason: String
    var description: String { "target paused: \(reason)" }

    /// SQLSTATEs that no single load causes: authentication (28000, 28P01), a missing database, schema or table
    /// (3D000, 3F000, 42P01), missing privileges (42501).
    static let targetStates: Set<String> = ["28000", "28P01", "3D000", "3F000", "42P01", "42501"]

    /// Why `error` stops every load of the target, or nil when it is one load's own failure.
    static func reason(_ error: any Error) -> String? {
        switch error {
        case let pq as PQError where pq.sqlState.map(targetStates.contains) == true:
            return "the warehouse refuses every load (SQLSTATE \(pq.sqlState ?? "")): \(pq.reason)"
        case let s3 as S3Error where s3.status == 403:
            return "S3 refuses the staged objects (\(s3.code)): check the loader's S3 credentials and the bucket policy"
        case let load as LoadError where load.sqlState.map(targetStates.contains) == true:
            return "the warehouse refuses every load (SQLSTATE \(load.sqlState ?? "")): \(load.message)"
        default:
            return nil
        }
    }
}
