import Foundation
import HuskimoConnectors
import HuskimoCore
import Logging
import Synchronization

/// What a worker did, for its exit summary and `huskimo-planner run`.
struct WorkerTally: Sendable {
    package var succeeded = 0
    package var retried = 0
    package var failed = 0
    package var records = 0
    /// Where the succeeded jobs' time went, summed (seconds): the API (until `fetched`), staging on S3 (the rest of
    /// the extraction), publishing the load messages under confirms, and the ack.
    package var phases = JobPhases()
}

/// Seconds spent per part of a job, summed over jobs (bench/run.sh reads them from the worker's summary line).
package struct JobPhases: Sendable {
    package var fetch = 0.0
    package var stage = 0.0
    package var publish = 0.0
    package var ack = 0.0
}

/// Runs one extract job against its API and stages the result: the part of a worker that talks to Twilio,
/// Singular and S3. Blocking work happens off the cooperative pool.
protocol JobExtractor: Sendable {
    /// Runs the job; calls `fetched` once the API has given everything (the rest is S3 and the broker), so the worker
    /// can give the job's request slot to the next job.
    func extract(_ job: ExtractJob, channel: ChannelConfig, fetched: @escaping @Sendable () -> Void) async throws -> ExtractReport
    /// The current request limit of an account (for job scheduling and the concurrency gauge).
    func requestLimit(account: String) -> Int
    /// Shutdown: ends the waits between retries of the jobs in flight (they end transient, back to the delay queues).
    func stopWaiting()
}

extension JobExtractor {
    func stopWaiting() {}
}

/// The connectors (``ConnectorRegistry``) over one HTTP client, S3 client and set of account limiters.
struct ConnectorExtractor: JobExtractor {
    package let context: ExtractContext

    /// - Parameter leases: where the fleet-wide limits are held (the broker, in a worker; this process when nil).
    package init(
        s3: S3Config, fetch: FetchConfig, logger: Logger, limiters: AccountLimiters = AccountLimiters(),
        http: HTTPClient = HTTPClient(), leases: (any SlotLeases)? = nil
    ) {
        var api = APIClient(http: http, limiters: limiters, logger: logger)
        api.maxBodyBytes = fetch.maxResponseMiB << 20
        context = ExtractContext(
            api: api, s3: S3Client(s3.s3Endpoint, http: http), folder: s3.folderPath, maxPages: fetch.maxPages,
            leases: leases ?? LocalSlotLeases())
    }

    package func extract(_ job: ExtractJob, channel: ChannelConfig, fetched: @escaping @Sendable () -> Void) async throws -> ExtractReport {
        let connector = ConnectorRegistry.connector(of: channel), context = context
        return try await Blocking.run { try connector.extract(job, channel: channel, context: context, fetched: fetched) }
    }

    package func requestLimit(account: String) -> Int { context.api.limiters.limiter(for: account).currentLimit }

    package func stopWaiting() { context.api.stop.stop() }
}

/// A job's request slot, given back once: when its API part is done, or at the latest when the job ends.
final class FetchSlot: Sendable {
    private let released = Atomic<Bool>(false)
    private let onRelease: @Sendable () -> Void

    init(_ onRelease: @escaping @Sendable () -> Void) { self.onRelease = onRelease }

    func release() {
        if released.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged { onRelease() }
    }
}

/// `huskimo-worker extract`: consumes extract jobs, `concurrency` at a time; a job is acked only after its
/// staged objects and one load message per target are durable (publisher confirms). Transient failures go to
/// the delayed-retry queues with their attempt count; permanent and exhausted ones to the failed queue with
/// the class and message in headers.
final class ExtractWorker: Sendable {
    package let config: FleetConfig
    package let topology: FleetTopology
    package let policy: RetryPolicy
    package let concurrency: Int
    private let driver: any QueueDriver
    private let consumer: any QueueSubscription
    private let extractor: any JobExtractor
    private let parking: Parking
    private let logger: Logger
    private let tally = Mutex(WorkerTally())

    /// - Parameters:
    ///   - driver: the broker; the worker consumes `<prefix>.extract` with a prefetch of twice `concurrency` (the
    ///     next job is already here when one finishes; unstarted ones go back if the worker stops).
    ///   - extractor: runs the jobs (``ConnectorExtractor`` in production).
    package init(config: FleetConfig, concurrency: Int, driver: any QueueDriver, extractor: any JobExtractor, logger: Logger) {
        self.config = config
        self.topology = FleetTopology(config)
        self.policy = RetryPolicy(config.queue)
        self.concurrency = concurrency
        self.logger = logger
        self.driver = driver
        self.consumer = driver.subscribe(topology.extractQueue, prefetch: concurrency * 2)
        self.extractor = extractor
        self.parking = Parking(driver: driver, exchange: topology.exchange, queue: topology.failedQueue, noun: "job", logger: logger)
    }

    /// The production worker: RabbitMQ and the connectors.
    package convenience init(config: FleetConfig, concurrency: Int, logger: Logger) {
        self.init(
            config: config, concurrency: concurrency,
            driver: QueueDriverFactory.make(config, logger: logger),
            extractor: ConnectorExtractor(
                s3: config.s3, fetch: config.fetch, logger: logger,
                leases: AMQPSlotLeases(nodes: AMQPNodes(config.queue.nodes), prefix: config.queue.prefix)),
            logger: logger)
    }

    var summary: WorkerTally { tally.withLock { $0 } }

    private let inFlight = Atomic<Int>(0)
    /// Jobs still talking to their API: at most `concurrency`. A job whose API part is done (it completes its staged
    /// objects on S3 and publishes its load messages) frees its slot for the next job's requests; at most
    /// `concurrency` more are in that phase (the prefetch, twice the concurrency, bounds the unacked jobs).
    private let fetching = Atomic<Int>(0)
    private var slotsFull: Bool { fetching.load(ordering: .relaxed) >= concurrency || jobsInFlight >= 2 * concurrency }
    /// Wakes the scheduling loop when a job ends (rather than polling while every slot is busy).
    private let jobFinished = Wakeup()

    /// Jobs being processed now.
    package var jobsInFlight: Int { inFlight.load(ordering: .relaxed) }

    /// Runs until a graceful shutdown (ServiceLifecycle: SIGTERM or SIGINT, or the group ending), or until the queue
    /// has been idle `exitWhenIdle` seconds.
    /// - Parameter grace: seconds in-flight jobs get to finish after a shutdown request; what is still running
    ///   then stays unacked and goes back to the queue when the connection closes. Cancellation (a second signal)
    ///   ends the wait at once.
    package func run(exitWhenIdle: Double? = nil, grace: Double = 30) async {
        consumer.start()
        var lastActivity = Date()
        // Deliveries taken from the consumer but not started (up to the prefetch, twice the concurrency): the next job
        // is the first whose account has a free request slot, so a job for a saturated account does not hold a slot
        // that another account could use.
        var pending: [(delivery: AMQPDelivery, account: String?)] = []
        var gaugesAt = Date.distantPast
        let idleWait = WorkLoop.idleWait(exitWhenIdle: exitWhenIdle)
        while !WorkLoop.stopping {
            if -gaugesAt.timeIntervalSinceNow >= 2 {
                publishGauges()
                gaugesAt = Date()
            }
            while pending.count < 2 * concurrency,
                let more = await consumer.next(timeout: pending.isEmpty && jobsInFlight == 0 ? idleWait : 0.005)
            {
                pending.append((more, account(of: more)))
            }
            if slotsFull || pending.isEmpty {
                // Idle means "connected and nothing to deliver": a broker outage is not an empty queue.
                if jobsInFlight > 0 || !pending.isEmpty || !consumer.isConnected { lastActivity = Date() }
                if let exitWhenIdle, jobsInFlight == 0, pending.isEmpty, -lastActivity.timeIntervalSinceNow >= exitWhenIdle { break }
                if slotsFull { await jobFinished.wait(timeout: 0.25) }
                continue
            }
            // Every pending job's account is at its limit: a job started now would only hold a slot while it waits
            // for the account (and starve the accounts behind it). Wait for a job to end instead.
            guard let index = pending.firstIndex(where: { hasCapacity($0.account) }) else {
                lastActivity = Date()
                await jobFinished.wait(timeout: 0.25)
                continue
            }
            let (delivery, account) = pending.remove(at: index)
            lastActivity = Date()
            inFlight.add(1, ordering: .relaxed)
            fetching.add(1, ordering: .relaxed)
            // Unstructured on purpose: after the grace period the worker exits without waiting for a job stuck in
            // a blocking call; its delivery is unacked, so the broker hands it to another worker.
            if let account { activeByAccount.withLock { $0[account, default: 0] += 1 } }
            let slot = FetchSlot { [self] in
                if let account { activeByAccount.withLock { $0[account, default: 1] -= 1 } }
                fetching.subtract(1, ordering: .relaxed)
                jobFinished.notify()
            }
            Task {
                await self.process(delivery, fetched: slot.release)
                slot.release()
                self.inFlight.subtract(1, ordering: .relaxed)
                self.jobFinished.notify()
            }
        }
        consumer.pause()
        // Taken or prefetched but never started: handed back unchanged, so the next worker counts no attempt.
        var unstarted = pending.map(\.delivery)
        while let more = await consumer.next(timeout: 0.05) { unstarted.append(more) }
        await handBack(unstarted)
        if WorkLoop.stopping {
            // A job sleeping out a Retry-After (up to two minutes) would outlast the grace period: woken, it goes to
            // the delay queues now, under a confirm, instead of being redelivered after the connection closes.
            extractor.stopWaiting()
            logger.info(
                "shutting down: waiting for in-flight jobs", metadata: ["jobs.in_flight": "\(jobsInFlight)", "grace_s": "\(grace)"])
        }
        let deadline = Date().addingTimeInterval(grace)
        while jobsInFlight > 0, Date() < deadline, !Task.isCancelled { try? await Task.sleep(for: .milliseconds(50)) }
        if jobsInFlight > 0 {
            logger.warning("grace period over: unfinished jobs go back to the queue", metadata: ["jobs.in_flight": "\(jobsInFlight)"])
        }
        await consumer.stop()
        driver.close()
    }

    /// Returns deliveries no job was started for: republished as they came (same body, same attempt) and then acked,
    /// because a delivery rejected back to its queue comes again marked redelivered and would count as a crash.
    /// If the republish fails they are rejected with requeue (counted, but not lost).
    private func handBack(_ deliveries: [AMQPDelivery]) async {
        guard !deliveries.isEmpty else { return }
        let messages = deliveries.map {
            AMQPMessage(exchange: topology.exchange, routingKey: topology.extractQueue, body: $0.body, messageID: $0.messageID)
        }
        do {
            try await driver.publish(messages)
            for delivery in deliveries { await consumer.ack(delivery) }
            logger.info("handed back unstarted jobs", metadata: ["jobs": "\(deliveries.count)"])
        } catch {
            logger.warning(
                "cannot hand jobs back unchanged; rejecting them to the queue",
                metadata: ["jobs": "\(deliveries.count)", "error": "\(error)"])
            for delivery in deliveries { await consumer.reject(delivery, requeue: true) }
        }
    }

    /// Whether the worker can take jobs now (its consumer is connected): the `/readyz` probe.
    var isReady: Bool { consumer.isConnected }

    /// Jobs in flight and each channel's current request limit, for the metrics endpoint.
    private func publishGauges() {
        FleetMetrics.jobsInFlight(jobsInFlight)
        for channel in config.channels {
            let account = channel.limiterKey
            FleetMetrics.apiConcurrency(channel: channel.name, limit: extractor.requestLimit(account: account))
        }
    }

    /// Jobs running per account (the channel's Account SID).
    private let activeByAccount = Mutex<[String: Int]>([:])

    private func account(of delivery: AMQPDelivery) -> String? {
        guard let job = try? MessageCodec.decodeJob(delivery.body),
            let channel = config.channel(named: job.channel, type: job.resource.channelType)
        else { return nil }
        return channel.limiterKey
    }

    /// Whether an account has fewer jobs running than its current request limit (unknown account: yes).
    private func hasCapacity(_ account: String?) -> Bool {
        guard let account else { return true }
        let limit = extractor.requestLimit(account: account)
        return activeByAccount.withLock { $0[account, default: 0] } < limit
    }

    /// Runs one delivery to its end: acked after its load messages are durable, republished for a retry, or
    /// parked; never acked when the republish or park could not be published (the broker keeps it).
    func process(_ delivery: AMQPDelivery, fetched: @escaping @Sendable () -> Void) async {
        let started = Date()
        let job: ExtractJob
        do {
            job = try MessageCodec.decodeJob(delivery.body)
        } catch {
            let headers = ParkedHeaders(
                errorClass: .permanent, message: "not a valid extract job: \(error)", channel: nil,
                resource: nil, day: nil, attempts: 0, id: delivery.messageID)
            if await park(delivery.body, headers, resource: nil) { await consumer.ack(delivery) }
            return
        }
        if delivery.redelivered {
            // A worker died holding this job: count that as an attempt, so a job that kills workers ends parked.
            switch policy.afterRedelivery(attempt: job.attempt) {
            case .park(let attempts):
                guard
                    await park(
                        job, attempts: attempts, errorClass: .permanent,
                        message: "redelivered \(attempts) times: it keeps killing workers")
                else { return }
            case .retry(let attempt, _):
                var again = job
                again.attempt = attempt
                do {
                    try await driver.publish([jobMessage(again, routingKey: topology.extractQueue)])
                } catch {
                    // Not republished: leave this delivery unacked so the broker keeps the job.
                    logger.warning(
                        "cannot republish a redelivered job; it stays on the queue",
                        metadata: ["job.id": "\(job.jobID)", "error": "\(error)"])
                    return
                }
            }
            await consumer.ack(delivery)
            return
        }
        // A run id from the future would make every later reload of its partitions look older (and be skipped): a
        // planner whose clock runs ahead is refused here, named, before anything is staged.
        if let planned = UTCTime.date(compact: job.runID), planned > Date().addingTimeInterval(LoadMessageCheck.clockTolerance) {
            if await park(
                job, attempts: job.attempt, errorClass: .permanent,
                message:
                    "run_id \(job.runID.printable(limit: 40)) is later than this worker's clock (\(UTCTime.iso(Date()))): its planner's clock runs ahead"
            ) {
                await consumer.ack(delivery)
            }
            return
        }
        guard let channel = config.channel(named: job.channel, type: job.resource.channelType) else {
            if await park(
                job, attempts: job.attempt, errorClass: .permanent,
                message: "no \(job.resource.channelType) channel named \(job.channel.printable(limit: 80)) in this worker's configuration")
            {
                await consumer.ack(delivery)
            }
            return
        }
        do {
            let begun = ContinuousClock.now
            let fetchedAt = Mutex<ContinuousClock.Instant?>(nil)
            let report = try await extractor.extract(job, channel: channel) {
                fetchedAt.withLock { $0 = $0 ?? .now }
                fetched()
            }
            let extracted = ContinuousClock.now
            let body = MessageCodec.encode(report.load)
            let loads = topology.targets.map {
                AMQPMessage(exchange: topology.exchange, routingKey: topology.loadQueue($0), body: body, messageID: report.load.loadID)
            }
            try await driver.publish(loads)
            let published = ContinuousClock.now
            await consumer.ack(delivery)
            let acked = ContinuousClock.now
            let apiDone = fetchedAt.withLock { $0 } ?? extracted
            tally.withLock {
                $0.succeeded += 1
                $0.records += report.records
                $0.phases.fetch += (apiDone - begun).seconds
                $0.phases.stage += (extracted - apiDone).seconds
                $0.phases.publish += (published - extracted).seconds
                $0.phases.ack += (acked - published).seconds
            }
            FleetMetrics.job(
                resource: job.resource.rawValue, outcome: .succeeded, seconds: -started.timeIntervalSinceNow,
                records: report.records, stagedBytes: report.stagedBytes)
            var metadata: Logger.Metadata = [
                "job.id": "\(job.jobID)", "job.attempt": "\(job.attempt)", "records": "\(report.records)",
                "objects": "\(report.load.objects.count)", "bytes.staged": "\(report.stagedBytes)",
                "duration_s": "\(String(format: "%.2f", -started.timeIntervalSinceNow))",
                "http.requests": "\(report.tally.requests)", "http.retries": "\(report.tally.retries)",
            ]
            if report.replacedValues > 0 {
                // Counted, not silent: the API sent bytes no warehouse loads (U+0000, invalid UTF-8), staged as U+FFFD.
                metadata["values.replaced"] = "\(report.replacedValues)"
                logger.warning("values replaced with U+FFFD", metadata: ["job.id": "\(job.jobID)", "values": "\(report.replacedValues)"])
            }
            logger.info("job succeeded", metadata: metadata)
        } catch {
            let jobError = (error as? JobError) ?? JobError(job, error)
            switch policy.afterFailure(attempt: job.attempt, errorClass: jobError.errorClass) {
            case .retry(let attempt, let delay):
                var retry = job
                retry.attempt = attempt
                var message = jobMessage(retry, routingKey: topology.retryQueue(delay: delay))
                message.headers = ["x-last-error": .string(String(jobError.message.prefix(1000)))]
                do {
                    try await driver.publish([message])
                    await consumer.ack(delivery)
                    tally.withLock { $0.retried += 1 }
                    FleetMetrics.job(resource: job.resource.rawValue, outcome: .retried, seconds: -started.timeIntervalSinceNow)
                    logger.warning(
                        "job failed, will retry",
                        metadata: [
                            "job.id": "\(job.jobID)", "job.attempt": "\(job.attempt)", "retry.in_s": "\(delay)",
                            "error": "\(jobError.message)",
                        ])
                } catch {
                    // Could not schedule the retry: leave the job unacked; the broker redelivers it.
                    logger.error(
                        "cannot publish a retry; the job stays on the queue", metadata: ["job.id": "\(job.jobID)", "error": "\(error)"])
                }
            case .park(let attempts):
                let message = jobError.isRetriable ? "gave up after \(attempts) attempts: \(jobError.message)" : jobError.message
                if await park(job, attempts: attempts, errorClass: jobError.errorClass, message: message) { await consumer.ack(delivery) }
            }
        }
    }

    private func jobMessage(_ job: ExtractJob, routingKey: String) -> AMQPMessage {
        AMQPMessage(exchange: topology.exchange, routingKey: routingKey, body: MessageCodec.encode(job), messageID: job.jobID)
    }

    /// Parks a job (its attempt count set to `attempts`). - Returns: false when it could not be published.
    private func park(_ job: ExtractJob, attempts: Int, errorClass: ErrorClass, message: String) async -> Bool {
        var parked = job
        parked.attempt = attempts
        let headers = ParkedHeaders(
            errorClass: errorClass, message: message, channel: job.channel, resource: job.resource.rawValue,
            day: job.day?.description, attempts: attempts, id: job.jobID)
        return await park(MessageCodec.encode(parked), headers, resource: job.resource.rawValue)
    }

    private func park(_ body: [UInt8], _ headers: ParkedHeaders, resource: String?) async -> Bool {
        guard await parking.park(body, headers: headers) else { return false }
        tally.withLock { $0.failed += 1 }
        FleetMetrics.job(resource: resource ?? "unknown", outcome: .failed, seconds: nil)
        return true
    }
}
