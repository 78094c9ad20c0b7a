import Foundation
import HuskimoConnectors
import HuskimoCore
import Synchronization

/// What `huskimo-planner status` shows.
struct FleetStatus: Sendable, Codable {
    package struct QueueRow: Sendable, Codable {
        package var name: String
        package var ready: Int
        /// Delivered, not yet acked (from the management API; nil without it).
        package var unacked: Int?
        package var consumers: Int
        /// Messages per second in and out (management API).
        package var publishRate: Double?
        package var deliverRate: Double?
        /// Age of the oldest ready message in seconds (management API, classic queues).
        var oldestReadyAgeSeconds: Double?
        /// `quorum` or `classic`, the leading node, and how many of its members are online (management API).
        var type: String?
        var leader: String?
        var members: Int?
        var online: Int?
    }

    package struct FailureGroup: Sendable, Codable {
        package var queue: String
        package var errorClass: String
        package var channel: String
        package var count: Int
        var newestMessage: String
    }

    package struct Reload: Sendable, Codable {
        package var target: String
        package var pass: ReloadPass
    }

    package struct Freshness: Sendable, Codable {
        package var target: String
        package var table: String
        package var channel: String
        var newestDay: String?
        var lastLoadedAt: String?
    }

    /// The version of the `huskimo-planner` that collected this.
    var version = HuskimoVersion.current
    package var queues: [QueueRow] = []
    /// The broker's nodes (management API; empty without it).
    var nodes: [ClusterNode] = []
    /// Queues with fewer members online than the cluster can give them (up to 3): one more node lost and they stop.
    var degraded: [String] = []
    /// Where queue figures came from: `amqp`, or `management` when the management API answered.
    var queueSource = "amqp"
    /// The extract queue's oldest waiting job, in seconds (nil: none waiting, or unknown without the management API).
    var oldestWaitingJobSeconds: Double?
    package var failures: [FailureGroup] = []
    var freshness: [Freshness] = []
    /// Per target, table and channel: what the last pass of reloads (a settle pass) changed.
    var reloads: [Reload] = []
    /// Per target: the days whose rows disagree with the billed usage (re-read, or unreconciled after the re-read).
    var reconciliation: [Reconciliation] = []

    struct Reconciliation: Sendable, Codable {
        var target: String
        var check: Reconciler.Check
    }

    /// How many (target, channel, day, kind) stay unreconciled after their re-read.
    var unreconciledTotal: Int { reconciliation.filter { $0.check.state == .unreconciled }.count }

    /// Per channel and resource with a backfill asked for: the history days not loaded yet and how many fit today's quota.
    var history: [String] = []
    package var problems: [String] = []
    /// For each channel that discovers its accounts, which it finds and which it reads (``Planning/accountLines``).
    package var accounts: [String] = []
    var failedTotal: Int { failures.reduce(0) { $0 + $1.count } }

    /// Reads queue depths, groups parked messages by class and channel, and reads each target's ledger for the
    /// newest loaded day.
    package static func collect(config: FleetConfig, driver: any QueueDriver) async -> FleetStatus {
        let topology = FleetTopology(config)
        var status = FleetStatus()
        let management = ManagementAPI(config.queue)
        (status.queues, status.queueSource, status.problems) = await queueRows(
            topology: topology, driver: driver, management: management)
        if let management, let nodes = try? await Blocking.run({ try management.nodes() }) {
            status.nodes = nodes
            status.degraded = FleetStatus.degraded(status.queues, clusterSize: nodes.count)
        }
        status.oldestWaitingJobSeconds = status.queues.first { $0.name == topology.extractQueue }?.oldestReadyAgeSeconds
        let parked = await failures(in: [topology.failedQueue] + config.targets.map { topology.failedLoadQueue($0.name) }, driver: driver)
        status.failures = parked.groups
        status.problems += parked.problems
        let targets = config.targets
        let (freshness, reloads, reconciliation, problems) = (try? await Blocking.run { ledgers(targets) }) ?? ([], [], [], [])
        status.freshness = freshness
        status.reloads = reloads
        status.reconciliation = reconciliation
        status.history = (try? await Blocking.run { try Backfill.due(config, today: .today).lines }) ?? []
        status.problems += problems
        return status
    }

    /// Parked messages of `queues` grouped by queue, error class and channel (each group with its newest reason).
    /// Reads at most 10,000 per queue; none is removed.
    package static func failures(in queues: [String], driver: any QueueDriver) async -> (groups: [FailureGroup], problems: [String]) {
        var all: [FailureGroup] = []
        var problems: [String] = []
        for queue in queues {
            let groups = Mutex<[String: FailureGroup]>([:])
            do {
                try await driver.drain(queue, limit: 10_000) { delivery in
                    let parked = ParkedHeaders(delivery.headers)
                    let cls = parked.errorClass
                    let channel = parked.channel ?? "-"
                    groups.withLock { groups in
                        let key = cls + "\u{0}" + channel
                        var group =
                            groups[key] ?? FailureGroup(queue: queue, errorClass: cls, channel: channel, count: 0, newestMessage: "")
                        group.count += 1
                        group.newestMessage = parked.message
                        groups[key] = group
                    }
                    return .keep
                }
            } catch {
                problems.append("queue \(queue): \(error)")
            }
            all += groups.withLock { $0.values.sorted { ($0.errorClass, $0.channel) < ($1.errorClass, $1.channel) } }
        }
        return (all, problems)
    }

    /// Every target's ledger: the newest loaded day and the last reload pass per (table, channel). Blocking.
    static func ledgers(_ targets: [TargetConfig]) -> ([Freshness], [Reload], [Reconciliation], [String]) {
        var reconciliation: [Reconciliation] = []
        var freshness: [Freshness] = []
        var reloads: [Reload] = []
        var problems: [String] = []
        for target in targets {
            do {
                let pg = try PostgresConnection(target.postgresSettings)
                freshness += try Ledger(schema: target.schema).freshness(pg).map {
                    Freshness(
                        target: target.name, table: $0.table, channel: $0.channel, newestDay: $0.newestDay, lastLoadedAt: $0.lastLoadedAt)
                }
                reconciliation += ((try? Reconciler(schema: target.schema).open(pg)) ?? []).map {
                    Reconciliation(target: target.name, check: $0)
                }
                do {
                    reloads += try Ledger(schema: target.schema).lastPass(pg).map { Reload(target: target.name, pass: $0) }
                } catch {
                    problems.append("target \(target.name): no change reports (\(error)); `huskimo-planner ddl --apply` adds the table")
                }
            } catch {
                problems.append("target \(target.name): \(error)")
            }
        }
        return (freshness, reloads, reconciliation, problems)
    }

    /// The queues whose online members are fewer than the redundancy the cluster can give (its size, at most 3), each
    /// with what it has: `huskimo.extract: 2 of 3 members online`.
    static func degraded(_ rows: [QueueRow], clusterSize: Int) -> [String] {
        let wanted = min(3, clusterSize)
        return rows.compactMap { row in
            guard row.type == "quorum", let online = row.online, let members = row.members, online < wanted || members < wanted else {
                return nil
            }
            return "\(row.name): \(online) of \(members) members online (a cluster of \(clusterSize) gives \(wanted))"
        }
    }

    /// Every queue's figures: from the management API where configured and answering (unacked, rates, oldest
    /// age), else from the driver (ready and consumers). Also feeds the loaders' queue metrics.
    static func queueRows(
        topology: FleetTopology, driver: any QueueDriver, management: ManagementAPI?,
        now: Date = Date()
    ) async -> (rows: [QueueRow], source: String, problems: [String]) {
        var rows: [QueueRow] = []
        var problems: [String] = []
        var managementFailed = false
        for name in topology.allQueues {
            if let management, !managementFailed {
                do {
                    let stats = try await Blocking.run { try management.queue(name) }
                    rows.append(
                        QueueRow(
                            name: name, ready: stats.ready, unacked: stats.unacked, consumers: stats.consumers,
                            publishRate: stats.publishRate, deliverRate: stats.deliverRate,
                            oldestReadyAgeSeconds: stats.headMessageTimestamp.map { max(0, now.timeIntervalSince1970 - Double($0)) },
                            type: stats.type, leader: stats.leader, members: stats.members.isEmpty ? nil : stats.members.count,
                            online: stats.members.isEmpty ? nil : stats.online.count))
                    continue
                } catch {
                    // One failure (API down, wrong URL): the driver for the rest, and say so.
                    problems.append("management API: \(error); queue figures from AMQP")
                    managementFailed = true
                }
            }
            do {
                let depth = try await driver.depth(name)
                rows.append(QueueRow(name: name, ready: depth.ready, unacked: nil, consumers: depth.consumers))
            } catch {
                problems.append("queue \(name): \(error)")
            }
        }
        // Mixed figures (the API failed part-way) are reported as AMQP's: unacked counts are then incomplete.
        return (rows, management != nil && !managementFailed ? "management" : "amqp", problems)
    }

    /// The human-readable form.
    package var text: String {
        func cell(_ text: String, _ width: Int) -> String {
            text.padding(toLength: max(width, text.count + 1), withPad: " ", startingAt: 0)
        }
        func rate(_ value: Double?) -> String { value.map { String(format: "%.1f", $0) } ?? "-" }
        var lines: [String] = []
        if !nodes.isEmpty {
            lines.append("NODES: " + nodes.map { "\($0.name) \($0.running ? "running" : "DOWN")" }.joined(separator: ", "))
        }
        lines.append(
            cell("QUEUE", 44) + cell("READY", 8) + cell("UNACKED", 9) + cell("CONSUMERS", 11) + cell("IN/s", 8)
                + cell("OUT/s", 8) + cell("OLDEST", 8) + cell("TYPE", 8) + cell("ONLINE", 8) + "LEADER")
        for q in queues {
            lines.append(
                cell(q.name, 44) + cell(String(q.ready), 8) + cell(q.unacked.map(String.init) ?? "-", 9)
                    + cell(String(q.consumers), 11) + cell(rate(q.publishRate), 8) + cell(rate(q.deliverRate), 8)
                    + cell(q.oldestReadyAgeSeconds.map(FleetStatus.age) ?? "-", 8) + cell(q.type ?? "-", 8)
                    + cell(q.online.map { "\($0)/\(q.members ?? 0)" } ?? "-", 8) + (q.leader ?? "-"))
        }
        for d in degraded { lines.append("WARNING: redundancy lost: \(d)") }
        if queueSource == "amqp" {
            lines.append("(queue figures from AMQP: set queue.management_url for unacked counts, rates and ages)")
        } else {
            lines.append("(queue figures from the management API, which refreshes them every few seconds)")
        }
        if let oldest = oldestWaitingJobSeconds { lines.append("oldest waiting job: \(FleetStatus.age(oldest))") }
        lines.append("")
        if failures.isEmpty {
            lines.append("FAILED: none")
        } else {
            lines.append("FAILED: \(failedTotal)  (re-drive with: huskimo-planner requeue --config …)")
            for f in failures {
                lines.append("  \(f.count) × \(f.errorClass) in \(f.channel) (\(f.queue)): \(f.newestMessage.prefix(160))")
            }
        }
        lines.append("")
        lines.append("NEWEST LOADED (target / table / channel → day, last load)")
        for f in freshness {
            lines.append("  \(f.target) / \(f.table) / \(f.channel) → \(f.newestDay ?? "snapshot"), \(f.lastLoadedAt ?? "-")")
        }
        if !reloads.isEmpty {
            lines.append("")
            lines.append("LAST RELOAD PASS (target / table / channel: partitions, records changed by SID)")
            for r in reloads {
                let p = r.pass
                lines.append(
                    "  \(r.target) / \(p.table) / \(p.channel): \(p.replaced) replaced (\(p.changed) changed, \(p.added) added, "
                        + "\(p.removed) removed), \(p.identical) identical, \(p.newPartitions) new, \(p.lastLoadedAt ?? "-")")
            }
        }
        if !reconciliation.isEmpty {
            lines.append("")
            lines.append("RECONCILIATION (days whose billable rows disagree with Twilio's billed usage)")
            for r in reconciliation {
                let c = r.check
                lines.append(
                    "  \(r.target) / \(c.channel) / \(c.day) \(c.kind): \(c.rows) rows billable, \(c.billed) billed — "
                        + (c.state == .unreconciled ? "UNRECONCILED after a re-read" : "being read again"))
            }
        }
        if !history.isEmpty {
            lines.append("")
            lines.append("HISTORY (backfills through Bulk Export; plan and run go on with what is left)")
            lines += history.map { "  " + $0 }
        }
        if !accounts.isEmpty {
            lines.append("")
            lines.append("ACCOUNTS (channels with subaccounts: found, selected, left out)")
            lines += accounts.map { "  " + $0 }
        }
        for p in problems { lines.append("problem: \(p)") }
        return lines.joined(separator: "\n")
    }

    /// `42s`, `17m`, `3h05m`, `2d04h`.
    static func age(_ seconds: Double) -> String {
        let s = Int(seconds)
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m" }
        if s < 86_400 { return String(format: "%dh%02dm", s / 3600, s / 60 % 60) }
        return String(format: "%dd%02dh", s / 86_400, s / 3600 % 24)
    }
}
