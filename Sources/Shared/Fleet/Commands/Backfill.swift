import Foundation
package import HuskimoConnectors
package import HuskimoCore
package import Logging

/// `huskimo-planner backfill`: history older than a connector's list window (Twilio's calls and messages through Bulk
/// Export). The days asked for are kept in every target (``HistoryBook``); each planning pass — the backfill itself,
/// then every `plan` and `run` — plans those not loaded yet, newest first, at most the quota's days per account and
/// UTC day, so a three-year backfill runs itself out over the nights that follow and `status` says what is left.
package enum Backfill {
    /// Plans (and unless `dryRun` publishes) the history days from `from` to `to` of one channel, and the days of
    /// that range still inside the list window as ordinary jobs. - Returns: the jobs.
    /// - Throws: ``CommandFailure``: usage for a channel or resource without history or a bad range; failed when the
    ///   channel cannot reach its history (a region without Bulk Export, subaccounts), a target cannot record the
    ///   request, or publishing failed.
    package static func run(
        _ config: FleetConfig, channel name: String, resources: [Resource], from: Day, to: Day, dryRun: Bool,
        driver: (any QueueDriver)? = nil, today: Day = .today, logger: Logger
    ) async throws -> [ExtractJob] {
        guard let channel = config.channels.first(where: { $0.name == name }) else {
            throw CommandFailure.usage("no channel named \(name)")
        }
        guard let policy = ConnectorRegistry.connector(of: channel).history(channel) else {
            throw CommandFailure.usage("\(name) is a \(channel.type) channel: it has no history beyond what plan reads")
        }
        let chosen = resources.isEmpty ? policy.resources : resources
        for resource in chosen where !policy.resources.contains(resource) {
            throw CommandFailure.usage(
                "\(resource) has no history API: backfill reads \(policy.resources.map(\.rawValue).joined(separator: " and "))")
        }
        guard from <= to else { throw CommandFailure.usage("--from must not be after --to") }
        guard to < today.adding(days: -1) else {
            throw CommandFailure.usage("--to must be at least two days before today (\(today), UTC): the export of a day is made after it")
        }
        let oldest = today.adding(days: -policy.listWindow)
        let days = (from.ordinal...to.ordinal).map(Day.init(ordinal:))
        let history = days.filter { $0 < oldest }
        if !history.isEmpty, let why = policy.unavailable { throw CommandFailure.failed("\(name): \(why)") }
        let runID = try await Blocking.run {
            try PlanClock.system(config.s3).runID(tolerance: LoadMessageCheck.clockTolerance) { logger.warning("\($0)") }
        }
        let stamp = UTCTime.iso(Date())
        var jobs = chosen.flatMap { resource in
            days.filter { $0 >= oldest }.map { ExtractJob(runID: runID, channel: name, resource: resource, day: $0, plannedAt: stamp) }
        }
        let asked = chosen.flatMap { resource in
            history.map { HistoryBook.Row(channel: name, resource: resource.rawValue, day: $0, quotaKey: policy.quotaKey) }
        }
        if !dryRun && !asked.isEmpty {
            try await Blocking.run {
                for target in config.targets {
                    do {
                        try HistoryBook(schema: target.schema).request(asked, try PostgresConnection(target.postgresSettings))
                    } catch {
                        throw CommandFailure.failed(
                            "backfill: target \(target.name) cannot record the history asked for (\(error)); `huskimo-planner ddl --apply` adds history_days"
                        )
                    }
                }
            }
        }
        let due = try await Blocking.run { try Backfill.due(config, today: today, channels: [name], asked: dryRun ? asked : []) }
        jobs += due.rows.compactMap { $0.job(runID: runID, plannedAt: stamp) }
        for line in due.lines { print(line) }
        print(
            "\(dryRun ? "would plan" : "planned") \(jobs.count) jobs for \(name): \(due.rows.count) history days through Bulk Export, "
                + "\(jobs.count - due.rows.count) days inside the \(policy.listWindow)-day list window")
        if dryRun { return jobs }
        try await publish(config, jobs, driver: driver, logger: logger)
        try await Blocking.run { try markPlanned(config, due.rows, today: today) }
        return JobPlanner.interleaved(jobs)
    }

    /// What a planning pass of history chose: the days to plan now, and a line per (channel, resource) saying what is
    /// left and how much of the quota today took.
    struct Due: Sendable {
        var rows: [HistoryBook.Row] = []
        var lines: [String] = []
    }

    /// The history days to plan now: asked for in any target (or in `asked`, a dry run's), not loaded in every target,
    /// not planned today already; newest first (next to the list window), at most each quota key's days per day less
    /// what it planned today. Blocking. - Throws: what a target's database answered.
    static func due(_ config: FleetConfig, today: Day, channels: Set<String>? = nil, asked: [HistoryBook.Row] = []) throws -> Due {
        var rows: [String: HistoryBook.Row] = [:]
        func key(_ r: HistoryBook.Row) -> String { "\(r.channel)\u{0}\(r.resource)\u{0}\(r.day)" }
        for row in asked { rows[key(row)] = row }
        for target in config.targets {
            for row in try HistoryBook(schema: target.schema).rows(try PostgresConnection(target.postgresSettings)) {
                if let known = rows[key(row)], let plannedOn = known.plannedOn, row.plannedOn.map({ $0 < plannedOn }) ?? true { continue }
                rows[key(row)] = row
            }
        }
        let wanted = rows.values.filter { row in
            (channels?.contains(row.channel) ?? true) && config.channels.contains { $0.name == row.channel }
                && Resource(rawValue: row.resource) != nil
        }
        guard !wanted.isEmpty else { return Due() }
        let loaded = try Planning.loadedDays(config, PlanSelection(channels: Array(Set(wanted.map(\.channel)))))
        var usedToday: [String: Int] = [:]
        for row in rows.values where row.plannedOn == today { usedToday[row.quotaKey, default: 0] += 1 }
        var due = Due()
        var planned: [String: Int] = [:]
        let pending = wanted.filter { !loaded(Resource(rawValue: $0.resource)!.table, $0.channel).contains($0.day) }
        for row in pending.sorted(by: { ($0.day, $0.channel, $0.resource) > ($1.day, $1.channel, $1.resource) })
        where row.plannedOn != today {
            guard let channel = config.channels.first(where: { $0.name == row.channel }),
                let policy = ConnectorRegistry.connector(of: channel).history(channel), policy.unavailable == nil
            else { continue }
            guard usedToday[row.quotaKey, default: 0] < policy.daysPerDay else { continue }
            usedToday[row.quotaKey, default: 0] += 1
            planned["\(row.channel) \(row.resource)", default: 0] += 1
            var chosen = row
            chosen.plannedOn = today
            due.rows.append(chosen)
        }
        var groups: [String: (left: Int, oldest: Day?)] = [:]
        for row in pending {
            let name = "\(row.channel) \(row.resource)"
            let group = groups[name] ?? (0, nil)
            groups[name] = (group.left + 1, min(group.oldest ?? row.day, row.day))
        }
        for (name, group) in groups.sorted(by: { $0.key < $1.key }) {
            let now = planned[name, default: 0]
            due.lines.append(
                "history of \(name): \(group.left) days not loaded (oldest \(group.oldest.map(\.description) ?? "-")); \(now) of them fit "
                    + "today's export quota, \(group.left - now) wait for the coming days")
        }
        return due
    }

    /// Records in every target that `rows` were planned today (what the next pass counts against the quota).
    static func markPlanned(_ config: FleetConfig, _ rows: [HistoryBook.Row], today: Day) throws {
        guard !rows.isEmpty else { return }
        for target in config.targets {
            try HistoryBook(schema: target.schema).markPlanned(rows, on: today, try PostgresConnection(target.postgresSettings))
        }
    }

    static func publish(_ config: FleetConfig, _ jobs: [ExtractJob], driver: (any QueueDriver)?, logger: Logger) async throws {
        guard !jobs.isEmpty else { return }
        let driver = driver ?? QueueDriverFactory.make(config, logger: logger)
        defer { driver.close() }
        do {
            try await driver.publish(Planning.messages(JobPlanner.interleaved(jobs), topology: FleetTopology(config)))
        } catch {
            throw CommandFailure.failed("backfill failed: publishing \(jobs.count) jobs: \(error)")
        }
    }
}
