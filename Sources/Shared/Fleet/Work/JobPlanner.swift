public import Foundation
public import HuskimoCore
public import HuskimoConnectors

/// Which jobs to plan. The run day means the same for every channel: Twilio plans it, the days still settling
/// before it (`fetch.settle_days`) and the catch-up days since `fetch.start_date`; Singular plans the `lookback`
/// days ending at it. An explicit range is exactly those days for every channel.
public struct PlanSelection: Sendable {
    /// `--date D`: the run day (nil: yesterday, UTC).
    public var runDay: Day?
    /// `--from/--to`: exactly these days for every channel (no settle window, catch-up or lookback).
    public var days: [Day]?
    public var channels: [String] = []
    public var resources: [Resource] = []

    public init(runDay: Day? = nil, days: [Day]? = nil, channels: [String] = [], resources: [Resource] = []) {
        self.runDay = runDay
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

    /// The days a channel's day resources get, newest first (the run day leads, so a backlog never delays it).
    /// - Parameters:
    ///   - runDay: the run day (`--date`, else yesterday).
    ///   - loaded: for Twilio catch-up, the days every target's ledger already has.
    public func days(for channel: ChannelConfig, _ selection: PlanSelection, runDay: Day, today: Day, loaded: Set<Day>) -> [Day] {
        if let explicit = selection.days { return explicit }
        if channel.type == .singular {
            // Spend is not final for weeks: every run re-fetches the `lookback` days ending at the run day
            // (0.3 fetched lookback + 1 days, today's partial one included: D10).
            return (0..<max(config.fetch.lookback, 1)).map { runDay.adding(days: -$0) }
        }
        // Twilio data settles for hours after the day (statuses, prices, late messages): the settle window is
        // read again every night, loaded or not; older days only when no target has them (catch-up).
        var days = (0...config.fetch.settleDays).map { runDay.adding(days: -$0) }
        if let start = config.fetch.startDate {
            var day = max(start, today.adding(days: -JobPlanner.twilioWindow))
            let settled = runDay.adding(days: -config.fetch.settleDays)
            while day < settled {
                if !loaded.contains(day) { days.append(day) }
                day = day.adding(days: 1)
            }
        }
        return days
    }

    /// - Parameters:
    ///   - today: the current UTC day; without `selection.runDay`, the run day is the day before.
    ///   - loadedDays: for catch-up, the days each (table, channel) already has in *every* target's ledger.
    public func plan(_ selection: PlanSelection, runID: String, today: Day = .today, plannedAt: Date = Date(),
                     loadedDays: (_ table: String, _ channel: String) -> Set<Day> = { _, _ in [] }) -> (jobs: [ExtractJob], warnings: [String]) {
        var jobs: [ExtractJob] = []
        var warnings: [String] = []
        let stamp = UTCTime.iso(plannedAt)
        let runDay = selection.runDay ?? today.adding(days: -1)
        if runDay >= today, selection.days == nil {
            warnings.append("run day \(runDay) is not over yet (today is \(today), UTC): its data is partial")
        }
        let oldest = today.adding(days: -JobPlanner.twilioWindow)
        for channel in config.channels where selection.channels.isEmpty || selection.channels.contains(channel.name) {
            let resources = Resource.allCases.filter { $0.channelType == channel.type }
                .filter { selection.resources.isEmpty || selection.resources.contains($0) }
            for resource in resources {
                if resource.isSnapshot {
                    jobs.append(ExtractJob(runID: runID, channel: channel.name, resource: resource, day: nil, plannedAt: stamp))
                    continue
                }
                let loaded = channel.type == .twilio && selection.days == nil ? loadedDays(resource.table, channel.name) : []
                for day in days(for: channel, selection, runDay: runDay, today: today, loaded: loaded) {
                    guard channel.type == .singular || day >= oldest else {
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
