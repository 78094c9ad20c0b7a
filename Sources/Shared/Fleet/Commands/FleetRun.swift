import Foundation
import Synchronization
import HuskimoConnectors
import HuskimoCore
public import Logging

/// `huskimo-planner run`: plans, then extracts and loads in this process over the same queues until the planned
/// jobs are done (the 0.3 cron habit on one machine).
public enum FleetRun {
    /// - Returns: 0 when every job and load succeeded, 1 otherwise (or when interrupted).
    public static func run(config: FleetConfig, selection: PlanSelection, workers: Int, logger: Logger) async throws -> Int32 {
        guard (1...256).contains(workers) else { throw CommandFailure.usage("--workers must be 1–256, got \(workers)") }
        let signals = SignalWatcher()
        let jobs = try await Planning.planAndPublish(config, selection, dryRun: false, logger: logger)
        let topology = FleetTopology(config)
        let extract = ExtractWorker(config: config, concurrency: workers, logger: logger)
        let loaders = config.targets.map { LoadWorker(config: config, target: $0, logger: logger) }
        let client = QueueClient(url: config.queue.url, topology: topology.topology, logger: logger)
        defer { client.close() }
        let queues = [topology.extractQueue] + Set(topology.retryDelays).map { topology.retryQueue(delay: $0) }
            + config.targets.map { topology.loadQueue($0.name) }
        let finished = Mutex(false)
        // Done when every queue of the run is empty and nothing is in flight, twice in a row; returning shuts the
        // workers down gracefully. A signal shuts everything down first (the run then exits 1).
        let monitor = Lifecycle.Unit("run-monitor") {
            var quiet = 0
            while quiet < 2 {
                try? await Task.sleep(for: .milliseconds(500))
                if Lifecycle.stopping || signals.interrupted { return }
                var pending = 0
                for queue in queues { pending += (try? await client.depth(queue).ready) ?? 1 }
                let busy = extract.jobsInFlight + loaders.filter(\.isBusy).count
                quiet = pending == 0 && busy == 0 ? quiet + 1 : 0
            }
            finished.withLock { $0 = true }
        }
        // Shut down in reverse order: the monitor, then the extract worker (no new jobs), then the loaders.
        try await Lifecycle.run(
            loaders.map { loader in Lifecycle.Unit("loader") { await loader.run() } } + [Lifecycle.Unit("extract-worker") { await extract.run() }]
                + [monitor], logger: logger)
        let e = extract.summary
        let loadedRows = loaders.reduce(0) { $0 + $1.summary.records }
        let loadFailures = loaders.reduce(0) { $0 + $1.summary.failed }
        print("run: \(jobs.count) jobs planned; \(e.succeeded) extracted (\(e.records) records), \(e.retried) retries, \(e.failed) failed; \(loadedRows) rows loaded into \(config.targets.count) target(s), \(loadFailures) loads failed")
        let status = await FleetStatus.collect(config: config, client: client)
        print(status.text)
        return e.failed > 0 || loadFailures > 0 || !finished.withLock({ $0 }) || signals.interrupted ? 1 : 0
    }
}
