import Foundation
import HuskimoTesting
import SandboxKit
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

/// `huskimo-planner check` as a user runs it before the first night: against the local stack and the sandbox,
/// for a PostgreSQL and a Redshift target, and each failure class with its fix.
@Suite(.serialized, .ownThreads, .timeLimit(.minutes(5)))
struct CheckCommandTests {
    func check(_ fleet: FleetHarness) throws -> (Int32?, [Check.Line], String) {
        let (code, text) = try fleet.run("huskimo-planner", ["check", "--config", fleet.configPath])
        let (_, json) = try fleet.run("huskimo-planner", ["check", "--config", fleet.configPath, "--json"])
        // The JSON document starts on a line of its own (log lines, on stderr here, may carry brackets too).
        let start = json.hasPrefix("[") ? json.startIndex : json.index(after: json.range(of: "\n[")!.lowerBound)
        let lines = try JSONDecoder().decode([Check.Line].self, from: Data(json[start...].utf8))
        return (code, lines, text)
    }

    @Test(arguments: ["postgres", "redshift"]) func aGoodSetupPassesEveryCheck(target: String) throws {
        let fleet = try FleetHarness(
            accounts: [("us", SandboxAccount.defaults[0])], singular: [("spend", SandboxSingular.keys[0])],
            target: target)
        defer { fleet.cleanUp() }
        try fleet.applyDDL()
        let (code, lines, text) = try check(fleet)
        #expect(code == 0, "\(text)")
        #expect(lines.allSatisfy { $0.verdict == "ok" }, "\(text)")
        for subject in ["broker", "s3", "channel us", "channel spend", "target local"] {
            #expect(lines.contains { $0.subject == subject }, "\(subject): \(text)")
        }
        #expect(lines.contains { $0.check == "copy (the production statement)" && $0.detail.contains("byte for byte") })
        // Singular on v2.0: availability answered, and a report came back through its presigned download, converted.
        let singular = lines.first { $0.subject == "channel spend" && $0.check == "Singular reporting" }
        #expect(
            singular?.detail.contains("v2.0: availability of") == true && singular?.detail.contains("presigned download") == true, "\(text)"
        )
        #expect(fleet.api.currentStats.singularReportsCreated == 2 && fleet.api.currentStats.singularKeyInURL == 0)
        #expect(lines.filter { $0.check.hasPrefix("table ") }.count == WarehouseSchema.tables.count)
        #expect(text.contains("all \(lines.count) checks passed"))
        // The probe left nothing behind: no rows, no staged objects.
        #expect(try fleet.rows("twilio_calls", channel: "us") == 0)
        let pg = try PostgresConnection(try TestServices.postgres())
        #expect(try pg.query("SELECT count(*) FROM \(fleet.id).twilio_calls")[0][0] == "0")
        #expect(try S3Client(try TestServices.s3(bucket: fleet.id)).list(prefix: "stage/").isEmpty)
    }

    @Test func eachFailureNamesItsCauseAndItsFix() throws {
        let fleet = try FleetHarness(accounts: [("us", SandboxAccount.defaults[0])], tokens: ["us": "wrong-token-3k"], target: "redshift")
        defer { fleet.cleanUp() }
        try fleet.applyDDL()
        let pg = try PostgresConnection(try TestServices.postgres())
        // A missing column, and a VARCHAR long enough in characters but too short in bytes for Redshift.
        try pg.execute("ALTER TABLE \(fleet.id).twilio_recordings DROP COLUMN call_sid")
        try pg.execute("ALTER TABLE \(fleet.id).twilio_calls ALTER COLUMN caller_name TYPE varchar(24)")
        var (code, lines, text) = try check(fleet)
        #expect(code == 1)
        func failed(_ subject: String, _ check: String) -> Check.Line? {
            lines.first { $0.subject == subject && $0.check == check && $0.verdict == "fail" }
        }
        #expect(failed("channel us", "Twilio account")?.fix?.contains("refuses the credentials") == true, "\(text)")
        #expect(!text.contains("wrong-token-3k"), "the token never reaches the output")
        #expect(failed("target local", "table twilio_recordings")?.detail.contains("lacks column call_sid") == true, "\(text)")
        #expect(
            failed("target local", "table twilio_calls")?.detail.contains("caller_name is varchar(24), expected varchar(512)") == true,
            "\(text)")
        let copy = failed("target local", "copy (the production statement)")
        #expect(copy?.detail.contains("stl_load_errors") == true && copy?.detail.contains("caller_name") == true, "\(text)")
        #expect(lines.first { $0.subject == "broker" }?.verdict == "ok" && lines.first { $0.subject == "s3" }?.verdict == "ok")

        // A wrong password, and a bucket that does not exist.
        fleet.targetPassword = "not-the-password"
        fleet.bucket = "huskimo-no-such-bucket-\(UInt32.random(in: 0...UInt32.max))"
        try fleet.writeConfig()
        (code, lines, text) = try check(fleet)
        #expect(code == 1)
        #expect(failed("target local", "connect (sslmode disable)")?.fix?.contains("refuses username/password") == true, "\(text)")
        #expect(!text.contains("not-the-password"))
        #expect(failed("s3", "put, list, get, delete")?.fix?.contains("no bucket") == true, "\(text)")
    }

    /// A Singular key the API refuses, and a report that keeps failing: each named, with what to fix, the key nowhere.
    @Test func aSingularV2ProbeNamesARefusedKeyAndAFailingReport() throws {
        let key = SandboxSingular.keys[1]
        let fleet = try FleetHarness(accounts: [], singular: [("spend", key)])
        defer { fleet.cleanUp() }
        try fleet.applyDDL()
        fleet.api.setFaults(SandboxFaults(revoked: [key.key]))
        var (code, lines, text) = try check(fleet)
        #expect(code == 1)
        let refused = lines.first { $0.subject == "channel spend" && $0.verdict == "fail" }
        #expect(refused?.fix?.contains("refuses the credentials: check api_key of spend") == true, "\(text)")
        #expect(refused?.detail.contains("Invalid API key") == true, "\(text)")
        fleet.api.setFaults(SandboxFaults(singularFailingDays: [Day.today.adding(days: -1).description: 99]))
        (code, lines, text) = try check(fleet)
        #expect(code == 1)
        let failing = lines.first { $0.subject == "channel spend" && $0.verdict == "fail" }
        #expect(failing?.detail.contains("ended FAILED") == true && failing?.detail.contains("Query timed out") == true, "\(text)")
        #expect(!text.contains(key.key))
    }

    /// Which credentials cannot do what the channel asks: a Standard API key listing subaccounts, an OAuth client the
    /// token endpoint refuses; an OAuth channel that works says so.
    @Test func aTwilioLoginThatCannotDoWhatTheChannelAsksIsNamed() throws {
        let account = SandboxAccount.defaults[0]
        let fleet = try FleetHarness(accounts: [("keyed", account), ("oauth", account), ("bad-oauth", account)])
        defer { fleet.cleanUp() }
        let oauth = "oauth_client_id: \(account.oauthClientID), oauth_url: \"http://127.0.0.1:\(fleet.server.port)\""
        fleet.twilioOptions = [
            "keyed": "api_key_sid: \(account.apiKeySID), api_key_secret: \(account.apiKeySecret), subaccounts: true",
            "oauth": "\(oauth), oauth_client_secret: \(account.oauthClientSecret), subaccounts: true",
            "bad-oauth": "\(oauth), oauth_client_secret: not-the-oauth-secret",
        ]
        try fleet.writeConfig()
        try fleet.applyDDL()
        let (code, lines, text) = try check(fleet)
        #expect(code == 1)
        func line(_ channel: String) -> Check.Line? { lines.first { $0.subject == "channel \(channel)" && $0.check == "Twilio account" } }
        #expect(
            line("keyed")?.verdict == "fail" && line("keyed")?.fix?.contains("cannot list subaccounts (a Standard key cannot)") == true,
            "\(text)")
        #expect(line("oauth")?.verdict == "ok" && line("oauth")?.detail.contains("with an OAuth token") == true, "\(text)")
        #expect(line("oauth")?.detail.contains("subaccounts listed") == true, "\(text)")
        #expect(
            line("bad-oauth")?.verdict == "fail" && line("bad-oauth")?.fix?.contains("OAuth token endpoint refuses the client") == true,
            "\(text)")
        #expect(!text.contains("not-the-oauth-secret") && !text.contains(account.apiKeySecret) && !text.contains("tok_"))
    }

    /// Which subaccounts a channel finds and which it reads, shown by `plan --dry-run` and `status` (text and JSON).
    @Test func subaccountDiscoveryIsShownByPlanAndStatus() throws {
        let parent = SandboxAccount.defaults[0]
        let fleet = try FleetHarness(accounts: [("subs", parent)])
        defer { fleet.cleanUp() }
        fleet.twilioOptions = ["subs": "subaccounts: true, exclude: [\"*sales\"]"]
        try fleet.writeConfig()
        let (s1, s2, s3) = (SandboxAccount.sid(0x11), SandboxAccount.sid(0x12), SandboxAccount.sid(0x13))
        let line =
            "accounts of subs: 3 subaccounts found, 1 selected: \(s1) (Acme US support, active); left out: \(s2) (Acme US sales, active), \(s3) (Acme US archive, suspended)"
        let (code, plan) = try fleet.run("huskimo-planner", ["plan", "--config", fleet.configPath, "--dry-run", "--resource", "calls"])
        #expect(code == 0 && plan.contains(line), "\(plan)")
        let (_, status) = try fleet.run("huskimo-planner", ["status", "--config", fleet.configPath])
        #expect(status.contains("ACCOUNTS") && status.contains("  " + line), "\(status)")
        let (_, json) = try fleet.run("huskimo-planner", ["status", "--config", fleet.configPath, "--json"])
        #expect(json.contains("\"accounts\"") && json.contains(s3), "\(json)")
    }
}
