import Foundation
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet
import HuskimoTesting

@Suite struct PlannerTests {
    static func config(startDate: String? = nil) throws -> FleetConfig {
        try FleetConfig.parse("""
            fetch: {lookback: 30\(startDate.map { ", start_date: \($0)" } ?? "")}
            channels:
              - {name: a, type: twilio, api_user: AC1, api_key: k}
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
        // 2 Twilio channels × (3 day resources × 2 days + 2 snapshots) + 1 Singular channel × 2 resources × 2 days
        #expect(jobs.count == 2 * (3 * 2 + 2) + 2 * 2)
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
        let (jobs, _) = planner.plan(PlanSelection(channels: ["s"]), runID: "r", today: Day("2026-11-29")!,
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
        let (jobs, _) = planner.plan(PlanSelection(channels: ["a"], resources: [.calls]), runID: "r", today: Day("2026-11-29")!,
                                     loadedDays: { _, _ in loaded })
        #expect(jobs.compactMap(\.day).map(\.description).sorted() == [
            "2026-11-20", "2026-11-22", "2026-11-23", "2026-11-24", "2026-11-26", "2026-11-27", "2026-11-28",
        ])
        let old = JobPlanner(config: try Self.config(startDate: "2020-01-01"))
        let far = old.plan(PlanSelection(channels: ["a"], resources: [.calls]), runID: "r", today: Day("2026-11-29")!).jobs
        #expect(far.count == JobPlanner.twilioWindow)  // bounded by Twilio's 400-day list window
    }

    @Test func aThousandChannelsPlanInterleaved() throws {
        var yaml = "channels:\n"
        for i in 0..<1000 { yaml += "  - {name: c\(i), type: twilio, api_user: AC\(i), api_key: k}\n" }
        yaml += "s3: {access_key_id: k, secret_access_key: s, region: us-east-1, bucket: b}\ntargets: [{name: t, host: h, database: d, username: u}]\n"
        let planner = JobPlanner(config: try FleetConfig.parse(yaml, environment: [:]))
        let days = (0..<30).map { Day("2026-10-01")!.adding(days: $0) }  // the full year is timed by bench/run.sh plan
        let jobs = planner.plan(PlanSelection(days: days, resources: [.calls, .messages, .recordings, .incomingPhoneNumbers, .pricingPhoneNumbers]),
                                runID: "r", today: Day("2026-11-29")!).jobs
        #expect(jobs.count == 1000 * (3 * 30 + 2))
        #expect(jobs.prefix(1000).map(\.channel) == (0..<1000).map { "c\($0)" })  // interleaved
    }
}
