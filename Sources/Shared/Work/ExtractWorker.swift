import Foundation
public import Logging
import Synchronization

/// What a worker did, for its exit summary and `huskimo-planner run`.
public struct WorkerTally: Sendable {
    public var succeeded = 0
    public var retried = 0
    public var failed = 0
    public var records = 0
}

/// `huskimo-worker extract`: consumes extract jobs, `concurrency` at a time; a job is acked only after its
/// staged objects and one load message per target are durable (publisher confirms). Transient failures go to
/// the delayed-retry queues with their attempt count; permanent and exhausted ones to the failed queue with
/// the class and message in headers.
public final class ExtractWorker: Sendable {
    public let config: FleetConfig
    public let topology: FleetTopology
    public let concurrency: Int
    private let client: QueueClient
    private let consumer: QueueConsumer
    private let s3: S3Client
    private let api: APIClient
    private let logger: Logger
    private let tally = Mutex(WorkerTally())

    public init(config: FleetConfig, concurrency: Int, logger: Logger, limiters: AccountLimiters = AccountLimiters(),
                http: HTTPClient = HTTPClient()) {
        self.config = config
        self.topology = FleetTopology(config.queue, targets: config.targets.map(\.name))
        self.concurrency = concurrency
        self.logger = logger
        self.client = QueueClient(url: config.queue.url, topology: topology.topology, logger: logger)
        // Prefetch twice the concurrency: the next job is already here when one finishes (no ack round trip
        // between jobs); a job starts only when a slot is free, and unstarted ones go back if the worker stops.
        self.consumer = QueueConsumer(url: config.queue.url, queue: topology.extractQueue, prefetch: concurrency * 2,
                                      topology: topology.topology, logger: logger)
        self.s3 = S3Client(config.s3.s3Endpoint, http: http)
        self.api = APIClient(http: http, limiters: limiters, logger: logger)
    }

    public var summary: WorkerTally { tally.withLock { $0 } }

    private let inFlight = Atomic<Int>(0)
    /// Wakes the scheduling loop when a job ends (rather than polling while every slot is busy).
    private let jobFinished = Wakeup()

    /// Jobs being processed now.
    public var jobsInFlight: Int { inFlight.load(ordering: .relaxed) }

    /// Runs until `shutdown` is requested, or until the queue has been idle `exitWhenIdle` seconds.
    /// - Parameter grace: seconds in-flight jobs get to finish after a shutdown request; what is still running
    ///   then stays unacked and goes back to the queue when the connection closes.
    public func run(shutdown: ShutdownSignal, exitWhenIdle: Double? = nil, grace: Double = 30) async {
        consumer.start()
        var lastActivity = Date()
        // Deliveries taken from the consumer but not started: the next job is the first whose account has a
        // free request slot, so a job for a saturated account does not hold a slot that another account could use.
        var pending: [(delivery: AMQPDelivery, account: String?)] = []
        var gaugesAt = Date.distantPast
        while !shutdown.requested {
            if -gaugesAt.timeIntervalSinceNow >= 2 {
                publishGauges()
                gaugesAt = Date()
            }
            while pending.count < concurrency, let more = await consumer.next(timeout: pending.isEmpty && jobsInFlight == 0 ? 0.25 : 0.005) {
                pending.append((more, account(of: more)))
            }
            if jobsInFlight >= concurrency || pending.isEmpty {
                // Idle means "connected and nothing to deliver": a broker outage is not an empty queue.
                if jobsInFlight > 0 || !pending.isEmpty || !consumer.isConnected { lastActivity = Date() }
                if let exitWhenIdle, jobsInFlight == 0, pending.isEmpty, -lastActivity.timeIntervalSinceNow >= exitWhenIdle { break }
                if jobsInFlight >= concurrency { await jobFinished.wait(timeout: 0.25) }
                continue
            }
            let index = pending.firstIndex { hasCapacity($0.account) } ?? 0
            let (delivery, account) = pending.remove(at: index)
            lastActivity = Date()
            inFlight.add(1, ordering: .relaxed)
            // Unstructured on purpose: after the grace period the worker exits without waiting for a job stuck in
            // a blocking call; its delivery is unacked, so the broker hands it to another worker.
            if let account { activeByAccount.withLock { $0[account, default: 0] += 1 } }
            Task {
                await self.process(delivery)
                if let account { self.activeByAccount.withLock { $0[account, default: 1] -= 1 } }
                self.inFlight.subtract(1, ordering: .relaxed)
                self.jobFinished.notify()
            }
        }
        // Taken but never started: back to the queue for another worker.
        for (delivery, _) in pending { await consumer.reject(delivery, requeue: true) }
        consumer.pause()
        if shutdown.requested {
            logger.info("shutting down: waiting for in-flight jobs", metadata: ["jobs.in_flight": "\(jobsInFlight)", "grace_s": "\(grace)"])
        }
        let deadline = Date().addingTimeInterval(grace)
        while jobsInFlight > 0, Date() < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        if jobsInFlight > 0 {
            logger.warning("grace period over: unfinished jobs go back to the queue", metadata: ["jobs.in_flight": "\(jobsInFlight)"])
        }
        await consumer.stop()
        client.close()
    }

    /// Whether the worker can take jobs now (its consumer is connected): the `/readyz` probe.
    public var isReady: Bool { consumer.isConnected }

    /// Jobs in flight and each channel's current request limit, for the metrics endpoint.
    private func publishGauges() {
        FleetMetrics.jobsInFlight(jobsInFlight)
        for channel in config.channels {
            let account = channel.limiterKey
            FleetMetrics.apiConcurrency(channel: channel.name, limit: api.limiters.limiter(for: account).currentLimit)
        }
    }

    /// Jobs running per account (the channel's Account SID).
    private let activeByAccount = Mutex<[String: Int]>([:])

    private func account(of delivery: AMQPDelivery) -> String? {
        guard let job = try? FleetMessages.decodeJob(delivery.body),
              let channel = config.channel(named: job.channel, type: job.resource.channelType)
        else { return nil }
        return channel.limiterKey
    }

    /// Whether an account has fewer jobs running than its current request limit (unknown account: yes).
    private func hasCapacity(_ account: String?) -> Bool {
        guard let account else { return true }
        let limit = api.limiters.limiter(for: account).currentLimit
        return activeByAccount.withLock { $0[account, default: 0] } < limit
    }

    func process(_ delivery: AMQPDelivery) async {
        let started = Date()
        let job: ExtractJob
        do {
            job = try FleetMessages.decodeJob(delivery.body)
        } catch {
            if await park(body: delivery.body, id: delivery.messageID, channel: nil, resource: nil, day: nil, attempts: 0,
                       errorClass: .permanent, message: "not a valid extract job: \(error)") { await consumer.ack(delivery) }
            return
        }
        var current = job
        if delivery.redelivered {
            // A worker died holding this job: count that as an attempt, so a job that kills workers ends parked.
            current.attempt += 1
            if current.attempt >= config.queue.maxAttempts {
                guard await park(job: current, errorClass: .permanent, message: "redelivered \(current.attempt) times: it keeps killing workers")
                else { return }
            } else {
                do {
                    try await client.publish([AMQPMessage(exchange: topology.exchange, routingKey: topology.extractQueue,
                                                          body: FleetMessages.encode(current), messageID: current.jobID)])
                } catch {
                    // Not republished: leave this delivery unacked so the broker keeps the job.
                    logger.warning("cannot republish a redelivered job; it stays on the queue", metadata: ["job.id": "\(job.jobID)", "error": "\(error)"])
                    return
                }
            }
            await consumer.ack(delivery)
            return
        }
        guard let channel = config.channel(named: job.channel, type: job.resource.channelType) else {
            if await park(job: job, errorClass: .permanent, message: "no \(job.resource.channelType) channel named \(job.channel) in this worker's configuration") { await consumer.ack(delivery) }
            return
        }
        do {
            let report: ExtractReport
            switch channel.type {
            case .twilio:
                let extractor = TwilioExtractor(channel: channel, client: api, s3: s3, folder: config.s3.folderPath)
                report = try await Blocking.run { try extractor.extract(job) }
            case .singular:
                let extractor = SingularExtractor(channel: channel, client: api, s3: s3, folder: config.s3.folderPath)
                report = try await Blocking.run { try extractor.extract(job) }
            }
            let body = FleetMessages.encode(report.load)
            let loads = topology.targets.map {
                AMQPMessage(exchange: topology.exchange, routingKey: topology.loadQueue($0), body: body, messageID: report.load.loadID)
            }
            try await client.publish(loads)
            await consumer.ack(delivery)
            tally.withLock {
                $0.succeeded += 1
                $0.records += report.records
            }
            FleetMetrics.job(resource: job.resource.rawValue, outcome: .succeeded, seconds: -started.timeIntervalSinceNow,
                             records: report.records, stagedBytes: report.stagedBytes)
            logger.info("job succeeded", metadata: [
                "job.id": "\(job.jobID)", "job.attempt": "\(job.attempt)", "records": "\(report.records)",
                "objects": "\(report.load.objects.count)", "bytes.staged": "\(report.stagedBytes)", "duration_s": "\(String(format: "%.2f", -started.timeIntervalSinceNow))",
                "http.requests": "\(report.tally.requests)", "http.retries": "\(report.tally.retries)",
            ])
            if report.outsidePartition > 0 {
                logger.warning("records outside the job's day (kept: the API's filter chose them)", metadata: [
                    "job.id": "\(job.jobID)", "records.outside_day": "\(report.outsidePartition)"])
            }
        } catch {
            let jobError = (error as? JobError) ?? JobError(job, error)
            let next = job.attempt + 1
            if jobError.isRetriable && next < config.queue.maxAttempts {
                var retry = job
                retry.attempt = next
                let delay = topology.retryDelay(attempt: next)
                do {
                    try await client.publish([AMQPMessage(
                        exchange: topology.exchange, routingKey: topology.retryQueue(delay: delay), body: FleetMessages.encode(retry),
                        headers: ["x-last-error": .string(String(jobError.message.prefix(1000)))], messageID: job.jobID)])
                    await consumer.ack(delivery)
                    tally.withLock { $0.retried += 1 }
                    FleetMetrics.job(resource: job.resource.rawValue, outcome: .retried, seconds: -started.timeIntervalSinceNow)
                    logger.warning("job failed, will retry", metadata: [
                        "job.id": "\(job.jobID)", "job.attempt": "\(job.attempt)", "retry.in_s": "\(delay)", "error": "\(jobError.message)"])
                } catch {
                    // Could not schedule the retry: leave the job unacked; the broker redelivers it.
                    logger.error("cannot publish a retry; the job stays on the queue", metadata: ["job.id": "\(job.jobID)", "error": "\(error)"])
                }
            } else {
                var parked = job
                parked.attempt = next
                if await park(job: parked, errorClass: jobError.errorClass,
                           message: jobError.isRetriable ? "gave up after \(next) attempts: \(jobError.message)" : jobError.message) { await consumer.ack(delivery) }
            }
        }
    }

    /// Parks a job in the failed queue. - Returns: false when it could not be published (then do not ack it).
    @discardableResult
    private func park(job: ExtractJob, errorClass: ErrorClass, message: String) async -> Bool {
        await park(body: FleetMessages.encode(job), id: job.jobID, channel: job.channel, resource: job.resource.rawValue,
                   day: job.day?.description, attempts: job.attempt, errorClass: errorClass, message: message)
    }

    private func park(body: [UInt8], id: String?, channel: String?, resource: String?, day: String?, attempts: Int,
                      errorClass: ErrorClass, message: String) async -> Bool {
        let headers = FleetMessages.failureHeaders(errorClass: errorClass, message: message, channel: channel, resource: resource,
                                                   day: day, attempts: attempts, id: id)
        do {
            try await client.publish([AMQPMessage(exchange: topology.exchange, routingKey: topology.failedQueue, body: body,
                                                  headers: headers, messageID: id)])
        } catch {
            logger.error("cannot park a failed job; it stays on the queue", metadata: ["job.id": "\(id ?? "?")", "error": "\(error)"])
            return false
        }
        tally.withLock { $0.failed += 1 }
        FleetMetrics.job(resource: resource ?? "unknown", outcome: .failed, seconds: nil)
        logger.error("job failed", metadata: ["job.id": "\(id ?? "?")", "error.class": "\(errorClass)", "error": "\(message)"])
        return true
    }
}
