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

    func channel(
        _ account: SandboxAccount, name: String? = nil, token: String? = nil, subaccounts: Bool = false, extra: String = ""
    ) throws -> ChannelConfig {
        let yaml = """
            channels:
              - name: \(name ?? "chan-\(account.sid.suffix(2))")
                type: twilio
                api_user: \(account.sid)
                api_key: \(token ?? account.token)
                api_url: http://127.0.0.1:\(port)
                pricing_url: http://127.0.0.1:\(port)/
                subaccounts: \(subaccounts)
            \(extra)
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

    static let days = [TestDays.day(20), TestDays.day(21)]

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
        let subs = SandboxAccount.defaults.filter { $0.parent == parent.sid && $0.status == "active" }  // by default
        #expect(Set(report.accounts) == Set([parent.sid] + subs.map(\.sid)))
        let rows = try stagedRows(report.load)
        for account in [parent] + subs {
            let expected = SandboxAPI.expected(account, "messages", day: day)
            let mine = rows.filter { $0[3] == account.sid }
            #expect(mine.count == expected.count, "\(account.sid)")
            #expect(SandboxAPI.checksum(mine.map { $0[2]! }.sorted()) == expected.checksum)
        }
    }

    /// Voice and messaging prices, exact row for row over every country and page: one row per outbound prefix entry
    /// (its prefixes comma-joined) and inbound call price; per outbound carrier × number type and inbound SMS price; the
    /// all-null record of a country where nothing can be bought left out.
    @Test(arguments: [("voice", Resource.pricingVoice), ("messaging", Resource.pricingMessaging)])
    func voiceAndMessagingPricesAreExact(product: String, resource: Resource) throws {
        var extractor = extractor(try channel(SandboxAccount.defaults[1]))
        extractor.pricingPageSize = 25
        let report = try extractor.extract(ExtractJob(runID: "r", channel: "c", resource: resource, day: nil, plannedAt: ""))
        let rows = try stagedRows(report.load)
        func key(_ row: [String?]) -> String { row.map { $0 ?? "\u{0}NULL" }.joined(separator: "\u{1}") }
        let expected = SandboxPricing.expectedRows(product)
        #expect(rows.count == expected.count && rows.count > 100)
        #expect(rows.map { key(Array($0.dropFirst(2))) }.sorted() == expected.map(key).sorted())
        #expect(rows.allSatisfy { $0[4] == "outbound" || $0[4] == "inbound" })
        #expect(report.load.partition == "snapshot" && report.records == rows.count)
        // Some countries answered the all-null record and have no row; the US voice entry carries 300 prefixes.
        let isos = Set(rows.map { $0[3] ?? "" })
        #expect(SandboxData.countries.contains { !isos.contains($0.iso) })
        if product == "voice" { #expect(rows.contains { ($0[5]?.split(separator: ",").count ?? 0) == 300 }) }
        if product == "messaging" { #expect(rows.contains { $0[5] == "中国移动" } && rows.contains { $0[5] == "AT&T" }) }
    }

    /// Subaccount selection: include and exclude by exact SID or by a case-sensitive glob on the friendly name, exclude
    /// winning; suspended subaccounts only when `status` asks; each selected one extracted as its own account.
    @Test(arguments: [
        ("include: [\"Acme US s*\"]", ["Acme US support", "Acme US sales"]),
        ("include: [\"Acme US s*\"]\n    exclude: [\(SandboxAccount.sid(0x12))]", ["Acme US support"]),
        ("include: [\"acme us s*\"]", []),
        ("status: [active, suspended]\n    exclude: [\"*sales\"]", ["Acme US support", "Acme US archive"]),
        ("status: suspended", ["Acme US archive"]),
    ])
    func subaccountsAreSelectedByIncludeExcludeAndStatus(_ selection: String, _ names: [String]) throws {
        let parent = SandboxAccount.defaults[0]
        let day = Self.days[1]
        let channel = try channel(parent, subaccounts: true, extra: "    " + selection)
        let report = try extractor(channel).extract(ExtractJob(runID: "r", channel: "c", resource: .messages, day: day, plannedAt: ""))
        let chosen = SandboxAccount.defaults.filter { $0.parent == parent.sid && names.contains($0.friendlyName) }
        #expect(chosen.count == names.count)
        #expect(
            report.accounts == [parent.sid]
                + chosen.map(\.sid).sorted { a, b in
                    SandboxAccount.defaults.firstIndex { $0.sid == a }! < SandboxAccount.defaults.firstIndex { $0.sid == b }!
                })
        let rows = try stagedRows(report.load)
        for account in [parent] + chosen {
            #expect(
                rows.filter { $0[3] == account.sid }.count == SandboxAPI.expected(account, "messages", day: day).count,
                "\(account.friendlyName)")
        }
        #expect(Set(rows.map { $0[3] ?? "" }).isSubset(of: Set(report.accounts)))
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
        #expect(channel.apiKey.isEmpty)
        if case .basic(let user, _) = channel.twilioAuth(APIClient(http: HTTPClient(), limiters: limiters, logger: TestServices.logger)) {
            #expect(user == account.apiKeySID)
        } else {
            Issue.record("an API key logs in with Basic auth")
        }
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

    /// OAuth client credentials: a Bearer token from `{oauth_url}/v2/token`, renewed before it expires, across more than
    /// three token lifetimes without one request refused for an expired token; tokens the API stops honouring are
    /// renewed once and the job goes on; a wrong client secret is a permanent error naming neither secret nor token.
    @Test func anOAuthChannelRenewsItsTokenBeforeItExpires() throws {
        let account = SandboxAccount.defaults[0]
        api.setFaults(SandboxFaults(latencyMs: 20, oauthTokenSeconds: 1.5))
        func oauth(secret: String) throws -> ChannelConfig {
            try FleetConfig.parse(
                """
                channels:
                  - {name: oauth, type: twilio, api_user: \(account.sid), oauth_client_id: \(account.oauthClientID), oauth_client_secret: \(secret), oauth_url: "http://127.0.0.1:\(port)", api_url: "http://127.0.0.1:\(port)", pricing_url: "http://127.0.0.1:\(port)"}
                s3: {access_key_id: k, secret_access_key: s, region: us-east-1, bucket: b}
                targets: [{name: t, host: h, database: d, username: u}]
                """, environment: [:]
            ).channels[0]
        }
        let channel = try oauth(secret: account.oauthClientSecret)
        #expect(channel.apiKey.isEmpty && channel.twilioOAuth?.id == account.oauthClientID)
        func job(_ n: Int) -> ExtractJob {
            ExtractJob(runID: "r", channel: "oauth", resource: .messages, day: Self.days[n % Self.days.count], plannedAt: "")
        }
        func exact(_ report: ExtractReport, _ n: Int) throws {
            let expected = SandboxAPI.expected(account, "messages", day: Self.days[n % Self.days.count])
            let rows = try stagedRows(report.load)
            #expect(rows.count == expected.count && SandboxAPI.checksum(rows.map { $0[2]! }.sorted()) == expected.checksum)
        }
        let started = Date()
        var n = 0
        while Date().timeIntervalSince(started) < 5 {  // more than three lifetimes of 1.5 s
            try exact(try extractor(channel, pageSize: 20).extract(job(n)), n)
            n += 1
        }
        var stats = api.currentStats
        #expect(stats.oauthTokensIssued >= 3, "renewed as it went: \(stats.oauthTokensIssued) tokens")
        #expect(stats.oauthExpiredRefused == 0, "no request carried an expired token")
        #expect(stats.requests > 3 * stats.oauthTokensIssued, "each token served several requests")

        // Tokens the API stops honouring (a rotated client): one 401, one renewal, and the job goes on. First a token
        // that cannot come near its renewal margin during the job (with 1.5 s tokens, one in five jobs would renew the
        // revoked token before using it, and see no 401): once the cached short one has expired, the next job fetches
        // an hour's token.
        api.setFaults(SandboxFaults(latencyMs: 20, oauthTokenSeconds: 3600))
        Thread.sleep(forTimeInterval: 1.6)
        try exact(try extractor(channel, pageSize: 20).extract(job(1)), 1)
        stats = api.currentStats
        api.revokeTokens()
        try exact(try extractor(channel, pageSize: 20).extract(job(0)), 0)
        let before = stats
        stats = api.currentStats
        #expect(stats.oauthInvalidRefused == 1 && stats.oauthTokensIssued >= before.oauthTokensIssued + 1)

        let error = #expect(throws: JobError.self) { try self.extractor(try oauth(secret: "wrong-oauth-secret")).extract(job(0)) }
        #expect(error?.errorClass == .permanent && error?.message.contains("invalid_client") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("wrong-oauth-secret") == false && error?.message.contains("tok_") == false)
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
        #expect(error?.description.contains("twilio/acme-eu/calls/\(TestDays.text(20))") == true)
        #expect(error?.description.contains("20003") == true)
        #expect(error?.description.contains("revoked-secret-token") == false)
        let listed = try s3.list(prefix: "staging/run/twilio_calls/acme-eu/")
        #expect(listed.isEmpty, "nothing staged for a failed job")
    }
}
