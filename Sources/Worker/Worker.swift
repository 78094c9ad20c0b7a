import ArgumentParser
import Foundation
import Logging
import Shared

@main
struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "huskimo-worker", abstract: "Runs Huskimo extract jobs or a target's loads.",
        subcommands: [ExtractCommand.self, LoadCommand.self])
}

func loadConfig(_ path: String) throws -> FleetConfig {
    guard let config = CommandSupport.loadConfig(path) else { throw ExitCode(2) }
    return config
}

func makeLogger(_ label: String) -> Logger { CommandSupport.logger(label) }

struct ExtractCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "extract", abstract: "Consumes extract jobs.")
    @Option(help: "Path to the YAML configuration.") var config: String
    @Option(help: "Jobs in flight at once (and the prefetch).") var concurrency = 4
    @Option(help: "Exit 0 once the queue has had nothing to deliver for this many seconds.") var exitWhenIdle: Double?
    @Option(help: "Seconds in-flight jobs get to finish after SIGTERM.") var grace: Double = 30
    @Option(help: "Serve Prometheus metrics (/metrics), /healthz and /readyz on this port.") var metricsPort: Int?

    func run() async throws {
        let logger = makeLogger("huskimo.worker")
        let loaded = try loadConfig(config)
        guard (1...256).contains(concurrency) else {
            CommandSupport.complain("--concurrency must be 1–256")
            throw ExitCode(2)
        }
        let shutdown = ShutdownSignal()
        shutdown.install()
        let worker = ExtractWorker(config: loaded, concurrency: concurrency, logger: logger)
        let metrics = try startMetrics(metricsPort, logger: logger) { worker.isReady }
        defer { metrics?.stop() }
        await worker.run(shutdown: shutdown, exitWhenIdle: exitWhenIdle, grace: grace)
        let t = worker.summary
        let usage = ResourceUsage.current
        logger.info("extract worker stopped", metadata: [
            "jobs.succeeded": "\(t.succeeded)", "jobs.retried": "\(t.retried)", "jobs.failed": "\(t.failed)", "records": "\(t.records)",
            "cpu_s": "\(String(format: "%.3f", usage.cpuSeconds))", "max_rss_mib": "\(String(format: "%.1f", usage.maxRSSMiB))",
        ])
        // One machine-readable line for the benchmark harness (bench/run.sh).
        print("huskimo-worker extract: jobs=\(t.succeeded) failed=\(t.failed) records=\(t.records) cpu_s=\(String(format: "%.3f", usage.cpuSeconds)) max_rss_mib=\(String(format: "%.1f", usage.maxRSSMiB))")
    }
}

struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "load", abstract: "Consumes one target's load queue.")
    @Option(help: "Path to the YAML configuration.") var config: String
    @Option(help: "The target to load.") var target: String
    @Option(help: "Exit 0 once the queue has had nothing to deliver for this many seconds.") var exitWhenIdle: Double?
    @Option(help: "Serve Prometheus metrics (/metrics), /healthz and /readyz on this port.") var metricsPort: Int?
    @Option(help: "With --metrics-port: seconds between queue-depth polls.") var queuePollSeconds: Double = 15

    func run() async throws {
        let logger = makeLogger("huskimo.loader")
        let loaded = try loadConfig(config)
        guard let t = loaded.target(named: target) else {
            CommandSupport.complain("no target named \(target)")
            throw ExitCode(2)
        }
        let shutdown = ShutdownSignal()
        shutdown.install()
        let worker = LoadWorker(config: loaded, target: t, logger: logger)
        let metrics = try startMetrics(metricsPort, logger: logger) { worker.isReady }
        defer { metrics?.stop() }
        let poller = metrics == nil ? nil : Task { await worker.pollQueues(every: queuePollSeconds, shutdown: shutdown) }
        await worker.run(shutdown: shutdown, exitWhenIdle: exitWhenIdle)
        shutdown.request()
        await poller?.value
        let s = worker.summary
        logger.info("loader stopped", metadata: ["loads.succeeded": "\(s.succeeded)", "rows": "\(s.records)", "loads.failed": "\(s.failed)"])
    }
}

/// Starts the metrics endpoint when a port is given; a port that cannot be bound is a usage error (exit 2).
func startMetrics(_ port: Int?, logger: Logger, ready: @escaping @Sendable () -> Bool) throws -> MetricsServer? {
    guard let port else { return nil }
    do {
        let server = try MetricsServer(port: port, ready: ready)
        logger.info("serving metrics", metadata: ["port": "\(server.port)"])
        return server
    } catch {
        CommandSupport.complain("--metrics-port \(port): cannot listen (\(error))")
        throw ExitCode(2)
    }
}

/// This process's CPU time and peak resident memory (getrusage).
struct ResourceUsage {
    var cpuSeconds: Double
    var maxRSSMiB: Double

    static var current: ResourceUsage {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let cpu = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
            + Double(usage.ru_stime.tv_usec) / 1e6
        return ResourceUsage(cpuSeconds: cpu, maxRSSMiB: Double(usage.ru_maxrss) / 1024)
    }
}
