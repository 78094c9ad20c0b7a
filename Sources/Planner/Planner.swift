import ArgumentParser
import HuskimoConnectors
import HuskimoCore
import HuskimoFleet
import Logging

/// A day on the command line (`YYYY-MM-DD`, a real calendar day); anything else is a usage error naming the flag.
extension Day: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

/// `huskimo-planner`: parses arguments and calls the fleet (HuskimoFleet's `Planning`, `FleetRun`, `Operations`).
@main
struct Planner: AsyncParsableCommand {
    /// Bad usage exits 2, as the command-line contract says (ArgumentParser's own code for it is 64).
    static func main() async { await mainWithContractExitCodes() }

    static let configuration = CommandConfiguration(
        commandName: "huskimo-planner",
        abstract: "Plans Huskimo extract jobs and operates the fleet.", version: HuskimoVersion.current,
        subcommands: [
            PlanCommand.self, RunCommand.self, BackfillCommand.self, StatusCommand.self, RequeueCommand.self, DDLCommand.self,
            ConfigCommand.self, CheckCommand.self, TopologyCommand.self, MetricsCommand.self,
        ])
}

/// Runs a command body; a ``CommandFailure`` becomes its message on stderr and its exit code (1 failed, 2 usage).
func command<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let failure as CommandFailure {
        if let message = failure.message { CommandSupport.complain(message) }
        throw ExitCode(failure.exitCode)
    }
}

/// `--date`, `--from/--to`, `--channel`, `--resource`: the selection shared by plan and run.
struct SelectionOptions: ParsableArguments {
    @Option(
        help:
            ArgumentHelp(
                "The run day (default yesterday, UTC): Twilio gets it, its settle window and catch-up; Singular the lookback ending at it.",
                valueName: "YYYY-MM-DD")
    ) var date: Day?
    @Option(help: ArgumentHelp("First day of an exact range for every channel.", valueName: "YYYY-MM-DD")) var from: Day?
    @Option(help: ArgumentHelp("Last day of a range, inclusive.", valueName: "YYYY-MM-DD")) var to: Day?
    @Option(help: "Only this channel (repeatable).") var channel: [String] = []
    @Option(help: ArgumentHelp("Only this resource (repeatable): \(Resource.allCases.map(\.rawValue).joined(separator: ", "))."))
    var resource: [String] = []

    func selection(_ config: FleetConfig) throws -> PlanSelection {
        var selection = PlanSelection(channels: channel)
        for name in resource {
            guard let r = Resource(rawValue: name) else { throw CommandFailure.usage("unknown resource \(name)") }
            selection.resources.append(r)
        }
        for name in channel where !config.channels.contains(where: { $0.name == name }) {
            throw CommandFailure.usage("no channel named \(name)")
        }
        if let date {
            selection.runDay = date
        } else if from != nil || to != nil {
            guard let f = from, let t = to, f <= t else { throw CommandFailure.usage("--from and --to: expected two days, from ≤ to") }
            selection.days = (f.ordinal...t.ordinal).map(Day.init(ordinal:))
        }
        return selection
    }
}

struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "plan", abstract: "Publishes one job per (channel, resource, day).")
    @Option(help: "Path to the YAML configuration.") var config: String
    @OptionGroup var selection: SelectionOptions
    @Flag(help: "Print what would be published (counts per channel and resource) and publish nothing.") var dryRun = false

    func run() async throws {
        try await command {
            let logger = CommandSupport.logger("huskimo.planner")
            let loaded = try CommandSupport.loadConfig(config)
            _ = try await Planning.planAndPublish(loaded, try selection.selection(loaded), dryRun: dryRun, logger: logger)
        }
    }
}

struct BackfillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backfill",
        abstract:
            "Plans a channel's history older than its list window (Twilio calls and messages through Bulk Export), paced to the export quota; later plans and runs go on with what is left."
    )
    @Option(help: "Path to the YAML configuration.") var config: String
    @Option(help: "The channel.") var channel: String
    @Option(help: "Only this resource (repeatable; default: every resource with history).") var resource: [String] = []
    @Option(help: ArgumentHelp("First day.", valueName: "YYYY-MM-DD")) var from: Day
    @Option(help: ArgumentHelp("Last day, inclusive (at least two days ago).", valueName: "YYYY-MM-DD")) var to: Day
    @Flag(help: "Print what would be planned; record and publish nothing.") var dryRun = false

    func run() async throws {
        try await command {
            var resources: [Resource] = []
            for name in resource {
                guard let r = Resource(rawValue: name) else { throw CommandFailure.usage("unknown resource \(name)") }
                resources.append(r)
            }
            _ = try await Backfill.run(
                try CommandSupport.loadConfig(config), channel: channel, resources: resources, from: from, to: to, dryRun: dryRun,
                logger: CommandSupport.logger("huskimo.backfill"))
        }
    }
}

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Plans, then extracts and loads in this process until the planned jobs are done (the 0.3 cron habit)."
    )
    @Option(help: "Path to the YAML configuration.") var config: String
    @OptionGroup var selection: SelectionOptions
    @Option(help: "Extract jobs in flight at once.") var workers = 4

    func run() async throws {
        let code = try await command {
            let loaded = try CommandSupport.loadConfig(config)
            return try await FleetRun.run(
                config: loaded, selection: try selection.selection(loaded), workers: workers,
                logger: CommandSupport.logger("huskimo.run"))
        }
        if code != 0 { throw ExitCode(code) }
    }
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Queue depths, failed jobs by class and channel, newest loaded day per target. Exits 1 when jobs failed.")
    @Option(help: "Path to the YAML configuration.") var config: String
    @Flag(help: "One JSON document.") var json = false
    @Flag(help: "Refresh every 2 seconds until interrupted.") var watch = false

    func run() async throws {
        let code = try await command {
            try await Operations.status(
                config: try CommandSupport.loadConfig(config), json: json, watch: watch,
                logger: CommandSupport.logger("huskimo.status"))
        }
        if code != 0 { throw ExitCode(code) }
    }
}

struct RequeueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "requeue", abstract: "Moves failed jobs (or a target's failed loads) back, attempts reset.")
    @Option(help: "Path to the YAML configuration.") var config: String
    @Option(help: "Only this channel (repeatable).") var channel: [String] = []
    @Option(help: "Only this resource (repeatable).") var resource: [String] = []
    @Option(help: ArgumentHelp("First day.", valueName: "YYYY-MM-DD")) var from: Day?
    @Option(help: ArgumentHelp("Last day, inclusive.", valueName: "YYYY-MM-DD")) var to: Day?
    @Option(help: "At most this many.") var limit: Int?
    @Option(help: "Re-drive this target's failed loads instead of failed extract jobs.") var loads: String?
    @Flag(help: "Show what would move; move nothing.") var dryRun = false

    func run() async throws {
        try await command {
            let (first, last) = (from, to)
            if let first, let last, first > last { throw CommandFailure.usage("--from must not be after --to") }
            if let limit, limit < 1 { throw CommandFailure.usage("--limit must be at least 1") }
            let filter = Requeue.Filter(channels: channel, resources: resource, from: first, to: last, limit: limit ?? .max)
            try await Operations.requeue(
                config: try CommandSupport.loadConfig(config), filter: filter, loadsOf: loads, dryRun: dryRun,
                logger: CommandSupport.logger("huskimo.requeue"))
        }
    }
}

struct DDLCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ddl",
        abstract: "Prints the warehouse DDL for each target (or one flavor), or applies it idempotently with --apply.")

    @Option(help: "Path to the YAML configuration.") var config: String?
    @Option(help: "Only this target.") var target: String?
    @Option(help: "Print the DDL of a flavor (postgres | redshift) without a configuration.") var flavor: String?
    @Flag(help: "Apply the DDL to the targets (idempotent).") var apply = false

    func run() async throws {
        try await command {
            if let flavor {
                guard let kind = WarehouseSchema.Flavor(rawValue: flavor) else {
                    throw CommandFailure.usage("--flavor must be postgres or redshift")
                }
                print(kind.dialect.ddl(schema: "huskimo"), terminator: "")
                return
            }
            guard let config else { throw CommandFailure.usage("give --config (or --flavor)") }
            try await Operations.ddl(config: try CommandSupport.loadConfig(config), target: target, apply: apply)
        }
    }
}

struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract:
            "Checks the setup end to end before the first night: broker, S3, every channel's credentials, every target's tables and COPY. Exits 1 when a check fails."
    )
    @Option(help: "Path to the YAML configuration.") var config: String
    @Option(help: "Only this target (the broker and S3 are always checked).") var target: String?
    @Option(help: "Only this channel.") var channel: String?
    @Flag(help: "One JSON document.") var json = false

    func run() async throws {
        let code = try await command {
            try await Check.run(
                config: try CommandSupport.loadConfig(config), target: target, channel: channel, json: json,
                logger: CommandSupport.logger("huskimo.check"))
        }
        if code != 0 { throw ExitCode(code) }
    }
}

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Validates the configuration and prints it with every secret redacted.")

    @Option(help: "Path to the YAML configuration.") var config: String

    func run() async throws {
        try await command { print(try CommandSupport.loadConfig(config).redactedDescription) }
    }
}

struct TopologyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topology",
        abstract:
            "Prints the RabbitMQ definitions (exchange, queues with their arguments, bindings) every process declares, for rabbitmqctl import_definitions or the management UI."
    )

    @Option(help: "Path to the YAML configuration.") var config: String
    @Option(help: "The virtual host of the definitions (default: queue.url's).") var vhost: String?

    func run() async throws {
        try await command {
            let loaded = try CommandSupport.loadConfig(config)
            print(RabbitMQDefinitions(FleetTopology(loaded), vhost: vhost ?? loaded.queue.url.vhost).json, terminator: "")
        }
    }
}

struct MetricsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics",
        abstract:
            "Prints every metric the workers and loaders export on --metrics-port (name, type, labels, help) as JSON: what alerts and dashboards may use."
    )

    func run() async throws { print(FleetMetrics.catalogueJSON, terminator: "") }
}
