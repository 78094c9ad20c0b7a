import Foundation
package import HuskimoConnectors
package import HuskimoCore
package import Logging

/// `huskimo-planner plan`: turns the configuration and a selection into jobs and publishes them with confirms.
package enum Planning {
    /// The days every target's ledger has for each (table, channel) of the selection: what catch-up does not plan
    /// again. Blocking.
    /// - Throws: ``CommandFailure/failed(_:)`` when a target's ledger cannot be read: planning as if it had nothing
    ///   would publish every day back to `start_date` (up to 400 per resource and channel).
    static func loadedDays(_ config: FleetConfig, _ selection: PlanSelection) throws -> @Sendable (String, String) -> Set<Day> {
        var known: [String: Set<Day>] = [:]
        let pairs = config.channels.filter { selection.channels.isEmpty || selection.channels.contains($0.name) }.flatMap { channel in
            ConnectorRegistry.connector(of: channel).resources.filter { !$0.isSnapshot && !$0.appendOnly }.map { ($0.table, channel.name) }
        }
        for target in config.targets {
            do {
                let pg = try PostgresConnection(target.postgresSettings)
                let ledger = Ledger(schema: target.schema)
                for (table, channel) in pairs {
                    let days = try ledger.loadedDays(table: table, channel: channel, pg)
                    let key = table + "\u{0}" + channel
                    known[key] = known[key].map { $0.intersection(days) } ?? days
                }
            } catch {
                throw CommandFailure.failed(
                    "catch-up: cannot read the load ledger of target \(target.name) (\(error)); fix the target, or plan explicit days with --date or --from/--to"
                )
            }
        }
        let found = known
        return { table, channel in found[table + "\u{0}" + channel] ?? [] }
    }

    /// Plans and (unless `dryRun`) publishes through `driver` (nil: the configured broker); prints a summary.
    /// - Parameter clock: where the run id comes from and what it is checked against (nil: this host's clock against
    ///   S3's, ``PlanClock/system(_:)``).
    /// - Throws: ``CommandFailure/failed(_:)`` when this host's clock is off, the ledgers cannot be read or publishing
    ///   failed.
    package static func planAndPublish(
        _ config: FleetConfig, _ selection: PlanSelection, dryRun: Bool, driver: (any QueueDriver)? = nil,
        clock: PlanClock? = nil, logger: Logger
    ) async throws -> [ExtractJob] {
        let clock = clock ?? .system(config.s3)
        let runID = try await Blocking.run {
            try clock.runID(tolerance: LoadMessageCheck.clockTolerance) { logger.warning("\($0)") }
        }
        let started = Date()
        var loaded: @Sendable (String, String) -> Set<Day> = { _, _ in [] }
        if selection.days == nil && config.fetch.startDate != nil { loaded = try await Blocking.run { try loadedDays(config, selection) } }
        var (jobs, warnings) = JobPlanner(config: config).plan(selection, runID: runID, loadedDays: loaded)
        for warning in warnings { logger.warning("\(warning)") }
        jobs = await splitByAccount(config, jobs, logger: logger)
        // A backfill asked for earlier goes on where it stopped, as far as today's quota allows (not in a dry run, which
        // would count nothing against it, nor for explicit days).
        var history = Backfill.Due()
        if selection.days == nil, !dryRun {
            do {
                history = try await Blocking.run {
                    try Backfill.due(config, today: .today, channels: selection.channels.isEmpty ? nil : Set(selection.channels))
                }
                history.rows.removeAll { !selection.resources.isEmpty && !selection.resources.map(\.rawValue).contains($0.resource) }
                for line in history.lines { logger.info("\(line)") }
            } catch {
                logger.warning("history: cannot read the backfills asked for (\(error)); `huskimo-planner ddl --apply` adds history_days")
            }
            let stamp = UTCTime.iso(Date())
            jobs += history.rows.compactMap { $0.job(runID: runID, plannedAt: stamp) }
        }
        var counts: [String: Int] = [:]
        var days: [String: [Day]] = [:]
        for job in jobs {
            let key = "\(job.channel) \(job.resource.rawValue)"
            counts[key, default: 0] += 1
            if let day = job.day { days[key, default: []].append(day) }
        }
        if dryRun {
            for (key, count) in counts.sorted(by: { $0.key < $1.key }) {
                print("would publish \(count) × \(key)" + (days[key].map { "  " + Planning.describe($0) } ?? "  (snapshot)"))
            }
            print("dry run: \(jobs.count) jobs for \(Set(jobs.map(\.channel)).count) channels, nothing published")
            for line in await accountLines(config, channels: Set(jobs.map(\.channel)), logger: logger) { print(line) }
            return jobs
        }
        let driver = driver ?? QueueDriverFactory.make(config, logger: logger)
        defer { driver.close() }
        do {
            try await driver.publish(messages(jobs, topology: FleetTopology(config)))
        } catch {
            throw CommandFailure.failed("planning failed: publishing \(jobs.count) jobs: \(error)")
        }
        if !history.rows.isEmpty {
            let rows = history.rows
            do {
                try await Blocking.run { try Backfill.markPlanned(config, rows, today: .today) }
            } catch {
                logger.warning(
                    "history: planned \(history.rows.count) days but cannot record it (\(error)): the next plan may plan them again")
            }
        }
        print(
            "planned run \(runID): \(jobs.count) jobs (\(counts.count) channel × resource groups) in \(String(format: "%.2f", -started.timeIntervalSinceNow)) s"
        )
        return jobs
    }

    /// Each day job of a channel that reads several accounts (Twilio's `subaccounts: true`) as one job per account, for
    /// the tables that say whose a row is (`account_sid`): a subaccount that fails fails alone, and a day of a thousand
    /// subaccounts spreads over every worker. A channel whose discovery fails keeps its whole-channel jobs (a warning).
    static func splitByAccount(_ config: FleetConfig, _ jobs: [ExtractJob], logger: Logger) async -> [ExtractJob] {
        let channels = config.channels.filter { channel in channel.subaccounts && jobs.contains { $0.channel == channel.name } }
        guard !channels.isEmpty else { return jobs }
        let context = discoveryContext(config, logger: logger)
        var accounts: [String: [String]] = [:]
        for channel in channels {
            do {
                if let found = try await Blocking.run({ try ConnectorRegistry.connector(of: channel).accountIDs(channel, context: context) }
                ) {
                    accounts[channel.name] = found
                }
            } catch {
                logger.warning(
                    "\(channel.name): discovering its accounts failed (\("\(error)".redacting(config.secrets))); its days are planned whole"
                )
            }
        }
        return jobs.flatMap { job -> [ExtractJob] in
            guard let list = accounts[job.channel], let day = job.day, job.account == nil,
                job.resource.schema.columns.contains(where: { $0.name == "account_sid" })
            else { return [job] }
            return list.map {
                ExtractJob(runID: job.runID, channel: job.channel, resource: job.resource, day: day, plannedAt: job.plannedAt, account: $0)
            }
        }
    }

    /// For each channel that discovers its accounts (Twilio's `subaccounts: true`), which it finds and which it reads:
    /// `accounts of C: 12 subaccounts found, 5 selected: AC… (Client A, active), …; left out: …`. Asks the APIs
    /// (two attempts each); a failure is a line of its own, never the command's.
    package static func accountLines(_ config: FleetConfig, channels: Set<String>? = nil, logger: Logger) async -> [String] {
        let chosen = config.channels.filter { channels?.contains($0.name) ?? true }
        guard chosen.contains(where: \.subaccounts) else { return [] }
        let context = discoveryContext(config, logger: logger)
        return
            (try? await Blocking.run {
                chosen.compactMap { channel -> String? in
                    do {
                        return try ConnectorRegistry.connector(of: channel).accounts(channel, context: context).map {
                            "accounts of \(channel.name): \($0)"
                        }
                    } catch {
                        return "accounts of \(channel.name): discovery failed: \("\(error)".redacting(config.secrets))"
                    }
                }
            }) ?? []
    }

    /// What the planner asks the APIs with (account discovery): its own client, a few attempts per request.
    static func discoveryContext(_ config: FleetConfig, logger: Logger) -> ExtractContext {
        ExtractContext(
            api: APIClient(http: HTTPClient(), limiters: AccountLimiters(), maxAttempts: 3, logger: logger),
            s3: S3Client(config.s3.s3Endpoint), folder: config.s3.folderPath)
    }

    /// `2026-11-25 … 2026-11-28` for a run of days, else every day (a catch-up adds gaps).
    static func describe(_ days: [Day]) -> String {
        let sorted = Set(days).sorted()
        guard let first = sorted.first, let last = sorted.last else { return "" }
        if last.ordinal - first.ordinal + 1 == sorted.count { return sorted.count == 1 ? "\(first)" : "\(first) … \(last)" }
        return sorted.count <= 12 ? sorted.map(\.description).joined(separator: ", ") : "\(sorted.count) days from \(first) to \(last)"
    }

    /// The jobs as messages on the extract queue, each identified by its deterministic job id (planning twice
    /// publishes the same ids: the ledger makes the second load harmless).
    package static func messages(_ jobs: [ExtractJob], topology: FleetTopology) -> [AMQPMessage] {
        jobs.map {
            AMQPMessage(exchange: topology.exchange, routingKey: topology.extractQueue, body: MessageCodec.encode($0), messageID: $0.jobID)
        }
    }
}
