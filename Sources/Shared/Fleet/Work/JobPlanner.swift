import Foundation
package import HuskimoConnectors
package import HuskimoCore

/// Which jobs to plan. The run day means the same for every channel: Twilio plans it, the days still settling
/// before it (`fetch.settle_days`) and the catch-up days since `fetch.start_date`; Singular plans the `lookback`
/// days ending at it. An explicit range is exactly those days for every channel.
package struct PlanSelection: Sendable {
    /// `--date D`: the run day (nil: yesterday, UTC).
    package var runDay: Day?
    /// `--from/--to`: exactly these days for every channel (no settle window, catch-up or lookback).
    package var days: [Day]?
    package var channels: [String] = []
    package var resources: [Resource] = []

    package init(runDay: Day? = nil, days: [Day]? = nil, channels: [String] = [], resources: [Resource] = []) {
        self.runDay = runDay
        self.days = days
        self.channels = channels
        self.resources = resources
    }
}

/// Turns configuration and a selection into extract jobs: one per (channel, resource, day) and one per
/// (channel, snapshot resource).
struct JobPlanner: Sendable {
    package let config: FleetConfig

    package init(config: FleetConfig) { self.config = config }

    /// The days a channel's day resource gets, newest first: its connector's policy (``Connector/days(_:)``).
    /// - Parameter loaded: the days every target's ledger already has (asked only by a policy that catches up).
    package func days(
        for channel: ChannelConfig, _ selection: PlanSelection, runDay: Day, today: Day,
        loaded: @escaping @Sendable () -> Set<Day> = { [] }
    ) -> DayPlan {
        ConnectorRegistry.connector(of: channel).days(
            DayPlanRequest(
                explicit: selection.days, runDay: runDay, today: today, settleDays: config.fetch.settleDays,
                lookback: config.fetch.lookback, startDate: config.fetch.startDate, loaded: loaded, channel: channel))
    }

    /// - Parameters:
    ///   - today: the current UTC day; without `selection.runDay`, the run day is the day before.
    ///   - loadedDays: for catch-up, the days each (table, channel) already has in *every* target's ledger.
    package func plan(
        _ selection: PlanSelection, runID: String, today: Day = .today, plannedAt: Date = Date(),
        loadedDays: @escaping @Sendable (_ table: String, _ channel: String) -> Set<Day> = { _, _ in [] }
    )
        -> (jobs: [ExtractJob], warnings: [String])
    {
        var jobs: [ExtractJob] = []
        var warnings: [String] = []
        let stamp = UTCTime.iso(plannedAt)
        let runDay = selection.runDay ?? today.adding(days: -1)
        if runDay >= today, selection.days == nil {
            warnings.append("run day \(runDay) is not over yet (today is \(today), UTC): its data is partial")
        }
        for channel in config.channels where selection.channels.isEmpty || selection.channels.contains(channel.name) {
            let resources = ConnectorRegistry.connector(of: channel).resources.map(\.resource)
                .filter { selection.resources.isEmpty || selection.resources.contains($0) }
            for resource in resources {
                if resource.isSnapshot {
                    jobs.append(ExtractJob(runID: runID, channel: channel.name, resource: resource, day: nil, plannedAt: stamp))
                    continue
                }
                let name = channel.name, table = resource.table
                let plan = days(for: channel, selection, runDay: runDay, today: today, loaded: { loadedDays(table, name) })
                for day in plan.refused {
                    warnings.append(
                        "\(channel.name) \(resource.rawValue) \(day): \(plan.reason ?? "refused by its connector"); not planned")
                }
                for day in plan.days {
                    jobs.append(ExtractJob(runID: runID, channel: channel.name, resource: resource, day: day, plannedAt: stamp))
                }
            }
        }
        return (JobPlanner.interleaved(jobs), warnings)
    }

    /// Jobs in round-robin order across channels: a worker takes its prefetch of consecutive jobs, and
    /// consecutive jobs of one account would all wait on that account's API concurrency while other
    /// accounts' jobs sit in the queue.
    static func interleaved(_ jobs: [ExtractJob]) -> [ExtractJob] {
        var index: [String: Int] = [:]
        var byChannel: [[ExtractJob]] = []
        for job in jobs {
            if let i = index[job.channel] {
                byChannel[i].append(job)
            } else {
                index[job.channel] = byChannel.count
                byChannel.append([job])
            }
        }
        var result: [ExtractJob] = []
        result.reserveCapacity(jobs.count)
        let rounds = byChannel.map(\.count).max() ?? 0
        for round in 0..<rounds {
            for list in byChannel where round < list.count { result.append(list[round]) }
        }
        return result
    }
}
