import Foundation
import HuskimoTesting
import SandboxKit
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

/// The fleet on the three-node RabbitMQ 4 cluster with quorum queues, a real night running (three accounts × two days
/// × three resources, two workers, an active and a standby loader) while a node dies or hangs: each ends with every
/// partition exact, nothing twice, nothing parked and every queue empty, and the killed node back in the cluster.
/// Each prints its recovery time: from the fault to the next job finished.
@Suite(.serialized, .ownThreads, .timeLimit(.minutes(8)))
final class ClusterFaultTests {
    static let days = [TestDays.day(20), TestDays.day(21)]
    static let range = [
        "--from", TestDays.text(20), "--to", TestDays.text(21), "--resource", "calls", "--resource", "messages", "--resource", "recordings",
    ]

    enum Fault: String, CaseIterable, CustomTestStringConvertible {
        case killNodeLeadingNeither, killExtractLeader, killLoadLeader, freezeNode
        var testDescription: String { rawValue }
    }

    static var managementURLs: [String] {
        (TestServices.env["RABBITMQ_MGMT_URLS"] ?? "").split(separator: ",").map(String.init)
    }

    static func requireCluster() throws {
        try #require(
            managementURLs.count == 3,
            "these tests need the stack's three-node cluster (HUSKIMO_RABBITMQ_NODES=3, the default); got \(managementURLs)")
    }

    /// Node number (1–3) of a node name (`huskimo@localhost` is 1, `huskimoN@localhost` is N).
    static func number(_ node: String) -> Int {
        let name = node.split(separator: "@").first.map(String.init) ?? ""
        return Int(name.dropFirst("huskimo".count)) ?? 1
    }

    static func management() throws -> ManagementAPI {
        ManagementAPI(baseURLs: managementURLs, amqp: try TestServices.amqpURL())
    }

    func jobsDone(_ fleet: FleetHarness) -> Int {
        ["a.log", "b.log"].reduce(0) { $0 + fleet.log($1).components(separatedBy: "job succeeded").count - 1 }
    }

    /// Waits until the next job finishes after `before` were done; returns the seconds from `since`.
    func recovery(_ fleet: FleetHarness, after before: Int, since: Date, timeout: Double = 120) -> Double? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if jobsDone(fleet) > before { return -since.timeIntervalSinceNow }
            usleep(100_000)
        }
        return nil
    }

    @Test(arguments: Fault.allCases) func aNightSurvives(_ fault: Fault) throws {
        try Self.requireCluster()
        let fleet = try FleetHarness(accounts: FleetIntegrationTests.threeChannels())
        defer { fleet.cleanUp() }
        fleet.managementURL = "[" + Self.managementURLs.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
        try fleet.writeConfig()
        fleet.api.setFaults(SandboxFaults(latencyMs: 250))
        try fleet.applyDDL()
        try fleet.plan(Self.range)
        let topology = FleetTopology(try fleet.config.queue, targets: ["local"])
        let a = try fleet.worker("a.log", concurrency: 2, idle: 25), b = try fleet.worker("b.log", concurrency: 2, idle: 25)
        let active = try fleet.loader("l1.log", idle: 30), standby = try fleet.loader("l2.log", idle: 30)
        // Into the night: a few jobs done, more running.
        let started = Date().addingTimeInterval(60)
        while jobsDone(fleet) < 3, Date() < started { usleep(100_000) }
        let management = try Self.management()
        let extractLeader = Self.number(try management.queue(topology.extractQueue).leader ?? "")
        let loadLeader = Self.number(try management.queue(topology.loadQueue("local")).leader ?? "")
        let victim: Int
        switch fault {
        case .killNodeLeadingNeither, .freezeNode:
            victim = (1...3).first { $0 != extractLeader && $0 != loadLeader } ?? (extractLeader % 3 + 1)
        case .killExtractLeader: victim = extractLeader
        case .killLoadLeader: victim = loadLeader
        }
        let before = jobsDone(fleet), at = Date()
        if fault == .freezeNode {
            try TestServices.stack("freeze-node", String(victim))
        } else {
            try TestServices.stack("kill-node", String(victim))
        }
        let recovered = recovery(fleet, after: before, since: at)
        if fault == .freezeNode {
            // Frozen for longer than two heartbeats (10 s each): its clients give it up and move on; then it resumes.
            Thread.sleep(forTimeInterval: max(0, 30 + at.timeIntervalSinceNow))
            try TestServices.stack("thaw-node", String(victim))
        }
        for pid in [a, b, active, standby] { #expect(fleet.wait(pid, timeout: 240) == 0) }
        let night = -at.timeIntervalSinceNow
        print(
            "[cluster] \(fault.rawValue): node \(victim) (extract leader \(extractLeader), load leader \(loadLeader)); next job "
                + "done \(recovered.map { String(format: "%.1f s", $0) } ?? "never") after the fault, \(before) of 18 done before it, "
                + String(format: "the night over %.1f s after it", night))
        #expect(recovered != nil, "a job finished after the fault")
        if fault != .freezeNode { try TestServices.stack("start-node", String(victim)) }
        try fleet.expectExact(days: Self.days)
        let (code, output) = try fleet.run("huskimo-planner", ["status", "--config", fleet.configPath, "--json"])
        #expect(code == 0, "nothing parked: \(output.suffix(800))")
        let json = try #require(output.firstIndex(of: "{").map { String(output[$0...]) })
        let status = try JSONDecoder().decode(FleetStatus.self, from: Data(json.utf8))
        #expect(status.queues.allSatisfy { $0.ready == 0 }, "every queue empty: \(status.queues.map { ($0.name, $0.ready) })")
        #expect(status.nodes.count == 3 && status.nodes.allSatisfy(\.running), "the cluster whole again: \(status.nodes)")
    }

    /// The active loader SIGKILLed mid-night: the standby takes the load queue over (single active consumer); a worker
    /// sent SIGTERM leaves within 45 s, handing back what it had not started, and the other worker finishes the night.
    @Test func theStandbyLoaderTakesOverAndAStoppedWorkerLeavesInTime() throws {
        try Self.requireCluster()
        let fleet = try FleetHarness(accounts: FleetIntegrationTests.threeChannels())
        defer { fleet.cleanUp() }
        fleet.api.setFaults(SandboxFaults(latencyMs: 250))
        try fleet.applyDDL()
        try fleet.plan(Self.range)
        let a = try fleet.worker("a.log", concurrency: 2, idle: 25), b = try fleet.worker("b.log", concurrency: 2, idle: 25)
        let active = try fleet.loader("l1.log", idle: 30)
        usleep(500_000)  // the first loader to subscribe is the active one
        let standby = try fleet.loader("l2.log", idle: 30)
        let started = Date().addingTimeInterval(60)
        while jobsDone(fleet) < 3, Date() < started { usleep(100_000) }
        kill(active, SIGKILL)
        #expect(fleet.wait(active, timeout: 10) == 128 + SIGKILL)
        let stopping = Date()
        kill(b, SIGTERM)
        #expect(fleet.wait(b, timeout: 60) == 0)
        let left = -stopping.timeIntervalSinceNow
        print(String(format: "[cluster] a worker left %.1f s after SIGTERM", left))
        #expect(left < 45, "left within 45 s of SIGTERM: \(left) s")
        for pid in [a, standby] { #expect(fleet.wait(pid, timeout: 240) == 0) }
        try fleet.expectExact(days: Self.days)
        #expect(fleet.log("l2.log").contains("loaded"), "the standby loaded after the active one died")
        let (code, output) = try fleet.run("huskimo-planner", ["status", "--config", fleet.configPath])
        #expect(code == 0, "nothing parked: \(output.suffix(800))")
    }

    /// Planning, working and loading while one node is down (the processes' node lists skip it), then the node back.
    @Test func planningWorksWhileANodeIsDown() throws {
        try Self.requireCluster()
        let fleet = try FleetHarness(accounts: FleetIntegrationTests.threeChannels())
        defer { fleet.cleanUp() }
        fleet.managementURL = "[" + Self.managementURLs.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
        try fleet.writeConfig()
        try fleet.applyDDL()
        try TestServices.stack("kill-node", "2")
        defer { try? TestServices.stack("start-node", "2") }
        // Every process starts at its own node: several plans so that some start at the dead one.
        for _ in 0..<3 { try fleet.plan(Self.range) }
        let (code, output) = try fleet.run("huskimo-planner", ["status", "--config", fleet.configPath])
        #expect(code == 0 && output.contains("DOWN") && output.contains("redundancy lost"), "status names the lost node: \(output)")
        let a = try fleet.worker("a.log", concurrency: 2), b = try fleet.worker("b.log", concurrency: 2)
        let loader = try fleet.loader()
        for pid in [a, b, loader] { #expect(fleet.wait(pid, timeout: 180) == 0) }
        try fleet.expectExact(days: Self.days)
        try TestServices.stack("start-node", "2")
        let (after, text) = try fleet.run("huskimo-planner", ["status", "--config", fleet.configPath])
        #expect(after == 0 && !text.contains("DOWN"), "\(text)")
    }
}
