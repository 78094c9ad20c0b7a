import Foundation
import HuskimoTesting
import SandboxKit
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

/// Someone with the broker's credentials publishes crafted messages between two real nights: load messages naming keys
/// outside their extraction (elsewhere in the bucket, in another channel's prefix), an empty object list with a far-future
/// run_id, a 300-byte load id for an unknown table, 70,000 objects, and an extract job for a 300-byte unknown channel.
/// Every crafted message is parked with its reason, nothing they name is deleted, no partition changes on their account,
/// and the next real night (a reload of the attacked partition included) lands exactly.
@Suite(.serialized, .ownThreads, .timeLimit(.minutes(5)))
struct HostileBusTests {
    @Test func craftedMessagesAreParkedAndChangeNothing() throws {
        let fleet = try FleetHarness(accounts: [("us", SandboxAccount.defaults[0]), ("eu", SandboxAccount.defaults[1])])
        defer { fleet.cleanUp() }
        try fleet.applyDDL()
        let days = [TestDays.day(1), TestDays.day(2)]
        func night(_ label: String) throws {
            try fleet.plan(["--from", TestDays.text(1), "--to", TestDays.text(2), "--resource", "calls"])
            let worker = try fleet.worker("w-\(label).log", idle: 3)
            #expect(fleet.wait(worker) == 0, "worker \(label): \(fleet.log("w-\(label).log").suffix(2000))")
            let loader = try fleet.loader("l-\(label).log", idle: 4)
            #expect(fleet.wait(loader) == 0, "loader \(label): \(fleet.log("l-\(label).log").suffix(2000))")
        }
        try night("1")
        try fleet.expectExact(days: days, resources: [.calls])

        let config = try fleet.config
        let topology = FleetTopology(config)
        let s3 = S3Client(try TestServices.s3(bucket: fleet.id))
        let layout = StagingLayout(folder: config.s3.folderPath)
        // What an attacker would like deleted: an object outside the staging layout and one in another channel's prefix.
        let elsewhere = "elsewhere/precious.tsv.gz"
        let euPrefix = layout.extractionPrefix(
            table: "twilio_calls", channel: "eu", partition: TestDays.text(1), extractedAt: "\(TestDays.text(1))T00:00:00.000Z", nonce: 1)
        let euObject = layout.objectKey(prefix: euPrefix, index: 0)
        for key in [elsewhere, euObject] { try s3.put(key, Array("do not delete".utf8)) }

        let job = ExtractJob(runID: ExtractJob.fixtureRunID, channel: "us", resource: .calls, day: TestDays.day(1), plannedAt: "p")
        let stamp = UTCTime.iso(Date(timeIntervalSinceNow: 60))  // newer than night 1: only the checks stop these
        var outside = LoadMessage.fixture(job: job, folder: config.s3.folderPath, rows: [1], extractedAt: stamp)
        outside.objects[0].key = elsewhere
        var otherChannel = LoadMessage.fixture(job: job, folder: config.s3.folderPath, rows: [1], extractedAt: stamp)
        otherChannel.objects[0].key = euObject
        var empty = LoadMessage.fixture(job: job, folder: config.s3.folderPath, rows: [], extractedAt: stamp)
        empty.runID = "99991231T235959000Z"
        var unknownTable = LoadMessage.fixture(job: job, folder: config.s3.folderPath, rows: [1], extractedAt: stamp)
        unknownTable.table = "pg_authid"
        unknownTable.loadID = String(repeating: "x", count: 300)
        let many = LoadMessage.fixture(job: job, folder: config.s3.folderPath, rows: Array(repeating: 1, count: 70_000), extractedAt: stamp)
        let crafted = [
            ("outside", outside, "is not an object of this extraction"),
            ("other-channel", otherChannel, "is not an object of this extraction"),
            ("empty", empty, "run_id 99991231T235959000Z is later"),
            ("unknown-table", unknownTable, "table pg_authid is not one Huskimo loads"),
            ("many", many, "70000 objects"),
        ]
        let client = QueueClient(url: try TestServices.amqpURL(), retryWindow: 5, logger: TestServices.logger)
        defer { client.close() }
        for (_, load, _) in crafted {
            try client.publishBlocking(
                AMQPMessage(
                    exchange: topology.exchange, routingKey: topology.loadQueue("local"), body: MessageCodec.encode(load),
                    messageID: load.loadID))
        }
        let stranger = ExtractJob(
            runID: ExtractJob.fixtureRunID, channel: String(repeating: "c", count: 300), resource: .calls, day: TestDays.day(1),
            plannedAt: "p")
        try client.publishBlocking(
            AMQPMessage(
                exchange: topology.exchange, routingKey: topology.extractQueue, body: MessageCodec.encode(stranger),
                messageID: stranger.jobID))
        let before = try Ledger(schema: fleet.id).loadedDays(
            table: "twilio_calls", channel: "us", PostgresConnection(try TestServices.postgres()))

        // The next real night runs through them: the crafted messages are parked, the valid loads commit.
        let started = Date()
        try night("2")
        #expect(-started.timeIntervalSinceNow < 60, "the valid night took \(Int(-started.timeIntervalSinceNow)) s")
        try fleet.expectExact(days: days, resources: [.calls])
        #expect(
            try Ledger(schema: fleet.id).loadedDays(table: "twilio_calls", channel: "us", PostgresConnection(try TestServices.postgres()))
                == before)
        // The attacked partition was reloaded by the real night: its newest extraction is night 2's, not a crafted one.
        let pg = try PostgresConnection(try TestServices.postgres())
        let newest = try pg.query(
            "SELECT max(load_id) FROM \(fleet.id).load_ledger WHERE table_name = 'twilio_calls' AND channel_name = 'us' AND partition_key = '\(TestDays.text(1))'"
        )
        let newestID = newest.first?.first ?? nil
        #expect(newestID?.hasPrefix("twilio/us/calls/\(TestDays.text(1))@") == true && newestID != job.jobID + "@" + stamp)
        #expect(
            try pg.query(
                "SELECT count(DISTINCT load_id) FROM \(fleet.id).load_ledger WHERE channel_name = 'us' AND partition_key = '\(TestDays.text(1))'"
            )[
                0][0] == "2")

        var parked: [String] = []
        try client.drainBlocking(topology.failedLoadQueue("local")) { delivery in
            parked.append(ParkedHeaders(delivery.headers).message)
            return .keep
        }
        for (name, _, reason) in crafted {
            #expect(parked.contains { $0.contains(reason) }, "\(name) parked with \"\(reason)\": \(parked.map { $0.prefix(200) })")
        }
        #expect(parked.count == crafted.count, "only the crafted loads are parked: \(parked.map { $0.prefix(120) })")
        var jobs: [ParkedHeaders] = []
        try client.drainBlocking(topology.failedQueue) { delivery in
            jobs.append(ParkedHeaders(delivery.headers))
            return .keep
        }
        #expect(
            jobs.count == 1 && jobs.first?.message.contains("channel named") == true && jobs.first?.id == stranger.jobID,
            "the 300-byte unknown channel is parked, its full id in the headers: \(jobs.map(\.message))")
        for key in [elsewhere, euObject] {
            #expect(try s3.list(prefix: key).count == 1, "\(key) is not the loader's to delete")
        }
    }
}
