public import Foundation
public import HuskimoCore
public import HuskimoConnectors

/// Which jobs to plan.
public struct PlanSelection: Sendable {
    /// Explicit days (from `--date` or `--from/--to`); nil: the default (yesterday plus catch-up).
    public var days: [Day]?
    public var channels: [String] = []
    public var resources: [Resource] = []

    public init(days: [Day]? = nil, channels: [String] = [], resources: [Resource] = []) {
        self.days = days
        self.channels = channels
        self.resources = resources
    }
}

/// Turns configuration and a selection into extract jobs: one per (channel, resource, day) and one per
/// (channel, snapshot resource).
public struct JobPlanner: Sendable {
    public let config: FleetConfig
    /// Twilio lists only the last 400 days.
    public static let twilioWindow = 400

    public init(config: FleetConfig) { self.config = config }

    /// - Parameters:
    ///   - today: the current UTC day; the run day is the day before.
    ///   - loadedDays: for catch-up, the days each (table, channel) already has in *every* target's ledger.
    public func plan(_ selection: PlanSelection, runID: String, today: Day = .today, plannedAt: Date = Date(),
                     loadedDays: (_ table: String, _ channel: String) -> Set<Day> = { _, _ in [] }) -> (jobs: [ExtractJob], warnings: [String]) {
        var jobs: [ExtractJob] = []
        var warnings: [String] = []
        let stamp = UTCTime.iso(plannedAt)
        let runDay = today.adding(days: -1)
        for channel in config.channels where selection.channels.isEmpty || selection.channels.contains(channel.name) {
            let resources = Resource.allCases.filter { $0.channelType == channel.type }
                .filter { selection.resources.isEmpty || selection.resources.contains($0) }
            if channel.type == .singular {
                // Spend is not final for weeks: every run re-fetches the `lookback` days ending at the run day
                // (0.3 fetched lookback + 1 days, today's partial one included: D10). Explicit days are taken as given.
                let days = selection.days ?? (0..<max(config.fetch.lookback, 1)).reversed().map { runDay.adding(days: -$0) }
                for resource in resources {
                    for day in days {
                        jobs.append(ExtractJob(runID: runID, channel: channel.name, resource: resource, day: day, plannedAt: stamp))
                    }
                }
                continue
            }
            for resource in resources {
                if resource.isSnapshot {
                    jobs.append(ExtractJob(runID: runID, channel: channel.name, resource: resource, day: nil, plannedAt: stamp))
                    continue
                }
                var days: [Day]
                if let explicit = selection.days {
                    days = explicit
                } else {
                    days = [runDay]
                    if let start = config.fetch.startDate {
                        let earliest = max(start, today.adding(days: -JobPlanner.twilioWindow))
                        let loaded = loadedDays(resource.table, channel.name)
                        var day = earliest
                        while day < runDay {
                            if !loaded.contains(day) { days.append(day) }
                            day = day.adding(days: 1)
                        }
                    }
                }
                let oldest = today.adding(days: -JobPlanner.twilioWindow)
                for day in days {
                    guard day >= oldest else {
                        warnings.append("\(channel.name) \(resource.rawValue) \(day): older than Twilio's \(JobPlanner.twilioWindow)-day list window; not planned")
                        continue
                    }
                    jobs.append(ExtractJob(runID: runID, channel: channel.name, resource: resource, day: day, plannedAt: stamp))
                }
            }
        }
        return (JobPlanner.interleaved(jobs), warnings)
    }

    /// Jobs in round-robin order across channels: a worker takes its prefetch of consecutive jobs, and
    /// consecutive jobs of one account would all wait on that account's API concurrency while other
    /// accounts' jobs sit in the queue.
    public static func interleaved(_ jobs: [ExtractJob]) -> [ExtractJob] {
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
