import Foundation
import HuskimoTesting
import Logging
import Synchronization
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

/// The operator commands' logic on the in-memory broker: requeue (filters, attempt reset, loads re-driven as they
/// were, dry runs), status grouping of parked messages, plan publishing and the run monitor. The same commands run
/// against RabbitMQ in IntegrationTests.
@Suite(.timeLimit(.minutes(1))) struct OperationsDecisionTests {
    static let logger = Logger(label: "test.operations")
    /// A clock that agrees with its reference.
    static let clock = PlanClock(reference: { ("a test clock", Date()) })

    static func config() throws -> FleetConfig { try WorkerDecisionTests.config() }

    /// A job parked after `attempts` attempts, as the extract worker parks it.
    static func park(
        _ job: ExtractJob, on driver: InMemoryQueueDriver, topology: FleetTopology, errorClass: ErrorClass = .permanent,
        message: String = "HTTP 401"
    ) {
        let headers = ParkedHeaders(
            errorClass: errorClass, message: message, channel: job.channel, resource: job.resource.rawValue,
            day: job.day?.description, attempts: job.attempt, id: job.jobID
        ).table
        driver.enqueue(MessageCodec.encode(job), on: topology.failedQueue, messageID: job.jobID, headers: headers)
    }

    static func job(_ channel: String, _ resource: Resource, _ day: String?, attempt: Int = 3) -> ExtractJob {
        ExtractJob(
            runID: ExtractJob.fixtureRunID, channel: channel, resource: resource, day: day.flatMap(Day.init), attempt: attempt,
            plannedAt: "2026-11-29T00:00:00.000Z")
    }

    @Test func requeueMovesMatchingJobsBackWithTheirAttemptsResetAndKeepsTheRest() async throws {
        let config = try Self.config()
        let topology = FleetTopology(config)
        let driver = InMemoryQueueDriver()
        let jobs = [
            Self.job("us", .calls, "2026-11-27"), Self.job("us", .calls, "2026-11-20"), Self.job("eu", .calls, "2026-11-27"),
            Self.job("us", .messages, "2026-11-27"), Self.job("us", .incomingPhoneNumbers, nil),
        ]
        for job in jobs { Self.park(job, on: driver, topology: topology) }
        driver.enqueue(
            Array("not a job".utf8), on: topology.failedQueue, messageID: "garbage",
            headers: ParkedHeaders(
                errorClass: .permanent, message: "bad", channel: "us", resource: "calls", day: "2026-11-27",
                attempts: 1, id: "garbage"
            ).table)
        let requeue = Requeue(driver: driver, topology: topology)
        let filter = Requeue.Filter(channels: ["us"], resources: ["calls"], from: Day("2026-11-25"), to: Day("2026-11-28"))

        let wouldMove = try await requeue.run(filter, dryRun: true)
        #expect(wouldMove.map(\.id) == ["twilio/us/calls/2026-11-27"])
        #expect(driver.messages(in: topology.failedQueue).count == 6 && driver.messages(in: topology.extractQueue).isEmpty)

        let moved = try await requeue.run(filter, dryRun: false)
        #expect(moved.map(\.id) == ["twilio/us/calls/2026-11-27"] && moved.first?.reason == "HTTP 401")
        let back = driver.messages(in: topology.extractQueue)
        #expect(back.count == 1 && back.first?.messageID == "twilio/us/calls/2026-11-27")
        let redriven = try MessageCodec.decodeJob(try #require(back.first).body)
        #expect(redriven.attempt == 0 && redriven.jobID == "twilio/us/calls/2026-11-27" && redriven.day == Day("2026-11-27"))
        // The rest stays parked in its order, the unreadable body included (status lists it).
        #expect(
            driver.messages(in: topology.failedQueue).map(\.messageID)
                == [
                    "twilio/us/calls/2026-11-20", "twilio/eu/calls/2026-11-27", "twilio/us/messages/2026-11-27",
                    "twilio/us/incoming_phone_numbers/snapshot", "garbage",
                ])

        // A limit, without a filter: the first two matching (the garbage one cannot move and is not counted).
        let limited = try await requeue.run(Requeue.Filter(limit: 2), dryRun: false)
        #expect(limited.count == 2 && driver.messages(in: topology.extractQueue).count == 3)
        #expect(driver.messages(in: topology.failedQueue).count == 3)
    }

    @Test func requeueOfLoadsRedrivesEachLoadMessageUnchangedToItsTargetsQueue() async throws {
        let config = try Self.config()
        let topology = FleetTopology(config)
        let driver = InMemoryQueueDriver()
        let body = Array(#"{"version":1,"load_id":"l1"}"#.utf8)
        driver.enqueue(
            body, on: topology.failedLoadQueue("rs"), messageID: "l1",
            headers: ParkedHeaders(
                errorClass: .permanent, message: "COPY refused", channel: "us", resource: "calls",
                day: "2026-11-27", attempts: 1, id: "l1"
            ).table)
        driver.enqueue(body, on: topology.failedLoadQueue("wh"), messageID: "l2")
        let moved = try await Requeue(driver: driver, topology: topology).run(Requeue.Filter(), loadsOf: "rs", dryRun: false)
        #expect(moved.map(\.id) == ["l1"])
        let back = driver.messages(in: topology.loadQueue("rs"))
        #expect(back.count == 1 && back.first?.body == body && back.first?.messageID == "l1")
        #expect(driver.messages(in: topology.failedLoadQueue("rs")).isEmpty)
        #expect(driver.messages(in: topology.failedLoadQueue("wh")).count == 1)  // another target's parked load stays
    }

    @Test func aRefusedRepublishLeavesTheParkedMessageWhereItWas() async throws {
        let config = try Self.config()
        let topology = FleetTopology(config)
        let driver = InMemoryQueueDriver()
        Self.park(Self.job("us", .calls, "2026-11-27"), on: driver, topology: topology)
        driver.failPublishes = true
        await #expect(throws: InMemoryQueueError.self) {
            try await Requeue(driver: driver, topology: topology).run(Requeue.Filter(), dryRun: false)
        }
        #expect(driver.messages(in: topology.failedQueue).map(\.messageID) == ["twilio/us/calls/2026-11-27"])
    }

    @Test func statusGroupsParkedMessagesByQueueClassAndChannelAndRemovesNone() async throws {
        let config = try Self.config()
        let topology = FleetTopology(config)
        let driver = InMemoryQueueDriver()
        Self.park(Self.job("us", .calls, "2026-11-27"), on: driver, topology: topology, message: "HTTP 401 first")
        Self.park(Self.job("us", .calls, "2026-11-26"), on: driver, topology: topology, message: "HTTP 401 newest")
        Self.park(Self.job("eu", .calls, "2026-11-27"), on: driver, topology: topology)
        Self.park(Self.job("us", .messages, "2026-11-27"), on: driver, topology: topology, errorClass: .transient, message: "gave up")
        driver.enqueue([1], on: topology.failedLoadQueue("wh"), messageID: "l1")
        let queues = [topology.failedQueue, topology.failedLoadQueue("wh"), topology.failedLoadQueue("rs")]

        let (groups, problems) = await FleetStatus.failures(in: queues, driver: driver)
        #expect(problems.isEmpty)
        let summary = groups.map { "\($0.queue) \($0.errorClass) \($0.channel) \($0.count)" }
        #expect(
            summary == [
                "\(topology.failedQueue) permanent eu 1", "\(topology.failedQueue) permanent us 2",
                "\(topology.failedQueue) transient us 1", "\(topology.failedLoadQueue("wh")) unknown - 1",
            ])
        #expect(groups[1].newestMessage == "HTTP 401 newest")
        // Reading is not removing: a second status sees the same.
        #expect(driver.messages(in: topology.failedQueue).count == 4)
        let again = await FleetStatus.failures(in: queues, driver: driver)
        #expect(again.groups.map(\.count) == groups.map(\.count))
    }

    @Test func statusReportsAQueueItCannotReadAsAProblem() async throws {
        let driver = InMemoryQueueDriver()
        let topology = FleetTopology(try Self.config())
        let rows = await FleetStatus.queueRows(topology: topology, driver: driver, management: nil)
        #expect(rows.rows.isEmpty && rows.problems.count == topology.allQueues.count)
        #expect(rows.problems.first?.contains("NOT_FOUND") == true)
        try await driver.declare(topology.topology)
        let declared = await FleetStatus.queueRows(topology: topology, driver: driver, management: nil)
        #expect(declared.problems.isEmpty && declared.rows.allSatisfy { $0.ready == 0 } && declared.source == "amqp")
    }

    @Test func planningPublishesOneMessagePerJobOnTheExtractQueueIdentifiedByItsJobID() async throws {
        let config = try Self.config()
        let topology = FleetTopology(config)
        let driver = InMemoryQueueDriver()
        let selection = PlanSelection(
            days: [Day("2026-11-27")!, Day("2026-11-28")!], channels: ["us"], resources: [.calls, .incomingPhoneNumbers])
        let jobs = try await Planning.planAndPublish(
            config, selection, dryRun: false, driver: driver, clock: Self.clock, logger: Self.logger)
        #expect(jobs.count == 3)
        let published = driver.messages(in: topology.extractQueue)
        #expect(published.map(\.messageID) == jobs.map(\.jobID))
        #expect(
            Set(published.compactMap(\.messageID)) == [
                "twilio/us/calls/2026-11-27", "twilio/us/calls/2026-11-28",
                "twilio/us/incoming_phone_numbers/snapshot",
            ])
        let decoded = try published.map { try MessageCodec.decodeJob($0.body).jobID }
        #expect(decoded == jobs.map(\.jobID))
        #expect(driver.published.allSatisfy { $0.exchange == topology.exchange && $0.routingKey == topology.extractQueue })

        // A dry run publishes nothing; a refused publish is a failed command, not a silent success.
        _ = try await Planning.planAndPublish(config, selection, dryRun: true, driver: driver, clock: Self.clock, logger: Self.logger)
        #expect(driver.published.count == 3)
        driver.failPublishes = true
        await #expect(throws: CommandFailure.self) {
            try await Planning.planAndPublish(config, selection, dryRun: false, driver: driver, clock: Self.clock, logger: Self.logger)
        }
    }

    /// `status --json` says which version collected it: the one `--version` prints and the archive is named by.
    @Test func statusCarriesTheVersion() throws {
        let json = String(decoding: try JSONEncoder().encode(FleetStatus()), as: UTF8.self)
        #expect(json.contains("\"version\":\"\(HuskimoVersion.current)\""))
        #expect(HuskimoVersion.current.split(separator: ".").count == 3)
    }

    /// A quorum queue with fewer members online than the cluster gives (up to 3) is named; classic queues and a whole
    /// queue are not; a one-node cluster's queues are whole with one member.
    @Test func aQueueThatLostRedundancyIsNamed() {
        func row(_ name: String, _ type: String, members: Int, online: Int) -> FleetStatus.QueueRow {
            FleetStatus.QueueRow(name: name, ready: 0, consumers: 0, type: type, members: members, online: online)
        }
        let rows = [
            row("q.extract", "quorum", members: 3, online: 2), row("q.load", "quorum", members: 3, online: 3),
            row("q.retry", "quorum", members: 2, online: 2), row("q.classic", "classic", members: 1, online: 1),
        ]
        #expect(
            FleetStatus.degraded(rows, clusterSize: 3) == [
                "q.extract: 2 of 3 members online (a cluster of 3 gives 3)", "q.retry: 2 of 2 members online (a cluster of 3 gives 3)",
            ])
        #expect(FleetStatus.degraded([row("q", "quorum", members: 1, online: 1)], clusterSize: 1).isEmpty)
        #expect(FleetStatus.degraded(rows, clusterSize: 5).count == 2, "three members are enough in a larger cluster")
    }

    /// A planner whose clock is off by more than the loaders' tolerance plans nothing (ahead: every worker would park
    /// its jobs; behind: its loads would be skipped as older); within it, or with no reference, it plans.
    @Test func aPlannerWhoseClockIsOffPublishesNothing() async throws {
        let config = try Self.config()
        let selection = PlanSelection(days: [Day("2026-11-27")!], channels: ["us"], resources: [.calls])
        for skew in [3600.0, -3600, 302] {
            let driver = InMemoryQueueDriver()
            let off = PlanClock(now: { Date(timeIntervalSinceNow: skew) }, reference: { ("S3 (test)", Date()) })
            let error = await #expect(throws: CommandFailure.self) {
                try await Planning.planAndPublish(config, selection, dryRun: false, driver: driver, clock: off, logger: Self.logger)
            }
            #expect("\(error.map { "\($0)" } ?? "")".contains(skew > 0 ? "s ahead of S3 (test)" : "s behind S3 (test)"))
            #expect(driver.published.isEmpty)
        }
        for clock in [
            PlanClock(now: { Date(timeIntervalSinceNow: 250) }, reference: { ("S3 (test)", Date()) }),
            PlanClock(reference: { nil }),
        ] {
            let driver = InMemoryQueueDriver()
            let jobs = try await Planning.planAndPublish(
                config, selection, dryRun: false, driver: driver, clock: clock, logger: Self.logger)
            #expect(jobs.count == 1 && driver.published.count == 1)
        }
        #expect(PlanClock.httpDate("Sun, 06 Dec 2026 14:55:00 GMT") == UTCTime.date(iso: "2026-12-06T14:55:00Z"))
    }

    @Test func theRunMonitorWaitsForEveryQueueOfTheRunAndForWorkInFlight() async throws {
        let config = try Self.config()
        let topology = FleetTopology(config)
        let driver = InMemoryQueueDriver()
        try await driver.declare(topology.topology)
        var monitor = RunMonitor(driver: driver, topology: topology)
        monitor.interval = .milliseconds(5)
        #expect(monitor.queues.contains(topology.retryQueue(delay: 60)) && monitor.queues.contains(topology.loadQueue("rs")))
        #expect(!monitor.queues.contains(topology.failedQueue))  // parked work does not keep a run waiting
        driver.enqueue([1], on: topology.retryQueue(delay: 10))
        #expect(await monitor.pending() == 1)

        // Not done while a delay queue holds a job or something is in flight; done once both are quiet, twice.
        let busy = Mutex(1)
        let polls = Mutex(0)
        let done = await monitor.waitUntilDone(
            busy: { busy.withLock { $0 } },
            stop: {
                polls.withLock { polls in
                    polls += 1
                    if polls == 5 { driver.purge(topology.retryQueue(delay: 10)) }
                    if polls == 10 { busy.withLock { $0 = 0 } }
                    return polls > 100
                }
            })
        #expect(done && polls.withLock { $0 } >= 11)

        // A queue that cannot be read counts as not done: the monitor gives up only when told to stop.
        try await driver.deleteQueue(topology.loadQueue("wh"))
        #expect(await monitor.pending() == 1)
        let stopped = await monitor.waitUntilDone(
            busy: { 0 },
            stop: {
                polls.withLock {
                    $0 += 1
                    return $0 > 20
                }
            })
        #expect(!stopped)
    }
}
