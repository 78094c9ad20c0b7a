import Foundation
import HuskimoTesting
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

@Suite struct PlannerTests {
    static func config(startDate: String? = nil, settleDays: Int = 3, lookback: Int = 30, channelA: String = "") throws -> FleetConfig {
        try FleetConfig.parse(
            """
            fetch: {lookback: \(lookback), settle_days: \(settleDays)\(startDate.map { ", start_date: \($0)" } ?? "")}
            channels:
              - {name: a, type: twilio, api_user: AC1, api_key: k\(channelA)}
              - {name: b, type: twilio, api_user: AC2, api_key: k}
              - {name: s, type: singular, api_key: k}
            s3: {access_key_id: k, secret_access_key: s, region: us-east-1, bucket: b}
            targets: [{name: t, host: h, database: d, username: u}]
            """, environment: [:])
    }

    @Test func oneJobPerChannelResourceDayAndPerSnapshotWithDeterministicIDs() throws {
        let planner = JobPlanner(config: try Self.config())
        let days = [Day("2026-11-27")!, Day("2026-11-28")!]
        let (jobs, warnings) = planner.plan(PlanSelection(days: days), runID: "r", today: Day("2026-11-29")!)
        // 2 Twilio channels × (4 day resources (calls, messages, recordings, usage records) × 2 days + 4 snapshots:
        // numbers and three pricings) + 1 Singular channel × 2 resources × 2 days
        #expect(jobs.count == 2 * (4 * 2 + 4) + 2 * 2)
        #expect(jobs.contains { $0.jobID == "twilio/b/usage_records/2026-11-27" })
        #expect(
            jobs.contains { $0.jobID == "twilio/a/pricing_voice/snapshot" }
                && jobs.contains { $0.jobID == "twilio/b/pricing_messaging/snapshot" })
        #expect(Set(jobs.map(\.jobID)).count == jobs.count)
        #expect(jobs.contains { $0.jobID == "twilio/a/calls/2026-11-28" })
        #expect(jobs.contains { $0.jobID == "twilio/b/pricing_phone_numbers/snapshot" })
        #expect(jobs.contains { $0.jobID == "singular/s/creatives/2026-11-27" })
        #expect(warnings.isEmpty)
        // Consecutive jobs alternate between channels.
        #expect(zip(jobs, jobs.dropFirst()).allSatisfy { $0.channel != $1.channel })
        let again = planner.plan(PlanSelection(days: days), runID: "r2", today: Day("2026-11-29")!).jobs
        #expect(again.map(\.jobID) == jobs.map(\.jobID))
    }

    @Test func singularReplansItsLookbackWindowEndingAtTheRunDay() throws {
        let planner = JobPlanner(config: try Self.config(startDate: "2026-01-01"))
        // Days already loaded do not matter: spend is restated, so every run re-fetches the window.
        let (jobs, _) = planner.plan(
            PlanSelection(channels: ["s"]), runID: "r", today: Day("2026-11-29")!,
            loadedDays: { _, _ in [Day("2026-11-28")!] })
        for resource in [Resource.campaigns, .creatives] {
            let days = jobs.filter { $0.resource == resource }.compactMap(\.day).sorted()
            #expect(days.count == 30)
            #expect(days.first == Day("2026-10-30") && days.last == Day("2026-11-28"), "30 days ending yesterday, not today")
        }
        #expect(jobs.count == 60)
    }

    @Test func theDefaultIsYesterdayPlusDaysNeverLoadedWithinTheWindow() throws {
        let planner = JobPlanner(config: try Self.config(startDate: "2026-11-20"))
        let loaded: Set<Day> = [Day("2026-11-21")!, Day("2026-11-25")!]
        let (jobs, _) = planner.plan(
            PlanSelection(channels: ["a"], resources: [.calls]), runID: "r", today: Day("2026-11-29")!,
            loadedDays: { _, _ in loaded })
        // 11-21 is loaded and old enough: not again. 11-25 is loaded but still settling (3 days before the run day).
        #expect(
            jobs.compactMap(\.day).map(\.description).sorted() == [
                "2026-11-20", "2026-11-22", "2026-11-23", "2026-11-24", "2026-11-25", "2026-11-26", "2026-11-27", "2026-11-28",
            ])
        #expect(jobs.first?.day == Day("2026-11-28"), "the run day leads")
        let old = JobPlanner(config: try Self.config(startDate: "2020-01-01"))
        let far = old.plan(PlanSelection(channels: ["a"], resources: [.calls]), runID: "r", today: Day("2026-11-29")!).jobs
        #expect(far.count == TwilioConnector.listWindow)  // bounded by Twilio's 400-day list window
        // An account whose owner kept 30 days: the catch-up stops there, and explicit older days are refused, named.
        let short = JobPlanner(config: try Self.config(startDate: "2020-01-01", channelA: ", list_window_days: 30"))
        let near = short.plan(PlanSelection(channels: ["a"], resources: [.calls]), runID: "r", today: Day("2026-11-29")!).jobs
        #expect(near.count == 30 && near.allSatisfy { $0.day! >= Day("2026-10-30")! })
        let (older, warnings) = short.plan(
            PlanSelection(days: [Day("2026-10-01")!], channels: ["a"], resources: [.calls]), runID: "r", today: Day("2026-11-29")!)
        #expect(older.isEmpty && warnings.contains { $0.contains("older than the 30-day list window") }, "\(warnings)")
    }

    @Test func everyRunReadsTheSettleWindowAgain() throws {
        let everything: Set<Day> = Set((0..<400).map { Day("2026-01-01")!.adding(days: $0) })
        for (settle, expected) in [(2, ["2026-11-26", "2026-11-27", "2026-11-28"]), (0, ["2026-11-28"])] {
            let planner = JobPlanner(config: try Self.config(startDate: "2026-11-01", settleDays: settle))
            let jobs = planner.plan(
                PlanSelection(channels: ["a"], resources: [.calls, .messages, .recordings]), runID: "r",
                today: Day("2026-11-29")!, loadedDays: { _, _ in everything }
            ).jobs
            for resource in [Resource.calls, .messages, .recordings] {
                #expect(
                    jobs.filter { $0.resource == resource }.compactMap(\.day).map(\.description).sorted() == expected, "settle \(settle)")
            }
        }
    }

    @Test func theRunDayMeansTheSameForEveryChannel() throws {
        let planner = JobPlanner(config: try Self.config(settleDays: 3, lookback: 5))
        let today = Day("2026-11-29")!
        // --date 2026-11-10: Twilio the run day and its settle window, Singular the lookback ending at it.
        let dated = planner.plan(PlanSelection(runDay: Day("2026-11-10")), runID: "r", today: today)
        let days = { (channel: String, resource: Resource) in
            dated.jobs.filter { $0.channel == channel && $0.resource == resource }.compactMap(\.day).map(\.description).sorted()
        }
        #expect(days("a", .calls) == ["2026-11-07", "2026-11-08", "2026-11-09", "2026-11-10"])
        #expect(days("s", .campaigns) == ["2026-11-06", "2026-11-07", "2026-11-08", "2026-11-09", "2026-11-10"])
        #expect(days("s", .creatives) == days("s", .campaigns))
        #expect(dated.warnings.isEmpty)
        // --from/--to: exactly the range, for both.
        let range = [Day("2026-11-01")!, Day("2026-11-02")!]
        let exact = planner.plan(PlanSelection(days: range), runID: "r", today: today).jobs
        for channel in ["a", "b", "s"] {
            for resource in Resource.allCases where !resource.isSnapshot && resource.channelType == (channel == "s" ? .singular : .twilio) {
                #expect(
                    exact.filter { $0.channel == channel && $0.resource == resource }.compactMap(\.day) == range, "\(channel) \(resource)")
            }
        }
        // A run day that is not over yet is planned, with a warning.
        #expect(planner.plan(PlanSelection(runDay: today), runID: "r", today: today).warnings.contains { $0.contains("not over yet") })
    }

    @Test func aThousandChannelsPlanInterleaved() throws {
        var yaml = "channels:\n"
        for i in 0..<1000 { yaml += "  - {name: c\(i), type: twilio, api_user: AC\(i), api_key: k}\n" }
        yaml +=
            "s3: {access_key_id: k, secret_access_key: s, region: us-east-1, bucket: b}\ntargets: [{name: t, host: h, database: d, username: u}]\n"
        let planner = JobPlanner(config: try FleetConfig.parse(yaml, environment: [:]))
        let days = (0..<30).map { Day("2026-10-01")!.adding(days: $0) }  // the full year is timed by bench/run.sh plan
        let jobs = planner.plan(
            PlanSelection(days: days, resources: [.calls, .messages, .recordings, .incomingPhoneNumbers, .pricingPhoneNumbers]),
            runID: "r", today: Day("2026-11-29")!
        ).jobs
        #expect(jobs.count == 1000 * (3 * 30 + 2))
        #expect(jobs.prefix(1000).map(\.channel) == (0..<1000).map { "c\($0)" })  // interleaved
    }
}
