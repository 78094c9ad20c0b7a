import Foundation
import HuskimoConnectors
import HuskimoCore
package import Logging

/// The library side of `huskimo-worker extract` and `huskimo-worker load`.
package enum WorkerCommands {
    /// Consumes extract jobs until idle or SIGTERM; prints one machine-readable summary line (bench/run.sh).
    package static func extract(
        config: FleetConfig, concurrency: Int, exitWhenIdle: Double?, grace: Double, metricsPort: Int?,
        metricsHost: String = "127.0.0.1", logger: Logger
    ) async throws {
        guard (1...256).contains(concurrency) else { throw CommandFailure.usage("--concurrency must be 1–256") }
        ProcessMemory.tuneAllocator()
        let signals = SignalWatcher()
        let worker = ExtractWorker(config: config, concurrency: concurrency, logger: logger)
        let metrics = try startMetrics(metricsPort, host: metricsHost, logger: logger) { worker.isReady }
        defer { metrics?.stop() }
        try await Lifecycle.run(
            [Lifecycle.Unit("extract-worker") { await worker.run(exitWhenIdle: exitWhenIdle, grace: grace) }],
            logger: logger)
        _ = signals
        let t = worker.summary
        let usage = ResourceUsage.current
        logger.info(
            "extract worker stopped",
            metadata: [
                "jobs.succeeded": "\(t.succeeded)", "jobs.retried": "\(t.retried)", "jobs.failed": "\(t.failed)", "records": "\(t.records)",
                "cpu_s": "\(String(format: "%.3f", usage.cpuSeconds))", "max_rss_mib": "\(String(format: "%.1f", usage.maxRSSMiB))",
            ])
        let p = t.phases
        print(
            "huskimo-worker extract: jobs=\(t.succeeded) failed=\(t.failed) records=\(t.records) cpu_s=\(String(format: "%.3f", usage.cpuSeconds)) max_rss_mib=\(String(format: "%.1f", usage.maxRSSMiB))"
                + " fetch_s=\(String(format: "%.3f", p.fetch)) stage_s=\(String(format: "%.3f", p.stage)) publish_s=\(String(format: "%.3f", p.publish)) ack_s=\(String(format: "%.3f", p.ack))"
        )
    }

    /// Consumes one target's load queue until idle or SIGTERM; with a metrics port, also polls queue depths.
    package static func load(
        config: FleetConfig, target name: String, exitWhenIdle: Double?, metricsPort: Int?,
        queuePollSeconds: Double, metricsHost: String = "127.0.0.1", logger: Logger
    ) async throws {
        guard let target = config.target(named: name) else { throw CommandFailure.usage("no target named \(name)") }
        ProcessMemory.tuneAllocator()
        let signals = SignalWatcher()
        let worker = LoadWorker(config: config, target: target, logger: logger)
        let metrics = try startMetrics(metricsPort, host: metricsHost, logger: logger) { worker.isReady }
        defer { metrics?.stop() }
        // Shut down in reverse order: the loader stops taking batches first, then the poller.
        var units = [Lifecycle.Unit("loader") { await worker.run(exitWhenIdle: exitWhenIdle) }]
        if metrics != nil { units.insert(Lifecycle.Unit("queue-poller") { await worker.pollQueues(every: queuePollSeconds) }, at: 0) }
        try await Lifecycle.run(units, logger: logger)
        _ = signals
        let s = worker.summary
        let usage = ResourceUsage.current
        logger.info(
            "loader stopped",
            metadata: [
                "loads.succeeded": "\(s.succeeded)", "rows": "\(s.records)", "loads.failed": "\(s.failed)",
                "cpu_s": "\(String(format: "%.3f", usage.cpuSeconds))",
                "max_rss_mib": "\(String(format: "%.1f", usage.maxRSSMiB))",
            ])
    }

    /// Starts the metrics endpoint when a port is given; a port that cannot be bound is a usage error (exit 2).
    static func startMetrics(_ port: Int?, host: String, logger: Logger, ready: @escaping @Sendable () -> Bool) throws -> MetricsServer? {
        guard let port else { return nil }
        guard (0...65535).contains(port) else { throw CommandFailure.usage("--metrics-port must be 0–65535, got \(port)") }
        var address = in_addr()
        guard inet_pton(AF_INET, host, &address) == 1 else {
            throw CommandFailure.usage("--metrics-host must be an IPv4 address (127.0.0.1, 0.0.0.0, …), got \(host.prefix(60))")
        }
        do {
            let server = try MetricsServer(host: host, port: port, ready: ready)
            FleetMetrics.buildInfo(version: HuskimoVersion.current)
            logger.info("serving metrics", metadata: ["host": "\(host)", "port": "\(server.port)"])
            return server
        } catch {
            throw CommandFailure.usage("--metrics-port \(port): cannot listen (\(error))")
        }
    }
}

/// This process's CPU time and peak resident memory (getrusage).
struct ResourceUsage: Sendable {
    var cpuSeconds: Double
    var maxRSSMiB: Double

    package static var current: ResourceUsage {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let cpu =
            Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
            + Double(usage.ru_stime.tv_usec) / 1e6
        return ResourceUsage(cpuSeconds: cpu, maxRSSMiB: Double(usage.ru_maxrss) / 1024)
    }
}
