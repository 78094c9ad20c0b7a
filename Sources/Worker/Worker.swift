import ArgumentParser
import HuskimoCore
import HuskimoFleet

/// `huskimo-worker`: parses arguments and calls the fleet (HuskimoFleet's `WorkerCommands`).
@main
struct Worker: AsyncParsableCommand {
    /// Bad usage exits 2, as the command-line contract says (ArgumentParser's own code for it is 64).
    static func main() async { await mainWithContractExitCodes() }

    static let configuration = CommandConfiguration(
        commandName: "huskimo-worker", abstract: "Runs Huskimo extract jobs or a target's loads.", version: HuskimoVersion.current,
        subcommands: [ExtractCommand.self, LoadCommand.self])
}

/// Runs a command body; a ``CommandFailure`` becomes its message on stderr and its exit code (1 failed, 2 usage).
func command(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let failure as CommandFailure {
        if let message = failure.message { CommandSupport.complain(message) }
        throw ExitCode(failure.exitCode)
    }
}

struct ExtractCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "extract", abstract: "Consumes extract jobs.")
    @Option(help: "Path to the YAML configuration.") var config: String
    @Option(
        help:
            "Jobs talking to their API at once; a job that has fetched everything frees its slot while it stages and publishes (at most twice this many in flight, the prefetch)."
    ) var concurrency = 4
    @Option(help: "Exit 0 once the queue has had nothing to deliver for this many seconds.") var exitWhenIdle: Double?
    @Option(help: "Seconds in-flight jobs get to finish after SIGTERM.") var grace: Double = 30
    @Option(help: "Serve Prometheus metrics (/metrics), /healthz and /readyz on this port.") var metricsPort: Int?
    @Option(help: "The address the metrics port listens on (0.0.0.0: every interface).") var metricsHost = "127.0.0.1"

    func run() async throws {
        try await command {
            let logger = CommandSupport.logger("huskimo.worker")
            try await WorkerCommands.extract(
                config: try CommandSupport.loadConfig(config), concurrency: concurrency,
                exitWhenIdle: exitWhenIdle, grace: grace, metricsPort: metricsPort,
                metricsHost: metricsHost, logger: logger)
        }
    }
}

struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "load", abstract: "Consumes one target's load queue.")
    @Option(help: "Path to the YAML configuration.") var config: String
    @Option(help: "The target to load.") var target: String
    @Option(help: "Exit 0 once the queue has had nothing to deliver for this many seconds.") var exitWhenIdle: Double?
    @Option(help: "Serve Prometheus metrics (/metrics), /healthz and /readyz on this port.") var metricsPort: Int?
    @Option(help: "The address the metrics port listens on (0.0.0.0: every interface).") var metricsHost = "127.0.0.1"
    @Option(help: "With --metrics-port: seconds between queue-depth polls.") var queuePollSeconds: Double = 15

    func run() async throws {
        try await command {
            let logger = CommandSupport.logger("huskimo.loader")
            try await WorkerCommands.load(
                config: try CommandSupport.loadConfig(config), target: target, exitWhenIdle: exitWhenIdle,
                metricsPort: metricsPort, queuePollSeconds: queuePollSeconds,
                metricsHost: metricsHost, logger: logger)
        }
    }
}
