import Foundation
public import HuskimoConnectors
public import HuskimoCore
public import Logging

/// `huskimo-planner plan`: turns the configuration and a selection into jobs and publishes them with confirms.
public enum Planning {
    /// The days every target's ledger has for each (table, channel): what catch-up does not plan again. A target
    /// whose ledger cannot be read makes the answer empty (plan everything: loads are idempotent). Blocking.
    public static func loadedDays(_ config: FleetConfig, logger: Logger) -> (String, String) -> Set<Day> {
        var cache: [String: Set<Day>] = [:]
        var connections: [String: PostgresConnection] = [:]
        for target in config.targets {
            do { connections[target.name] = try PostgresConnection(target.postgresSettings) } catch {
                logger.warning("catch-up: cannot read the ledger of a target; planning as if it had nothing",
                               metadata: ["target": "\(target.name)", "error": "\(error)"])
            }
        }
        return { table, channel in
            let key = table + "\u{0}" + channel
            if let hit = cache[key] { return hit }
            var common: Set<Day>?
            for target in config.targets {
                guard let pg = connections[target.name] else { return [] }
                let days = (try? Ledger(schema: target.schema).loadedDays(table: table, channel: channel, pg)) ?? []
                common = common.map { $0.intersection(days) } ?? days
            }
            cache[key] = common ?? []
            return common ?? []
        }
    }

    /// Plans and (unless `dryRun`) publishes; prints a summary. Blocking work runs off the cooperative pool.
    /// - Throws: ``CommandFailure/failed(_:)`` when publishing failed.
    public static func planAndPublish(_ config: FleetConfig, _ selection: PlanSelection, dryRun: Bool, logger: Logger) async throws
        -> [ExtractJob]
    {
        do {
            return try await Blocking.run { try planAndPublishBlocking(config, selection, dryRun: dryRun, logger: logger) }
        } catch let failure as CommandFailure {
            throw failure
        } catch {
            throw CommandFailure.failed("planning failed: \(error)")
        }
    }

    static func planAndPublishBlocking(_ config: FleetConfig, _ selection: PlanSelection, dryRun: Bool, logger: Logger) throws
        -> [ExtractJob]
    {
        let runID = UTCTime.compact(Date())
        let started = Date()
        let (jobs, warnings) = JobPlanner(config: config).plan(
            selection, runID: runID, loadedDays: selection.days == nil ? loadedDays(config, logger: logger) : { _, _ in [] })
        for warning in warnings { logger.warning("\(warning)") }
        var counts: [String: Int] = [:]
        for job in jobs { counts["\(job.channel) \(job.resource.rawValue)", default: 0] += 1 }
        if dryRun {
            for (key, count) in counts.sorted(by: { $0.key < $1.key }) { print("would publish \(count) × \(key)") }
            print("dry run: \(jobs.count) jobs for \(Set(jobs.map(\.channel)).count) channels, nothing published")
            return jobs
        }
        let topology = FleetTopology(config)
        let client = QueueClient(url: config.queue.url, topology: topology.topology, logger: logger)
        defer { client.close() }
        try client.publish(jobs.map {
            AMQPMessage(exchange: topology.exchange, routingKey: topology.extractQueue, body: MessageCodec.encode($0), messageID: $0.jobID)
        })
        print("planned run \(runID): \(jobs.count) jobs (\(counts.count) channel × resource groups) in \(String(format: "%.2f", -started.timeIntervalSinceNow)) s")
        return jobs
    }
}
