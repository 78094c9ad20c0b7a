import Foundation
import HuskimoConnectors
import HuskimoCore
package import Logging
import Synchronization

/// `huskimo-planner run`: plans, then extracts and loads in this process over the same queues until the planned
/// jobs are done (the 0.3 cron habit on one machine).
package enum FleetRun {
    /// - Returns: 0 when every job and load succeeded, 1 otherwise (or when interrupted).
    package static func run(config: FleetConfig, selection: PlanSelection, workers: Int, logger: Logger) async throws -> Int32 {
        guard (1...256).contains(workers) else { throw CommandFailure.usage("--workers must be 1–256, got \(workers)") }
        let signals = SignalWatcher()
        let jobs = try await Planning.planAndPublish(config, selection, dryRun: false, logger: logger)
        let topology = FleetTopology(config)
        let extract = ExtractWorker(config: config, concurrency: workers, logger: logger)
        let loaders = config.targets.map { LoadWorker(config: config, target: $0, logger: logger) }
        let driver = QueueDriverFactory.make(config, logger: logger)
        defer { driver.close() }
        let finished = Mutex(false)
        // Returning shuts the workers down gracefully. A signal shuts everything down first (the run then exits 1).
        let monitor = Lifecycle.Unit("run-monitor") {
            let done = await RunMonitor(driver: driver, topology: topology).waitUntilDone(
                busy: { extract.jobsInFlight + loaders.filter(\.isBusy).count },
                stop: { WorkLoop.stopping || signals.interrupted })
            finished.withLock { $0 = done }
        }
        // Shut down in reverse order: the monitor, then the extract worker (no new jobs), then the loaders.
        try await Lifecycle.run(
            loaders.map { loader in Lifecycle.Unit("loader") { await loader.run() } } + [
                Lifecycle.Unit("extract-worker") { await extract.run() }
            ]
                + [monitor], logger: logger)
        let e = extract.summary
        let loadedRows = loaders.reduce(0) { $0 + $1.summary.records }
        let loadFailures = loaders.reduce(0) { $0 + $1.summary.failed }
        print(
            "run: \(jobs.count) jobs planned; \(e.succeeded) extracted (\(e.records) records), \(e.retried) retries, \(e.failed) failed; \(loadedRows) rows loaded into \(config.targets.count) target(s), \(loadFailures) loads failed"
        )
        let status = await FleetStatus.collect(config: config, driver: driver)
        print(status.text)
        return e.failed > 0 || loadFailures > 0 || !finished.withLock({ $0 }) || signals.interrupted ? 1 : 0
    }
}

/// When `huskimo-planner run` is done: every queue of the run (extract, its delay queues, every target's load queue)
/// empty and nothing in flight, twice in a row (a job between queues is in flight, never invisible).
struct RunMonitor: Sendable {
    package let driver: any QueueDriver
    package let topology: FleetTopology
    package var interval: Duration = .milliseconds(500)

    package init(driver: any QueueDriver, topology: FleetTopology) {
        self.driver = driver
        self.topology = topology
    }

    /// The queues whose messages are still work of the run.
    package var queues: [String] {
        [topology.extractQueue] + Set(topology.retryDelays).sorted().map { topology.retryQueue(delay: $0) }
            + topology.targets.map { topology.loadQueue($0) }
    }

    /// Messages waiting in the run's queues; a queue that cannot be read counts as one (not done).
    package func pending() async -> Int {
        var pending = 0
        for queue in queues { pending += (try? await driver.depth(queue).ready) ?? 1 }
        return pending
    }

    /// Polls every `interval` until done (true) or `stop` says to give up (false).
    func waitUntilDone(busy: @Sendable () -> Int, stop: @Sendable () -> Bool) async -> Bool {
        var quiet = 0
        while quiet < 2 {
            try? await Task.sleep(for: interval)
            if stop() { return false }
            let pending = await pending()
            quiet = pending == 0 && busy() == 0 ? quiet + 1 : 0
        }
        return true
    }
}
