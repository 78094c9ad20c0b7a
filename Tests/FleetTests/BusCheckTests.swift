import Foundation
import HuskimoTesting
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

/// What travels on the bus is checked before it acts: each field of a load message that an attacker (or a wrong
/// clock) could set, the key layout, and message ids that always fit AMQP.
@Suite struct BusCheckTests {
    static let now = Date(timeIntervalSince1970: 1_764_979_200)  // 2025-12-06T00:00:00Z
    static func valid() throws -> (LoadMessageCheck, LoadMessage) {
        let config = try WorkerDecisionTests.config()
        let job = ExtractJob(
            runID: UTCTime.compact(now.addingTimeInterval(-60)), channel: "us", resource: .calls, day: Day("2025-12-05"), plannedAt: "p")
        return (
            LoadMessageCheck(config: config),
            LoadMessage.fixture(job: job, folder: config.s3.folderPath, rows: [3, 2], extractedAt: UTCTime.iso(now))
        )
    }

    @Test func aWorkersLoadMessagePasses() throws {
        let (check, load) = try Self.valid()
        try check.check(load, now: Self.now)
    }

    @Test(arguments: [
        ("table", "table pg_authid is not one Huskimo loads"), ("resource", "resource messages is not the resource"),
        ("channel", "channel mallory is not a twilio channel"), ("partition", "partition snapshot does not fit calls"),
        ("job_id", "job_id is not"), ("load_id", "load_id is not its job_id@extracted_at"),
        ("future run_id", "run_id 99991231T235959000Z is later"), ("bad run_id", "is not a run id"),
        ("future extracted_at", "is later than this loader's clock"), ("no objects", "objects is empty"),
        ("outside key", "objects[0].key elsewhere/x.tsv.gz is not an object of this extraction"),
        ("other channel's key", "objects[1].key"), ("another extraction's key", "objects[0].key"),
        ("twice", "objects[1].key is named twice"),
        ("negative rows", "rows -1"), ("digest", "sha256 is not 64 lowercase hex"), ("too many", "10001 objects"),
    ])
    func eachCraftedFieldIsRefusedByName(_ field: String, _ reason: String) throws {
        var (check, load) = try Self.valid()
        switch field {
        case "table": load.table = "pg_authid"
        case "resource": load.resource = "messages"
        case "channel": load.channel = "mallory"
        case "partition": load.partition = "snapshot"
        case "job_id": load.jobID = "twilio/eu/calls/2025-12-05"
        case "load_id": load.loadID = load.jobID + "@2020-01-01T00:00:00.000Z"
        case "future run_id": load.runID = "99991231T235959000Z"
        case "bad run_id": load.runID = "r1"
        case "future extracted_at":
            let later = UTCTime.iso(Self.now.addingTimeInterval(3600))
            let job = ExtractJob(runID: ExtractJob.fixtureRunID, channel: "us", resource: .calls, day: Day("2025-12-05"), plannedAt: "p")
            load = LoadMessage.fixture(job: job, folder: check.layout.folder, rows: [1], extractedAt: later)
        case "no objects": load.objects = []
        case "outside key": load.objects[0].key = "elsewhere/x.tsv.gz"
        case "other channel's key": load.objects[1].key = load.objects[1].key.replacingOccurrences(of: "/us/", with: "/eu/")
        case "another extraction's key":
            load.objects[0].key = load.objects[0].key.replacingOccurrences(of: "20251206T000000000Z", with: "20251205T000000000Z")
        case "twice": load.objects[1].key = load.objects[0].key
        case "negative rows": load.objects[0].rows = -1
        case "digest": load.objects[0].sha256 = "x"
        case "too many": load.objects = (0...10_000).map { _ in load.objects[0] }
        default: Issue.record("no case \(field)")
        }
        let error = #expect(throws: LoadError.self) { try check.check(load, now: Self.now) }
        #expect(error?.errorClass == .permanent)
        #expect(error?.message.contains(reason) == true, "\(field): \(error?.message ?? "")")
    }

    /// Swift's `==` matches any Unicode normalisation of a name; SQL, S3 and RabbitMQ compare bytes. A message whose
    /// channel is another spelling of a configured one (or carries a NUL, which libpq would cut the text at) is
    /// refused, so the value every later step sees is the one checked.
    @Test func aChannelMatchesByItsBytesOnly() throws {
        let config = try FleetConfig.parse(
            """
            channels: [{name: "caf\u{E9}", type: twilio, api_user: AC1, api_key: k}]
            s3: {access_key_id: k, secret_access_key: s, region: us-east-1, bucket: b}
            targets: [{name: wh, type: postgres, host: h, database: d, username: u}]
            """, environment: [:])
        let check = LoadMessageCheck(config: config)
        func load(_ channel: String) -> LoadMessage {
            let job = ExtractJob(
                runID: UTCTime.compact(Self.now.addingTimeInterval(-60)), channel: channel, resource: .calls, day: Day("2025-12-05"),
                plannedAt: "p")
            return LoadMessage.fixture(job: job, folder: config.s3.folderPath, rows: [1], extractedAt: UTCTime.iso(Self.now))
        }
        try check.check(load("caf\u{E9}"), now: Self.now)
        #expect("cafe\u{301}" == "caf\u{E9}", "Swift calls them equal")
        for spelling in ["cafe\u{301}", "caf\u{E9}\u{0}x", "caf\u{E9}\u{0}"] {
            let error = #expect(throws: LoadError.self) { try check.check(load(spelling), now: Self.now) }
            #expect(error?.message.contains("is not a twilio channel of this loader's configuration") == true, "\(error?.message ?? "")")
        }
        #expect(config.channel(named: "cafe\u{301}", type: .twilio) == nil)
    }

    @Test func objectKeysAreOnlyThoseOfTheirOwnExtraction() {
        let layout = StagingLayout(folder: "stage")
        let at = "2026-11-30T01:02:03.456Z"
        let prefix = layout.extractionPrefix(
            table: "twilio_calls", channel: "us", partition: "2026-11-29", extractedAt: at, nonce: 0xdead_beef)
        let key = layout.objectKey(prefix: prefix, index: 7)
        #expect(key == "stage/twilio_calls/us/2026-11-29/20261130T010203456Z-deadbeef-0007.tsv.gz")
        #expect(layout.isObjectKey(key, table: "twilio_calls", channel: "us", partition: "2026-11-29", extractedAt: at))
        for (bad, why) in [
            ("stage/twilio_calls/us/2026-11-29/../../../x", "a parent segment"),
            ("stage/twilio_calls/us/2026-11-29/20261130T010203456Z-deadbeef-0007.tsv.gz/x", "a longer key"),
            ("stage/twilio_calls/us/2026-11-29/20261130T010203456Z-DEADBEEF-0007.tsv.gz", "upper-case nonce"),
            ("stage/twilio_calls/us/2026-11-29/20261130T010203456Z-deadbeef-07.tsv.gz", "a short index"),
            ("stage/twilio_calls/us/2026-11-28/20261130T010203456Z-deadbeef-0007.tsv.gz", "another partition"),
            ("other/twilio_calls/us/2026-11-29/20261130T010203456Z-deadbeef-0007.tsv.gz", "another folder"),
        ] {
            #expect(!layout.isObjectKey(bad, table: "twilio_calls", channel: "us", partition: "2026-11-29", extractedAt: at), "\(why)")
        }
    }

    @Test func messageIDsAlwaysFitAMQP() {
        let short = AMQPMessage(exchange: "", routingKey: "q", body: [], messageID: "twilio/us/calls/2026-11-29")
        #expect(short.messageID == "twilio/us/calls/2026-11-29")
        for id in [String(repeating: "x", count: 1100), String(repeating: "é", count: 300), String(repeating: "😀", count: 100)] {
            let bounded = AMQPMessage(exchange: "", routingKey: "q", body: [], messageID: id).messageID ?? ""
            #expect(
                bounded.utf8.count <= 255 && bounded.hasPrefix(String(id.prefix(10))) && bounded.hasSuffix(Digest.sha256Hex(Array(id.utf8)))
            )
            #expect(
                bounded != AMQPMessage(exchange: "", routingKey: "q", body: [], messageID: id + "y").messageID, "distinct ids stay distinct"
            )
        }
    }

    @Test func timesParseBackExactlyAndRefuseOtherShapes() {
        let date = Date(timeIntervalSince1970: 1_764_979_323)
        #expect(UTCTime.date(compact: UTCTime.compact(date)) == date)
        #expect(UTCTime.date(iso: UTCTime.iso(date)) == date)
        for bad in ["r1", "99991231T235959000", "20261301T000000000Z", "2026113TT000000000Z", "20261130T250000000Z"] {
            #expect(UTCTime.date(compact: bad) == nil, "\(bad)")
        }
    }

    @Test func redshiftConflictsAreTransientOtherInternalErrorsPermanent() {
        #expect(PQError(sqlState: "XX000", "1023").errorClass == .transient)
        #expect(PQError(sqlState: "XX000", "could not complete because of conflict with concurrent transaction").errorClass == .transient)
        #expect(PQError(sqlState: "XX000", "Load into table 'twilio_calls' failed.  Check 'stl_load_errors'").errorClass == .permanent)
        #expect(PQError(sqlState: "23505", "1023 duplicate").errorClass == .permanent, "only XX000 carries Redshift's conflicts")
    }

    @Test func anAPIsErrorTextCannotForgeLogLinesOrDriveATerminal() {
        let body = Array(
            #"{"code": 20003, "message": "Authenticate\n2026-12-06T00:00:00Z info job succeeded \u001b[2J\u001b]0;owned\u0007"}"#.utf8)
        let error = APIClient.error(
            HTTPResponse(head: HTTPResponseHead(status: 401, headers: []), body: body), api: .twilio,
            request: HTTPRequest(url: "https://api.twilio.com/x"))
        #expect(!error.message.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }, "\(error.message.debugDescription)")
        #expect(error.message.hasPrefix("Authenticate 2026-12-06T00:00:00Z info job succeeded"))
        #expect(String(repeating: "x", count: 10_000).printable().count == 500)
        #expect("us\u{0}\u{85}x".printable() == "us  x", "NUL and C1 controls too")
    }

    @Test func twoRedshiftTargetsNeverShareAManifest() {
        let layout = StagingLayout(folder: "stage")
        let a = layout.manifestKey(loadID: "twilio/us/calls/2026-11-29@2026-11-30T00:00:00.000Z", target: "rs1")
        let b = layout.manifestKey(loadID: "twilio/us/calls/2026-11-29@2026-11-30T00:00:00.000Z", target: "rs2")
        #expect(a != b && a.hasPrefix("stage/_manifests/") && b.hasSuffix(".manifest"))
    }
}
