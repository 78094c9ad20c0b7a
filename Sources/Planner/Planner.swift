import ArgumentParser
import Foundation
import Logging
import Shared

@main
struct Planner: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "huskimo-planner",
        abstract: "Plans Huskimo extract jobs and operates the fleet.",
        subcommands: [PlanCommand.self, RunCommand.self, StatusCommand.self, RequeueCommand.self, DDLCommand.self,
                      ConfigCommand.self])
}

/// Exit codes of every Huskimo command: 0 success, 1 a job or check failed, 2 bad usage or configuration.
enum ExitCodes {
    static let failed = ExitCode(1)
    static let badConfig = ExitCode(2)
}

func fail(_ message: String, _ code: ExitCode = ExitCodes.badConfig) -> ExitCode {
    CommandSupport.complain(message)
    return code
}

func loadConfig(_ path: String) throws -> FleetConfig {
    guard let config = CommandSupport.loadConfig(path) else { throw ExitCode(2) }
    return config
}

func makeLogger(_ label: String) -> Logger { CommandSupport.logger(label) }

/// `--date`, `--from/--to`, `--channel`, `--resource`: the selection shared by plan and run.
struct SelectionOptions: ParsableArguments {
    @Option(help: "One day (YYYY-MM-DD).") var date: String?
    @Option(help: "First day of a range (YYYY-MM-DD).") var from: String?
    @Option(help: "Last day of a range, inclusive (YYYY-MM-DD).") var to: String?
    @Option(help: "Only this channel (repeatable).") var channel: [String] = []
    @Option(help: "Only this resource (repeatable): calls, messages, recordings, incoming_phone_numbers, pricing_phone_numbers, campaigns, creatives.")
    var resource: [String] = []

    func selection(_ config: FleetConfig) throws -> PlanSelection {
        var selection = PlanSelection(channels: channel)
        for name in resource {
            guard let r = Resource(rawValue: name) else { throw fail("unknown resource \(name)") }
            selection.resources.append(r)
        }
        for name in channel where !config.channels.contains(where: { $0.name == name }) { throw fail("no channel named \(name)") }
        if let date {
            guard let day = Day(date) else { throw fail("--date: expected YYYY-MM-DD, got \(date)") }
            selection.days = [day]
        } else if from != nil || to != nil {
            guard let f = from.flatMap(Day.init), let t = to.flatMap(Day.init), f <= t else {
                throw fail("--from and --to: expected two days YYYY-MM-DD, from ≤ to")
            }
            selection.days = (f.ordinal...t.ordinal).map(Day.init(ordinal:))
        }
        return selection
    }
}

/// Days every target's ledger has for (table, channel): what catch-up does not plan again.
func loadedDays(_ config: FleetConfig, logger: Logger) -> (String, String) -> Set<Day> {
    var cache: [String: Set<Day>] = [:]
    var connections: [String: PostgresConnection] = [:]
    for target in config.targets {
        do { connections[target.name] = try PostgresConnection(target.postgresSettings) } catch {
            logger.warning("catch-up: cannot read the ledger of a target; planning as if it had nothing", metadata: ["target": "\(target.name)", "error": "\(error)"])
        }
    }
    return { table, channel in
        let key = table + "\u{0}" + channel
        if let hit = cache[key] { return hit }
        var common: Set<Day>?
        for target in config.targets {
            guard let pg = connections[target.name] else { return [] }
            let rows = (try? pg.query("SELECT DISTINCT partition_key FROM \(sqlIdentifier(target.schema)).load_ledger WHERE table_name = $1 AND channel_name = $2",
                                      [table, channel])) ?? []
            let days = Set(rows.compactMap { $0[0].flatMap(Day.init) })
            common = common.map { $0.intersection(days) } ?? days
        }
        cache[key] = common ?? []
        return common ?? []
    }
}

/// Plans and publishes; returns the jobs. Failures exit 1 (bad selections 2) with the reason.
func planAndPublish(_ config: FleetConfig, _ options: SelectionOptions, dryRun: Bool, logger: Logger) throws -> [ExtractJob] {
    let selection = try options.selection(config)
    do {
        return try planAndPublish(config, selection, dryRun: dryRun, logger: logger)
    } catch {
        throw fail("planning failed: \(error)", ExitCodes.failed)
    }
}

func planAndPublish(_ config: FleetConfig, _ selection: PlanSelection, dryRun: Bool, logger: Logger) throws -> [ExtractJob] {
    let runID = UTCTime.compact(Date())
    let started = Date()
    let (jobs, warnings) = JobPlanner(config: config).plan(selection, runID: runID, loadedDays: selection.days == nil ? loadedDays(config, logger: logger) : { _, _ in [] })
    for warning in warnings { logger.warning("\(warning)") }
    var counts: [String: Int] = [:]
    for job in jobs { counts["\(job.channel) \(job.resource.rawValue)", default: 0] += 1 }
    if dryRun {
        for (key, count) in counts.sorted(by: { $0.key < $1.key }) { print("would publish \(count) × \(key)") }
        print("dry run: \(jobs.count) jobs for \(Set(jobs.map(\.channel)).count) channels, nothing published")
        return jobs
    }
    let topology = FleetTopology(config.queue, targets: config.targets.map(\.name))
    let client = QueueClient(url: config.queue.url, topology: topology.topology, logger: logger)
    try client.publish(jobs.map {
        AMQPMessage(exchange: topology.exchange, routingKey: topology.extractQueue, body: FleetMessages.encode($0), messageID: $0.jobID)
    })
    client.close()
    print("planned run \(runID): \(jobs.count) jobs (\(counts.count) channel × resource groups) in \(String(format: "%.2f", -started.timeIntervalSinceNow)) s")
    return jobs
}

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "plan", abstract: "Publishes one job per (channel, resource, day).")
    @Option(help: "Path to the YAML configuration.") var config: String
    @OptionGroup var selection: SelectionOptions
    @Flag(help: "Print what would be published (counts per channel and resource) and publish nothing.") var dryRun = false

    func run() throws {
        let logger = makeLogger("huskimo.planner")
        let loaded = try loadConfig(config)
        _ = try planAndPublish(loaded, selection, dryRun: dryRun, logger: logger)
    }
}

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Plans, then extracts and loads in this process until the planned jobs are done (the 0.3 cron habit).")
    @Option(help: "Path to the YAML configuration.") var config: String
    @OptionGroup var selection: SelectionOptions
    @Option(help: "Extract jobs in flight at once.") var workers = 4

    func run() async throws {
        let logger = makeLogger("huskimo.run")
        let loaded = try loadConfig(config)
        let shutdown = ShutdownSignal()
        shutdown.install()
        let jobs = try planAndPublish(loaded, selection, dryRun: false, logger: logger)
        let topology = FleetTopology(loaded.queue, targets: loaded.targets.map(\.name))
        let extract = ExtractWorker(config: loaded, concurrency: workers, logger: logger)
        let loaders = loaded.targets.map { LoadWorker(config: loaded, target: $0, logger: logger) }
        let client = QueueClient(url: loaded.queue.url, topology: topology.topology, logger: logger)
        let stop = ShutdownSignal()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await extract.run(shutdown: stop) }
            for loader in loaders { group.addTask { await loader.run(shutdown: stop) } }
            // Done when every queue of the run is empty and nothing is in flight, twice in a row.
            var quiet = 0
            while quiet < 2 {
                try? await Task.sleep(for: .milliseconds(500))
                if shutdown.requested { break }
                let queues = [topology.extractQueue] + Set(topology.retryDelays).map { topology.retryQueue(delay: $0) }
                    + loaded.targets.map { topology.loadQueue($0.name) }
                let pending = queues.reduce(0) { $0 + ((try? client.depth($1).ready) ?? 1) }
                let busy = extract.jobsInFlight + loaders.filter(\.isBusy).count
                quiet = pending == 0 && busy == 0 ? quiet + 1 : 0
            }
            stop.request()
        }
        let e = extract.summary
        let loadedRows = loaders.reduce(0) { $0 + $1.summary.records }
        let loadFailures = loaders.reduce(0) { $0 + $1.summary.failed }
        print("run: \(jobs.count) jobs planned; \(e.succeeded) extracted (\(e.records) records), \(e.retried) retries, \(e.failed) failed; \(loadedRows) rows loaded into \(loaded.targets.count) target(s), \(loadFailures) loads failed")
        let status = FleetStatus.collect(config: loaded, client: client)
        print(status.text)
        client.close()
        if e.failed > 0 || loadFailures > 0 || shutdown.requested { throw ExitCodes.failed }
    }
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Queue depths, failed jobs by class and channel, newest loaded day per target. Exits 1 when jobs failed.")
    @Option(help: "Path to the YAML configuration.") var config: String
    @Flag(help: "One JSON document.") var json = false
    @Flag(help: "Refresh every 2 seconds until interrupted.") var watch = false

    func run() async throws {
        let logger = makeLogger("huskimo.status")
        let loaded = try loadConfig(config)
        let topology = FleetTopology(loaded.queue, targets: loaded.targets.map(\.name))
        let client = QueueClient(url: loaded.queue.url, topology: topology.topology, retryWindow: 5, logger: logger)
        while true {
            let status = FleetStatus.collect(config: loaded, client: client)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(status), as: UTF8.self))
            } else {
                if watch { print("\u{1B}[H\u{1B}[2J", terminator: "") }
                print(status.text)
            }
            guard watch else {
                if status.failedTotal > 0 || !status.problems.isEmpty { throw ExitCodes.failed }
                return
            }
            try await Task.sleep(for: .seconds(2))
        }
    }
}

struct RequeueCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "requeue", abstract: "Moves failed jobs (or a target's failed loads) back, attempts reset.")
    @Option(help: "Path to the YAML configuration.") var config: String
    @Option(help: "Only this channel (repeatable).") var channel: [String] = []
    @Option(help: "Only this resource (repeatable).") var resource: [String] = []
    @Option(help: "First day (YYYY-MM-DD).") var from: String?
    @Option(help: "Last day, inclusive (YYYY-MM-DD).") var to: String?
    @Option(help: "At most this many.") var limit: Int?
    @Option(help: "Re-drive this target's failed loads instead of failed extract jobs.") var loads: String?
    @Flag(help: "Show what would move; move nothing.") var dryRun = false

    func run() throws {
        let logger = makeLogger("huskimo.requeue")
        let loaded = try loadConfig(config)
        if let loads, loaded.target(named: loads) == nil { throw fail("no target named \(loads)") }
        let topology = FleetTopology(loaded.queue, targets: loaded.targets.map(\.name))
        let client = QueueClient(url: loaded.queue.url, topology: topology.topology, logger: logger)
        let filter = Requeue.Filter(channels: channel, resources: resource, from: from.flatMap(Day.init), to: to.flatMap(Day.init),
                                    limit: limit ?? .max)
        do {
            let moved = try Requeue(client: client, topology: topology).run(filter, loadsOf: loads, dryRun: dryRun)
            for (id, reason) in moved { print("\(dryRun ? "would requeue" : "requeued") \(id)  (was: \(reason.prefix(120)))") }
            print("\(dryRun ? "would requeue" : "requeued") \(moved.count)")
        } catch {
            throw fail("requeue failed: \(error)", ExitCodes.failed)
        }
    }
}

struct DDLCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ddl",
        abstract: "Prints the warehouse DDL for each target (or one flavor), or applies it idempotently with --apply.")

    @Option(help: "Path to the YAML configuration.") var config: String?
    @Option(help: "Only this target.") var target: String?
    @Option(help: "Print the DDL of a flavor (postgres | redshift) without a configuration.") var flavor: String?
    @Flag(help: "Apply the DDL to the targets (idempotent).") var apply = false

    func run() throws {
        if let flavor {
            guard let kind = WarehouseSchema.Flavor(rawValue: flavor) else { throw fail("--flavor must be postgres or redshift") }
            print(WarehouseSchema.ddl(kind, schema: "huskimo"), terminator: "")
            return
        }
        guard let config else { throw fail("give --config (or --flavor)") }
        let loaded = try loadConfig(config)
        var targets = loaded.targets
        if let target {
            targets = targets.filter { $0.name == target }
            guard !targets.isEmpty else { throw fail("no target named \(target)") }
        }
        for t in targets {
            let ddl = WarehouseSchema.ddl(t.type == .redshift ? .redshift : .postgres, schema: t.schema)
            guard apply else {
                print("-- target \(t.name)\n" + ddl)
                continue
            }
            do {
                try PostgresConnection(t.postgresSettings).execute(ddl)
                print("applied the DDL to \(t.name) (schema \(t.schema))")
            } catch {
                throw fail("target \(t.name): \(error)", ExitCodes.failed)
            }
        }
    }
}

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Validates the configuration and prints it with every secret redacted.")

    @Option(help: "Path to the YAML configuration.") var config: String

    func run() throws {
        let loaded = try loadConfig(config)
        print(loaded.redactedDescription)
    }
}
