import Foundation
import HuskimoTesting
import SandboxKit
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

/// `huskimo-planner run`: the 0.3 cron habit (plan, extract and load in one process until the night's work is
/// done), with faults, a revoked channel and a Singular channel.
@Suite(.serialized, .ownThreads, .timeLimit(.minutes(5)))
struct RunCommandTests {
    static let days = [TestDays.day(20), TestDays.day(21)]

    @Test(arguments: ["postgres", "redshift"]) func oneProcessDoesTheNightAndExitsOneWhileJobsAreParked(target: String) throws {
        let fleet = try FleetHarness(
            accounts: [("us", SandboxAccount.defaults[0]), ("eu", SandboxAccount.defaults[1])],
            tokens: ["eu": "wrong-token-5r"], singular: [("spend", SandboxSingular.keys[1])], target: target)
        defer { fleet.cleanUp() }
        fleet.api.setFaults(SandboxFaults(rate: 0.05, latencyMs: 5))
        try fleet.applyDDL()
        let selection = [
            "--from", TestDays.text(20), "--to", TestDays.text(21), "--resource", "calls", "--resource", "recordings",
            "--resource", "campaigns", "--workers", "4",
        ]
        let (first, output) = try fleet.run("huskimo-planner", ["run", "--config", fleet.configPath] + selection, timeout: 180)
        #expect(first == 1, "parked jobs make the run exit 1: \(output.suffix(1500))")
        #expect(output.contains("run: 10 jobs planned; 6 extracted"), "\(output.suffix(1500))")
        #expect(output.contains("4 × permanent in eu"), "the run ends with status: \(output.suffix(1500))")
        try fleet.expectExact(days: Self.days, resources: [.calls, .recordings], channels: ["us"])
        #expect(try fleet.rows("twilio_calls", channel: "eu") == 0)
        let campaigns = Self.days.reduce(0) {
            $0 + SandboxSingular.records(key: SandboxSingular.keys[1], resource: "stats", day: $1.ordinal, revision: 0).count
        }
        #expect(try fleet.rows("singular_campaigns", channel: "spend") == campaigns)
        #expect(!output.contains("wrong-token-5r") && !output.contains(SandboxSingular.keys[1].key))

        // The token fixed and the parked jobs re-driven: the next run finishes them (and replaces, never
        // duplicates, what the first run loaded), then exits 0.
        fleet.accounts[1].token = SandboxAccount.defaults[1].token
        try fleet.writeConfig()
        let requeue = try fleet.run("huskimo-planner", ["requeue", "--config", fleet.configPath])
        #expect(requeue.0 == 0 && requeue.1.contains("requeued 4"))
        let (second, output2) = try fleet.run("huskimo-planner", ["run", "--config", fleet.configPath] + selection, timeout: 180)
        #expect(second == 0, "\(output2.suffix(1500))")
        #expect(output2.contains("FAILED: none"))
        try fleet.expectExact(days: Self.days, resources: [.calls, .recordings])
        #expect(try fleet.rows("singular_campaigns", channel: "spend") == 2 * campaigns, "Singular appends a second snapshot")
    }
}
