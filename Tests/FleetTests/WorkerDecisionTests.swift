import Foundation
import HuskimoTesting
import Logging
import ServiceLifecycleTestKit
import Synchronization
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

/// The workers' decisions, on an in-memory broker: ack only after the effect is durable, retry through the delay
/// queue of the attempt, park with headers, count redeliveries, hand back what was not started, isolate a bad
/// load. The same paths run against the real RabbitMQ in IntegrationTests.
@Suite(.timeLimit(.minutes(1))) struct WorkerDecisionTests {
    static let logger = Logger(label: "test.decisions")

    static func config() throws -> FleetConfig {
        try FleetConfig.parse(
            """
            queue: {retry_delays: [10, 60], max_attempts: 3}
            channels:
              - {name: us, type: twilio, api_user: AC1, api_key: k}
              - {name: eu, type: twilio, api_user: AC2, api_key: k}
            s3: {access_key_id: k, secret_access_key: s, region: us-east-1, bucket: b}
            targets:
              - {name: wh, type: postgres, host: h, database: d, username: u}
              - {name: rs, type: redshift, host: h, database: d, username: u}
            """, environment: [:])
    }

    /// Extracts by a rule per job id: succeed with `rows` rows, or throw.
    final class ScriptedExtractor: JobExtractor {
        let rule: @Sendable (ExtractJob) throws -> Int
        let delay: Duration
        let calls = Mutex<[String]>([])
        /// Request limits by account (default 4), and the most jobs of each channel that ran at once.
        let limits: [String: Int]
        let running = Mutex<(now: [String: Int], peak: [String: Int])>(([:], [:]))

        init(delay: Duration = .zero, limits: [String: Int] = [:], _ rule: @escaping @Sendable (ExtractJob) throws -> Int) {
            self.rule = rule
            self.delay = delay
            self.limits = limits
        }

        /// Never says when its API part ends: the slot is given back when the job ends.
        func extract(_ job: ExtractJob, channel: ChannelConfig, fetched: @escaping @Sendable () -> Void) async throws -> ExtractReport {
            calls.withLock { $0.append(job.jobID) }
            running.withLock {
                $0.now[job.channel, default: 0] += 1
                $0.peak[job.channel] = max($0.peak[job.channel] ?? 0, $0.now[job.channel]!)
            }
            defer { running.withLock { $0.now[job.channel, default: 1] -= 1 } }
            if delay > .zero { try? await Task.sleep(for: delay) }
            let rows = try rule(job)
            let load = LoadMessage.fixture(
                job: job, folder: (try? WorkerDecisionTests.config().s3.folderPath) ?? "", rows: [rows],
                extractedAt: "2026-11-28T00:00:00.000Z")
            return ExtractReport(load: load, records: rows, tally: APIClient.Tally(), accounts: ["AC1"])
        }

        func requestLimit(account: String) -> Int { limits[account] ?? 4 }
    }

    struct Failure: ClassifiedError {
        let errorClass: ErrorClass
        var description: String { "scripted \(errorClass) failure" }
    }

    static func job(_ day: String, attempt: Int = 0, channel: String = "us") -> ExtractJob {
        ExtractJob(runID: ExtractJob.fixtureRunID, channel: channel, resource: .calls, day: Day(day), attempt: attempt, plannedAt: "p")
    }

    /// Runs an extract worker over what is queued until it has been idle briefly.
    static func runExtract(
        _ driver: InMemoryQueueDriver, _ extractor: ScriptedExtractor, concurrency: Int = 2
    ) async throws
        -> (ExtractWorker, FleetTopology)
    {
        let config = try config()
        let worker = ExtractWorker(config: config, concurrency: concurrency, driver: driver, extractor: extractor, logger: logger)
        await worker.run(exitWhenIdle: 0.3, grace: 5)
        return (worker, worker.topology)
    }

    static func enqueue(_ driver: InMemoryQueueDriver, _ job: ExtractJob, redelivered: Bool = false) {
        driver.enqueue(MessageCodec.encode(job), on: "huskimo.extract", messageID: job.jobID, redelivered: redelivered)
    }

    static func jobs(in driver: InMemoryQueueDriver, _ queue: String) throws -> [ExtractJob] {
        try driver.messages(in: queue).map { try MessageCodec.decodeJob($0.body) }
    }

    /// An extractor whose jobs talk to their API for `api`, then stage for `staging`: how many were in each phase at once.
    final class PhasedExtractor: JobExtractor {
        let api: Duration
        let staging: Duration
        let peaks = Mutex<(fetching: Int, inFlight: Int, nowFetching: Int, nowInFlight: Int)>((0, 0, 0, 0))

        init(api: Duration, staging: Duration) {
            self.api = api
            self.staging = staging
        }

        func extract(_ job: ExtractJob, channel: ChannelConfig, fetched: @escaping @Sendable () -> Void) async throws -> ExtractReport {
            peaks.withLock {
                $0.nowFetching += 1
                $0.nowInFlight += 1
                $0.fetching = max($0.fetching, $0.nowFetching)
                $0.inFlight = max($0.inFlight, $0.nowInFlight)
            }
            try? await Task.sleep(for: api)
            peaks.withLock { $0.nowFetching -= 1 }
            fetched()
            try? await Task.sleep(for: staging)
            peaks.withLock { $0.nowInFlight -= 1 }
            let load = LoadMessage.fixture(
                job: job, folder: (try? WorkerDecisionTests.config().s3.folderPath) ?? "", rows: [1],
                extractedAt: "2026-11-28T00:00:00.000Z")
            return ExtractReport(load: load, records: 1, tally: APIClient.Tally(), accounts: ["AC1"])
        }

        func requestLimit(account: String) -> Int { 100 }
    }

    /// A job whose API part is done frees its request slot: the next job's requests start while it completes its staged
    /// objects and publishes, and no more than `concurrency` jobs talk to the API at once (fails with the old rule,
    /// which held the slot to the end: at most 2 in flight).
    @Test func aJobThatHasFetchedEverythingFreesItsSlotWhileItStages() async throws {
        let driver = InMemoryQueueDriver()
        for day in 1...8 { Self.enqueue(driver, Self.job("2026-11-\(10 + day)")) }
        let extractor = PhasedExtractor(api: .milliseconds(40), staging: .milliseconds(200))
        let config = try Self.config()
        let worker = ExtractWorker(config: config, concurrency: 2, driver: driver, extractor: extractor, logger: Self.logger)
        await worker.run(exitWhenIdle: 0.3, grace: 5)
        let peaks = extractor.peaks.withLock { $0 }
        #expect(worker.summary.succeeded == 8 && driver.unackedCount == 0)
        #expect(peaks.fetching <= 2, "at most the concurrency talking to the API: \(peaks.fetching)")
        #expect(peaks.inFlight > 2 && peaks.inFlight <= 4, "staging overlaps the next jobs' requests, bounded: \(peaks.inFlight)")
    }

    @Test func aSucceededJobPublishesOneLoadPerTargetThenAcks() async throws {
        let driver = InMemoryQueueDriver()
        Self.enqueue(driver, Self.job("2026-11-28"))
        let (worker, topology) = try await Self.runExtract(driver, ScriptedExtractor { _ in 7 })
        for target in ["wh", "rs"] {
            let loads = try driver.messages(in: topology.loadQueue(target)).map { try MessageCodec.decodeLoad($0.body) }
            #expect(loads.map(\.jobID) == ["twilio/us/calls/2026-11-28"])
            #expect(loads.first?.rows == 7 && loads.first?.table == "twilio_calls" && loads.first?.partition == "2026-11-28")
        }
        #expect(driver.messages(in: topology.extractQueue).isEmpty && driver.unackedCount == 0)
        #expect(worker.summary.succeeded == 1 && worker.summary.records == 7 && worker.summary.failed == 0)
    }

    @Test func transientFailuresClimbTheDelayLadderThenPark() async throws {
        let driver = InMemoryQueueDriver()
        let extractor = ScriptedExtractor { _ in throw Failure(errorClass: .transient) }
        Self.enqueue(driver, Self.job("2026-11-28"))
        let (_, topology) = try await Self.runExtract(driver, extractor)
        let first = try Self.jobs(in: driver, topology.retryQueue(delay: 10))
        #expect(first.map(\.attempt) == [1])
        #expect(
            driver.messages(in: topology.retryQueue(delay: 10)).first?.headers["x-last-error"]?.stringValue == "scripted transient failure")

        // The delay queue dead-letters it back; attempt 1 fails again: the next rung.
        Self.enqueue(driver, try #require(first.first))
        _ = try await Self.runExtract(driver, extractor)
        #expect(try Self.jobs(in: driver, topology.retryQueue(delay: 60)).map(\.attempt) == [2])

        // Attempt 2 of 3 fails: parked, with why.
        Self.enqueue(driver, Self.job("2026-11-28", attempt: 2))
        let (worker, _) = try await Self.runExtract(driver, extractor)
        let parked = driver.messages(in: topology.failedQueue)
        #expect(parked.count == 1)
        let headers = ParkedHeaders(try #require(parked.first).headers)
        #expect(headers.errorClass == "transient" && headers.attempts == 3 && headers.channel == "us" && headers.resource == "calls")
        #expect(headers.day == "2026-11-28" && headers.message.hasPrefix("gave up after 3 attempts"))
        #expect(try MessageCodec.decodeJob(try #require(parked.first).body).attempt == 3)
        #expect(worker.summary.failed == 1 && driver.unackedCount == 0)
    }

    @Test func aPermanentFailureIsParkedAtOnce() async throws {
        let driver = InMemoryQueueDriver()
        Self.enqueue(driver, Self.job("2026-11-28"))
        let (_, topology) = try await Self.runExtract(driver, ScriptedExtractor { _ in throw Failure(errorClass: .permanent) })
        let parked = driver.messages(in: topology.failedQueue).map { ParkedHeaders($0.headers) }
        #expect(parked.map(\.errorClass) == ["permanent"])
        #expect(parked.first?.attempts == 1 && parked.first?.message.contains("scripted permanent failure") == true)
        #expect(driver.messages(in: topology.retryQueue(delay: 10)).isEmpty)
    }

    @Test func anUnclassifiedErrorIsParkedNotRetriedBlindly() async throws {
        struct Odd: Error {}
        let driver = InMemoryQueueDriver()
        Self.enqueue(driver, Self.job("2026-11-28"))
        let (_, topology) = try await Self.runExtract(driver, ScriptedExtractor { _ in throw Odd() })
        #expect(driver.messages(in: topology.failedQueue).map { ParkedHeaders($0.headers).errorClass } == ["permanent"])
    }

    @Test func aRedeliveryCountsAnAttemptAndAJobThatKeepsKillingWorkersIsParked() async throws {
        let driver = InMemoryQueueDriver()
        let extractor = ScriptedExtractor { _ in 1 }
        Self.enqueue(driver, Self.job("2026-11-27"), redelivered: true)
        Self.enqueue(driver, Self.job("2026-11-28", attempt: 2), redelivered: true)
        let (worker, topology) = try await Self.runExtract(driver, extractor)
        // 11-27: republished with its attempt counted, then (delivered fresh) extracted.
        #expect(extractor.calls.withLock { $0 } == ["twilio/us/calls/2026-11-27"])
        let loads = try driver.messages(in: topology.loadQueue("wh")).map { try MessageCodec.decodeLoad($0.body) }
        #expect(loads.map(\.jobID) == ["twilio/us/calls/2026-11-27"])
        #expect(driver.published.contains { $0.routingKey == topology.extractQueue && (try? MessageCodec.decodeJob($0.body).attempt) == 1 })
        // 11-28 was at attempt 2 of 3: parked without being run again.
        let parked = driver.messages(in: topology.failedQueue).map { ParkedHeaders($0.headers) }
        #expect(parked.map(\.day) == ["2026-11-28"])
        #expect(parked.first?.message.contains("keeps killing workers") == true && parked.first?.attempts == 3)
        #expect(worker.summary.failed == 1 && worker.summary.succeeded == 1)
    }

    @Test func unreadableJobsAndUnknownChannelsAreParkedPermanent() async throws {
        let driver = InMemoryQueueDriver()
        driver.enqueue(Array("{not json".utf8), on: "huskimo.extract", messageID: "garbage")
        Self.enqueue(driver, Self.job("2026-11-28", channel: "nobody"))
        let (_, topology) = try await Self.runExtract(driver, ScriptedExtractor { _ in 1 })
        let parked = driver.messages(in: topology.failedQueue).map { ParkedHeaders($0.headers) }
        #expect(parked.count == 2 && parked.allSatisfy { $0.errorClass == "permanent" })
        #expect(parked.contains { $0.id == "garbage" && $0.message.hasPrefix("not a valid extract job") })
        #expect(parked.contains { $0.channel == "nobody" && $0.message.contains("no twilio channel named nobody") })
        #expect(driver.unackedCount == 0)
    }

    @Test func aRetryThatCannotBePublishedLeavesTheJobOnItsQueue() async throws {
        let driver = InMemoryQueueDriver()
        Self.enqueue(driver, Self.job("2026-11-28"))
        driver.failPublishes = true
        let (worker, topology) = try await Self.runExtract(
            driver, ScriptedExtractor { _ in throw Failure(errorClass: .transient) },
            concurrency: 1)
        driver.failPublishes = false
        // Never acked: back on the work queue (redelivered) once the worker let go, nothing lost, nothing parked.
        #expect(try Self.jobs(in: driver, topology.extractQueue).map(\.jobID) == ["twilio/us/calls/2026-11-28"])
        #expect(driver.messages(in: topology.failedQueue).isEmpty && worker.summary.retried == 0)
    }

    @Test func aJobWhoseAccountIsAtItsLimitWaitsAndTheNextAccountsJobRuns() async throws {
        // us (AC1) takes one request at a time; its four jobs are queued ahead of eu's one. With three slots, the
        // worker runs one us job and the eu job, and starts no second us job just to wait on the account.
        let driver = InMemoryQueueDriver()
        for day in ["2026-11-25", "2026-11-26", "2026-11-27", "2026-11-28"] { Self.enqueue(driver, Self.job(day)) }
        Self.enqueue(driver, Self.job("2026-11-28", channel: "eu"))
        let extractor = ScriptedExtractor(delay: .milliseconds(100), limits: ["AC1": 1]) { _ in 1 }
        let (worker, _) = try await Self.runExtract(driver, extractor, concurrency: 3)
        #expect(worker.summary.succeeded == 5)
        #expect(extractor.running.withLock { $0.peak } == ["us": 1, "eu": 1])
        // eu did not wait behind the us backlog: it ran second, not last.
        #expect(extractor.calls.withLock { $0.firstIndex(of: "twilio/eu/calls/2026-11-28") } == 1)
    }

    @Test func shutdownFinishesTheRunningJobAndHandsBackTheRest() async throws {
        let driver = InMemoryQueueDriver()
        for day in ["2026-11-25", "2026-11-26", "2026-11-27", "2026-11-28"] { Self.enqueue(driver, Self.job(day)) }
        let extractor = ScriptedExtractor(delay: .milliseconds(300)) { _ in 1 }
        let config = try Self.config()
        let worker = ExtractWorker(config: config, concurrency: 1, driver: driver, extractor: extractor, logger: Self.logger)
        try await testGracefulShutdown { trigger in
            async let running: Void = worker.run(grace: 5)
            while extractor.calls.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(5)) }
            trigger.triggerGracefulShutdown()
            await running
        }
        let topology = worker.topology
        // The job in flight finished and was acked; the others are back on the queue, none lost or run twice.
        #expect(extractor.calls.withLock { $0.count } == 1)
        #expect(try driver.messages(in: topology.loadQueue("wh")).map { try MessageCodec.decodeLoad($0.body).jobID }.count == 1)
        #expect(try Self.jobs(in: driver, topology.extractQueue).count == 3)
        #expect(driver.unackedCount == 0)
        // Handed back unchanged, not rejected: the next worker counts no attempt against jobs nobody started.
        #expect(driver.redeliveredFlags(in: topology.extractQueue) == [false, false, false])
        #expect(try Self.jobs(in: driver, topology.extractQueue).allSatisfy { $0.attempt == 0 })
    }

    // MARK: - Loader

    /// Loads by a rule: a batch containing a message whose partition is in `bad` fails with `badClass`.
    final class ScriptedLoader: BatchLoader {
        let bad: Set<String>
        /// Partitions whose batch always runs past statement_timeout.
        let slow: Set<String>
        let failures: Mutex<[any Error]>
        let batches = Mutex<[[String]]>([])
        /// Partitions whose objects S3 refuses (403), to loads and probes alike; `s3Down`: every key refused.
        let refused: Set<String>
        let s3Down: Bool
        let probes = Mutex<[[String]]>([])

        init(bad: Set<String> = [], slow: Set<String> = [], failures: [any Error] = [], refused: Set<String> = [], s3Down: Bool = false) {
            self.bad = bad
            self.slow = slow
            self.failures = Mutex(failures)
            self.refused = refused
            self.s3Down = s3Down
        }

        func probe(_ keys: [String]) async -> [String: Int?] {
            probes.withLock { $0.append(keys) }
            return Dictionary(keys.map { key in (key, s3Down || refused.contains { key.contains("/\($0)/") } ? 403 : 200) }) { a, _ in a }
        }

        func load(_ batch: [LoadMessage]) async throws -> BatchOutcome {
            batches.withLock { $0.append(batch.map(\.partition)) }
            if let failure = failures.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) { throw failure }
            if s3Down || batch.contains(where: { refused.contains($0.partition) }) {
                throw S3Error(status: 403, code: "AccessDenied", reason: "GET: Access Denied")
            }
            if batch.contains(where: { slow.contains($0.partition) }) {
                throw PQError(sqlState: "57014", "canceling statement due to statement timeout")
            }
            if let message = batch.first(where: { bad.contains($0.partition) }) {
                throw LoadError(loadID: message.loadID, errorClass: .permanent, message: "k: the staged object is not valid gzip")
            }
            var outcome = BatchOutcome()
            outcome.loaded = batch.map(\.loadID)
            outcome.rowsByTable["twilio_calls"] = batch.reduce(0) { $0 + $1.rows }
            return outcome
        }

        func seedFreshness() async {}
    }

    static func runLoader(_ driver: InMemoryQueueDriver, _ loader: ScriptedLoader) async throws -> LoadWorker {
        let config = try config()
        let worker = LoadWorker(
            config: config, target: config.targets[0], driver: driver, loader: loader, janitor: nil,
            backoff: Backoff(base: 0.01, max: 0.05), logger: logger)
        await worker.run(exitWhenIdle: 0.3)
        return worker
    }

    static func enqueueLoads(_ driver: InMemoryQueueDriver, _ days: [String]) {
        for day in days {
            let load = LoadMessage.fixture(
                job: job(day), folder: (try? config().s3.folderPath) ?? "", rows: [2], extractedAt: "2026-11-29T00:00:00.000Z", bytes: 1)
            driver.enqueue(MessageCodec.encode(load), on: "huskimo.load.wh", messageID: load.loadID)
        }
    }

    @Test func aPermanentlyBadLoadIsIsolatedAndParkedAndTheRestLoad() async throws {
        let driver = InMemoryQueueDriver()
        Self.enqueueLoads(driver, ["2026-11-26", "2026-11-27", "2026-11-28"])
        let loader = ScriptedLoader(bad: ["2026-11-27"])
        let worker = try await Self.runLoader(driver, loader)
        #expect(
            loader.batches.withLock { $0 } == [["2026-11-26", "2026-11-27", "2026-11-28"], ["2026-11-26"], ["2026-11-27"], ["2026-11-28"]])
        let parked = driver.messages(in: "huskimo.load.wh.failed")
        #expect(parked.map { ParkedHeaders($0.headers).day } == ["2026-11-27"])
        #expect(parked.first.map { ParkedHeaders($0.headers).message.contains("not valid gzip") } == true)
        #expect(driver.messages(in: "huskimo.load.wh").isEmpty && driver.unackedCount == 0)
        #expect(worker.summary.succeeded == 2 && worker.summary.failed == 1 && worker.summary.records == 4)
    }

    @Test func aWarehouseAwayHoldsTheBatchUntilItLoads() async throws {
        let driver = InMemoryQueueDriver()
        Self.enqueueLoads(driver, ["2026-11-27", "2026-11-28"])
        let loader = ScriptedLoader(failures: [PQError(sqlState: "08006", "connection lost")])
        let worker = try await Self.runLoader(driver, loader)
        #expect(loader.batches.withLock { $0 }.count == 2, "the same batch again after the transient failure")
        #expect(driver.messages(in: "huskimo.load.wh.failed").isEmpty && driver.unackedCount == 0)
        #expect(worker.summary.succeeded == 2)
    }

    @Test(arguments: [
        PQError(sqlState: "28P01", "password authentication failed for user \"huskimo\"") as any Error,
        PQError(sqlState: "42P01", "relation \"huskimo.twilio_calls\" does not exist"),
        S3Error(status: 403, code: "AccessDenied", reason: "GET s3://b/k: Access Denied"),
        LoadError(loadID: "x", errorClass: .permanent, message: "COPY: permission denied for schema huskimo", sqlState: "42501"),
    ])
    func aTargetWideFailurePausesTheLoaderInsteadOfParkingTheBacklog(failure: any Error) async throws {
        let driver = InMemoryQueueDriver()
        Self.enqueueLoads(driver, ["2026-11-26", "2026-11-27", "2026-11-28"])
        // Every load fails alike (the batch, then each message in turn would have), then the operator fixes it.
        let loader = ScriptedLoader(failures: [failure, failure])
        let worker = try await Self.runLoader(driver, loader)
        #expect(driver.messages(in: "huskimo.load.wh.failed").isEmpty, "nothing parked for a target-wide failure")
        #expect(loader.batches.withLock { $0 }.allSatisfy { $0.count == 3 }, "the batch is held whole, never split")
        #expect(worker.summary.succeeded == 3 && worker.summary.failed == 0 && driver.unackedCount == 0)
        #expect(TargetPaused.reason(failure) != nil)
        #expect(TargetPaused.reason(PQError(sqlState: "22P02", "invalid input syntax for type bigint")) == nil, "one load's own data")
        #expect(TargetPaused.reason(S3Error(status: 404, code: "NoSuchKey", reason: "")) == nil, "one load's missing object")
    }

    /// One object S3 refuses is its load's problem, parked with the reason, while S3 serves the batch's other objects;
    /// when S3 refuses everything, the credentials are wrong and the target pauses with nothing parked.
    @Test func aRefusedObjectParksItsLoadUnlessS3RefusesEverything() async throws {
        let driver = InMemoryQueueDriver()
        Self.enqueueLoads(driver, ["2026-11-26", "2026-11-27", "2026-11-28"])
        let loader = ScriptedLoader(refused: ["2026-11-27"])
        let worker = try await Self.runLoader(driver, loader)
        let parked = driver.messages(in: "huskimo.load.wh.failed").map { ParkedHeaders($0.headers) }
        #expect(parked.map(\.day) == ["2026-11-27"])
        #expect(parked.first?.message.contains("S3 refuses") == true && parked.first?.message.contains("(403) while it serves") == true)
        #expect(parked.first?.errorClass == "permanent")
        #expect(worker.summary.succeeded == 2 && driver.unackedCount == 0)
        #expect(loader.batches.withLock { $0 }.last == ["2026-11-26", "2026-11-28"], "the rest loads together")

        let down = InMemoryQueueDriver()
        Self.enqueueLoads(down, ["2026-11-26", "2026-11-27"])
        let refusing = ScriptedLoader(s3Down: true)
        let paused = LoadWorker(
            config: try Self.config(), target: try Self.config().targets[0], driver: down, loader: refusing, janitor: nil,
            backoff: Backoff(base: 0.01, max: 0.02), logger: Self.logger)
        let run = Task { await paused.run(exitWhenIdle: 0.3) }
        while refusing.batches.withLock({ $0.count }) < 4 { try await Task.sleep(for: .milliseconds(10)) }
        run.cancel()
        await run.value
        #expect(down.messages(in: "huskimo.load.wh.failed").isEmpty, "nothing parked when S3 serves nothing")
        #expect(refusing.batches.withLock { $0 }.allSatisfy { $0.count == 2 }, "held whole, retried")
        #expect(refusing.probes.withLock { $0 }.first?.count == 2, "every object of the batch asked about")
    }

    @Test func aCorruptStagedObjectIsPermanentNotRetriedForever() async throws {
        // What the loader sees when gunzip fails: a GzipError, which is permanent (it was not classified before).
        let corrupt = try #require(throws: GzipError.self) { try GzipReader.decompress([0x1f, 0x8b, 0x08, 0, 1, 2, 3, 4, 5, 6, 7]) }
        #expect((corrupt as any Error) is any ClassifiedError && ErrorClass.of(corrupt) == .permanent)
        let driver = InMemoryQueueDriver()
        Self.enqueueLoads(driver, ["2026-11-28"])
        let worker = try await Self.runLoader(driver, ScriptedLoader(failures: [corrupt, corrupt]))
        #expect(driver.messages(in: "huskimo.load.wh.failed").count == 1 && worker.summary.failed == 1)
    }

    /// Poison never wedges a target: a load whose batch always runs past statement_timeout is found by splitting the
    /// batch and parked alone; the rest of the batch loads. (Before, the batch was retried whole, forever.)
    @Test func aBatchThatAlwaysTimesOutIsSplitUntilTheCulpritIsAloneAndParked() async throws {
        let driver = InMemoryQueueDriver()
        let days = (20...27).map { "2026-11-\($0)" }
        Self.enqueueLoads(driver, days)
        let loader = ScriptedLoader(slow: ["2026-11-25"])
        let worker = try await Self.runLoader(driver, loader)
        let parked = driver.messages(in: "huskimo.load.wh.failed").map { ParkedHeaders($0.headers) }
        #expect(parked.map(\.day) == ["2026-11-25"], "only the culprit is parked: \(parked.map(\.message))")
        #expect(parked.first?.message.contains("statement timeout") == true && parked.first?.errorClass == "transient")
        #expect(worker.summary.succeeded == 7 && driver.unackedCount == 0)
        let tries = loader.batches.withLock { $0 }
        #expect(tries.count <= 4 * LoadWorker.strikesBeforeSplit + 4, "bounded: \(tries.count) tries")
        #expect(
            tries.filter { $0 == ["2026-11-25"] }.count == LoadWorker.strikesBeforeSplit, "the culprit tried alone, then parked: \(tries)")
        #expect(tries.last?.contains("2026-11-25") == false, "the rest loads after it")
    }

    /// The warehouse away is not the batch's fault: a lost connection is retried whole, never split or parked.
    @Test func aLostConnectionNeverSplitsOrParksTheBatch() async throws {
        let driver = InMemoryQueueDriver()
        Self.enqueueLoads(driver, ["2026-11-26", "2026-11-27"])
        let lost = (0..<8).map { _ in PQError(sqlState: "08006", "connection lost") as any Error }
        let loader = ScriptedLoader(failures: lost)
        let worker = try await Self.runLoader(driver, loader)
        #expect(driver.messages(in: "huskimo.load.wh.failed").isEmpty && worker.summary.succeeded == 2)
        #expect(loader.batches.withLock { $0 }.allSatisfy { $0.count == 2 }, "always the whole batch")
    }

    @Test func unreadableLoadMessagesAreParked() async throws {
        let driver = InMemoryQueueDriver()
        driver.enqueue(Array("[]".utf8), on: "huskimo.load.wh", messageID: "junk")
        Self.enqueueLoads(driver, ["2026-11-28"])
        let worker = try await Self.runLoader(driver, ScriptedLoader())
        #expect(driver.messages(in: "huskimo.load.wh.failed").map { ParkedHeaders($0.headers).id } == ["junk"])
        #expect(worker.summary.succeeded == 1 && driver.unackedCount == 0)
    }

    // MARK: - Retry policy

    @Test func theRetryPolicyLadder() {
        let policy = RetryPolicy(delays: [10, 60, 600], maxAttempts: 5)
        #expect(policy.afterFailure(attempt: 0, errorClass: .transient) == .retry(attempt: 1, delay: 10))
        #expect(policy.afterFailure(attempt: 1, errorClass: .transient) == .retry(attempt: 2, delay: 60))
        #expect(policy.afterFailure(attempt: 3, errorClass: .transient) == .retry(attempt: 4, delay: 600))
        #expect(policy.afterFailure(attempt: 4, errorClass: .transient) == .park(attempts: 5))
        #expect(policy.afterFailure(attempt: 0, errorClass: .permanent) == .park(attempts: 1))
        #expect(policy.afterRedelivery(attempt: 0) == .retry(attempt: 1, delay: 0))
        #expect(policy.afterRedelivery(attempt: 4) == .park(attempts: 5))
    }
}
