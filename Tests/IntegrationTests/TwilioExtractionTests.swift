import Foundation
import HuskimoTesting
import Logging
import SandboxKit
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

/// The extractor against the sandbox over real HTTP, staging into the S3 server, reading the staged objects back.
@Suite(.serialized, .timeLimit(.minutes(5)))
final class TwilioExtractionTests {
    let api = SandboxAPI()
    let server: HTTPServer
    let port: Int
    let s3: S3Client
    let limiters = AccountLimiters(initial: 4, maximum: 16)

    init() throws {
        server = HTTPServer { [api] in api.handle($0) }
        port = try server.start()
        s3 = S3Client(try TestServices.s3(bucket: TestServices.unique("huskimo-extract")))
        try s3.createBucket()
    }

    deinit { server.stop() }

    func channel(_ account: SandboxAccount, name: String? = nil, token: String? = nil, subaccounts: Bool = false) throws -> ChannelConfig {
        let yaml = """
            channels:
              - name: \(name ?? "chan-\(account.sid.suffix(2))")
                type: twilio
                api_user: \(account.sid)
                api_key: \(token ?? account.token)
                api_url: http://127.0.0.1:\(port)
                pricing_url: http://127.0.0.1:\(port)/
                subaccounts: \(subaccounts)
            s3: {access_key_id: k, secret_access_key: s, region: us-east-1, bucket: b}
            targets: [{name: t, host: h, database: d, username: u}]
            """
        return try FleetConfig.parse(yaml, environment: [:]).channels[0]
    }

    func extractor(_ channel: ChannelConfig, maxObjectBytes: Int = 64 << 20, pageSize: Int = 1000) -> TwilioExtractor {
        let client = APIClient(http: HTTPClient(), limiters: limiters, backoff: Backoff(base: 0.02, max: 0.5), logger: TestServices.logger)
        return TwilioExtractor(
            channel: channel, client: client, s3: s3, folder: "staging/run", maxObjectBytes: maxObjectBytes,
            pageSize: pageSize)
    }

    func stagedRows(_ load: LoadMessage) throws -> [[String?]] {
        var rows: [[String?]] = []
        for object in load.objects {
            let bytes = try s3.get(object.key)
            #expect(bytes.count == object.bytes)
            #expect(Digest.sha256Hex(bytes) == object.sha256)
            let part = TSVReader.rows(try GzipReader.decompress(bytes))
            #expect(part.count == object.rows)
            rows += part
        }
        return rows
    }

    static let days = [Day("2026-11-20")!, Day("2026-11-21")!]

    @Test func everyResourceMatchesTheSandboxExactlyWithFaultsAndAConcurrencyLimit() async throws {
        // 30 ms per request makes the six concurrent jobs overlap, so the limit of 2 per account is really hit.
        api.setFaults(SandboxFaults(rate: 0.05, latencyMs: 30, concurrencyLimit: 2))
        defer { api.setFaults(SandboxFaults()) }
        let accounts = [SandboxAccount.defaults[0], SandboxAccount.defaults[1], SandboxAccount.defaults[2]]
        var jobs: [(SandboxAccount, ExtractJob)] = []
        for account in accounts {
            for resource in [Resource.calls, .messages, .recordings] {
                for day in Self.days {
                    jobs.append((account, ExtractJob(runID: "r", channel: "c", resource: resource, day: day, plannedAt: "")))
                }
            }
            jobs.append((account, ExtractJob(runID: "r", channel: "c", resource: .incomingPhoneNumbers, day: nil, plannedAt: "")))
        }
        // Run them 6 at a time, as a worker with --concurrency 6 would (the sandbox allows 2 per account).
        let results = try await withThrowingTaskGroup(of: (SandboxAccount, ExtractJob, ExtractReport).self) { group in
            var reports: [(SandboxAccount, ExtractJob, ExtractReport)] = []
            var index = 0
            func add() throws {
                let (account, job) = jobs[index]
                let extractor = self.extractor(try channel(account), pageSize: 50)  // small pages: many requests
                group.addTask { (account, job, try await Blocking.run { try extractor.extract(job) }) }
                index += 1
            }
            for _ in 0..<min(6, jobs.count) { try add() }
            while let result = try await group.next() {
                reports.append(result)
                if index < jobs.count { try add() }
            }
            return reports
        }
        #expect(results.count == jobs.count)
        var retries = 0
        for (account, job, report) in results {
            let rows = try stagedRows(report.load)
            let expected = SandboxAPI.expected(account, job.resource.rawValue, day: job.day)
            #expect(rows.count == expected.count, "\(job.jobID) \(account.sid)")
            #expect(SandboxAPI.checksum(rows.map { $0[2]! }.sorted()) == expected.checksum, "\(job.jobID)")
            #expect(rows.allSatisfy { $0[0] == "chan-\(account.sid.suffix(2))" && $0[3] == account.sid })
            #expect(report.load.partition == job.partition)
            retries += report.tally.retries
        }
        let stats = api.currentStats
        #expect(stats.faults > 0 && retries > 0, "faults were injected and retried")
        #expect(stats.throttled > 0, "the concurrency limit was hit")
    }

    @Test func hardTextSurvivesTheStagedFileAndAPostgresCopyByteForByte() async throws {
        let account = SandboxAccount.defaults[0]
        let day = Self.days[0]
        let job = ExtractJob(runID: "r", channel: "c", resource: .calls, day: day, plannedAt: "")
        var named = try channel(account)
        named.name = "tab\there 😀"
        let report = try extractor(named).extract(job)
        let pg = try PostgresConnection(try TestServices.postgres())
        let table = "calls_\(UInt32.random(in: 0...UInt32.max))"
        let columns = TwilioTable.calls.columnNames.map { "\"\($0)\" text" }.joined(separator: ", ")
        try pg.execute("CREATE TABLE \(table) (\(columns))")
        defer { try? pg.execute("DROP TABLE \(table)") }
        for object in report.load.objects {
            let bytes = try GzipReader.decompress(try s3.get(object.key))
            try pg.copyIn("COPY \(table) FROM STDIN WITH (FORMAT text)") { write in try bytes.withUnsafeBytes { try write($0) } }
        }
        let rows = try pg.query("SELECT sid, caller_name, channel_name, end_time, forwarded_from FROM \(table)")
        let records = SandboxData.records(account, "calls", day: day.ordinal)
        #expect(rows.count == records.count)
        let byID = Dictionary(uniqueKeysWithValues: rows.map { ($0[0]!, $0) })
        var hardSeen = Set<String?>()
        for record in records {
            let object = try JSONSerialization.jsonObject(with: Data(record.json)) as! [String: Any]
            let expectedName = object["caller_name"] as? String
            let row = try #require(byID[record.sid])
            #expect(row[1] == expectedName, "caller_name of \(record.sid)")
            #expect(row[2] == "tab\there 😀")
            #expect(row[3] == nil || object["end_time"] is String)
            hardSeen.insert(expectedName)
        }
        #expect(hardSeen.count >= 10, "the day covers most hard cases")
    }

    @Test func pricingPagesThroughEveryCountry() throws {
        var extractor = extractor(try channel(SandboxAccount.defaults[1]))
        extractor.pricingPageSize = 25  // 80 countries: 4 pages
        let report = try extractor.extract(ExtractJob(runID: "r", channel: "c", resource: .pricingPhoneNumbers, day: nil, plannedAt: ""))
        let rows = try stagedRows(report.load)
        let expected = SandboxAPI.expected(SandboxAccount.defaults[1], "pricing_phone_numbers", day: nil)
        #expect(rows.count == expected.count)
        #expect(SandboxAPI.checksum(rows.map { "\($0[3]!)|\($0[5]!)" }.sorted()) == expected.checksum)
        #expect(rows.contains { $0[2] == "South Georgia and the South Sandwich Islands" })  // 44 characters: 0.3's varchar(34) broke
        #expect(SandboxData.countries.contains { SandboxData.prices(iso: $0.iso).isEmpty }, "the data has countries without prices")
        #expect(rows.contains { $0[2] == "Côte d'Ivoire" })
        #expect(rows.allSatisfy { $0.count == 8 && $0[4] == "USD" })
        #expect(report.load.partition == "snapshot")
    }

    @Test func aSubaccountRunExtractsEveryAccountTaggedWithItsOwnSID() throws {
        let parent = SandboxAccount.defaults[0]
        let day = Self.days[1]
        let report = try extractor(try channel(parent, subaccounts: true))
            .extract(ExtractJob(runID: "r", channel: "c", resource: .messages, day: day, plannedAt: ""))
        let subs = SandboxAccount.defaults.filter { $0.parent == parent.sid }
        #expect(Set(report.accounts) == Set([parent.sid] + subs.map(\.sid)))
        let rows = try stagedRows(report.load)
        for account in [parent] + subs {
            let expected = SandboxAPI.expected(account, "messages", day: day)
            let mine = rows.filter { $0[3] == account.sid }
            #expect(mine.count == expected.count, "\(account.sid)")
            #expect(SandboxAPI.checksum(mine.map { $0[2]! }.sorted()) == expected.checksum)
        }
    }

    /// An API key instead of the auth token: it logs in while the URLs keep the Account SID (the sandbox answers 404
    /// to a key SID in the path and refuses a key of another account); a wrong secret is a permanent 401; a Standard key
    /// cannot list subaccounts, and says so.
    @Test func anAPIKeyChannelExtractsWithoutTheAuthToken() throws {
        let account = SandboxAccount.defaults[0], other = SandboxAccount.defaults[1]
        func keyed(sid: String, secret: String, subaccounts: Bool = false) throws -> ChannelConfig {
            try FleetConfig.parse(
                """
                channels:
                  - {name: keyed, type: twilio, api_user: \(account.sid), api_key_sid: \(sid), api_key_secret: \(secret), api_url: "http://127.0.0.1:\(port)", pricing_url: "http://127.0.0.1:\(port)", subaccounts: \(subaccounts)}
                s3: {access_key_id: k, secret_access_key: s, region: us-east-1, bucket: b}
                targets: [{name: t, host: h, database: d, username: u}]
                """, environment: [:]
            ).channels[0]
        }
        let job = ExtractJob(runID: "r", channel: "keyed", resource: .calls, day: Self.days[0], plannedAt: "")
        let channel = try keyed(sid: account.apiKeySID, secret: account.apiKeySecret)
        #expect(channel.apiKey.isEmpty && channel.twilioLogin.user == account.apiKeySID)
        let report = try extractor(channel).extract(job)
        #expect(try stagedRows(report.load).count == SandboxAPI.expected(account, "calls", day: Self.days[0]).count)
        #expect(report.records > 0)
        for (sid, secret, subaccounts, expected) in [
            (account.apiKeySID, "wrong-secret", false, "Authenticate"),
            (other.apiKeySID, other.apiKeySecret, false, "not found"),
            (account.apiKeySID, account.apiKeySecret, true, "Authenticate"),
        ] {
            let error = #expect(throws: JobError.self) {
                try self.extractor(try keyed(sid: sid, secret: secret, subaccounts: subaccounts)).extract(job)
            }
            #expect(
                error?.errorClass == .permanent && error?.message.lowercased().contains(expected.lowercased()) == true,
                "\(error?.message ?? "")")
            #expect(error?.message.contains(secret) == false, "the secret is never in an error")
        }
    }

    @Test func anEmptyDayIsAValidEmptyLoad() throws {
        let account = SandboxAccount.defaults[2]
        let ordinal = try #require(
            (Day("2026-01-01")!.ordinal..<Day("2026-12-31")!.ordinal).first {
                SandboxData.count(account, "recordings", $0) == 0
            })
        let job = ExtractJob(runID: "r", channel: "c", resource: .recordings, day: Day(ordinal: ordinal), plannedAt: "")
        let report = try extractor(try channel(account)).extract(job)
        #expect(report.records == 0)
        #expect(report.load.objects.count == 1)
        #expect(report.load.rows == 0)
        #expect(try stagedRows(report.load).isEmpty)
    }

    @Test func largeDaysSplitIntoSeveralObjectsOfOneLoad() throws {
        let account = try #require(SandboxAccount.defaults.first { $0.friendlyName == "Bulk" })
        let report = try extractor(try channel(account), maxObjectBytes: 64 << 10)
            .extract(ExtractJob(runID: "r", channel: "c", resource: .calls, day: Self.days[0], plannedAt: ""))
        #expect(report.load.objects.count > 2)
        #expect(report.load.objects.dropLast().allSatisfy { $0.bytes >= 64 << 10 })
        let rows = try stagedRows(report.load)
        let expected = SandboxAPI.expected(account, "calls", day: Self.days[0])
        #expect(rows.count == expected.count)
        #expect(SandboxAPI.checksum(rows.map { $0[2]! }.sorted()) == expected.checksum)
    }

    @Test func aRevokedTokenFailsPermanentlyWithTwiliosCodeAndNoSecret() throws {
        let account = SandboxAccount.defaults[1]
        let job = ExtractJob(runID: "r", channel: "acme-eu", resource: .calls, day: Self.days[0], plannedAt: "")
        let error = #expect(throws: JobError.self) {
            try self.extractor(try self.channel(account, name: "acme-eu", token: "revoked-secret-token")).extract(job)
        }
        #expect(error?.errorClass == .permanent)
        #expect(error?.description.contains("twilio/acme-eu/calls/2026-11-20") == true)
        #expect(error?.description.contains("20003") == true)
        #expect(error?.description.contains("revoked-secret-token") == false)
        let listed = try s3.list(prefix: "staging/run/twilio_calls/acme-eu/")
        #expect(listed.isEmpty, "nothing staged for a failed job")
    }
}
