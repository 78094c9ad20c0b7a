import Foundation
import HuskimoTesting
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

@Suite struct ConfigTests {
    static let env = [
        "TEST_AMQP_PASSWORD": "amqp-pw-9f3", "TEST_TWILIO_TOKEN": "twilio-token-77a1", "TEST_SINGULAR_KEY": "sing-key-5521",
        "TEST_S3_SECRET": "s3-secret-0c8e", "TEST_PG_PASSWORD": "pg-pw-4be2",
    ]

    static func fixture(_ name: String) throws -> String {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil))
        return try String(contentsOf: url, encoding: .utf8)
    }

    static func problems(_ yaml: String, env: [String: String] = env) -> [String] {
        do {
            _ = try FleetConfig.parse(yaml, environment: env)
            return []
        } catch let error as ConfigError {
            return error.problems.map(\.description)
        } catch {
            return ["unexpected \(error)"]
        }
    }

    @Test func theSampleConfigOf03LoadsUnchanged() throws {
        let config = try FleetConfig.parse(try Self.fixture("huskimo-0.3-sample.yml"), environment: [:])
        #expect(config.fetch.lookback == 30)
        #expect(config.channels.map(\.type) == [.singular, .twilio])
        #expect(config.channels[0].apiUser == nil)
        #expect(config.channels[1].apiUser == "ADD HERE")
        #expect(config.targets[0].type == .redshift)
        #expect(config.targets[0].port == 5439)
        #expect(config.targets[0].sslMode == .disable)  // ssl: false
        #expect(config.targets[0].schema == "huskimo")
        #expect(config.warnings.contains { $0.hasPrefix("targets[0].table") })
        #expect(config.queue.prefix == "huskimo")
        #expect(config.queue.url.host == "127.0.0.1")
    }

    @Test func newKeysEnvironmentSubstitutionAndSSLMapping() throws {
        let config = try FleetConfig.parse(try Self.fixture("fleet.yaml"), environment: Self.env)
        #expect(config.queue.url.user == "huskimo")
        #expect(config.queue.url.password.reveal() == "amqp-pw-9f3")
        #expect(config.channels[0].apiKey.reveal() == "twilio-token-77a1")
        #expect(config.channels[0].subaccounts)
        #expect(config.channels[0].pricingURL == "http://127.0.0.1:35800")
        #expect(config.channels[1].apiURL == "http://127.0.0.1:35800")
        #expect(config.fetch.startDate == Day("2026-01-01"))
        #expect(config.s3.bucket == "huskimo-staging")  // s3:// and the trailing slash stripped
        #expect(config.s3.folderPath == "nightly")
        #expect(config.s3.pathStyle)
        #expect(config.targets[0].type == .postgres)
        #expect(config.targets[0].port == 35432)
        #expect(config.targets[1].sslMode == .verifyFull)  // ssl: true with a validating factory
        #expect(config.targets[1].iamRole == "arn:aws:iam::123456789012:role/huskimo-loader")
    }

    @Test func nonValidatingFactoryMapsToRequire() throws {
        let yaml = try Self.fixture("huskimo-0.3-sample.yml").replacingOccurrences(of: "ssl: false", with: "ssl: true")
        let config = try FleetConfig.parse(yaml, environment: [:])
        #expect(config.targets[0].sslMode == .require)
    }

    @Test(arguments: [
        ("port: 5439", "port: abc", "targets[0].port: expected an integer, got \"abc\""),
        ("port: 5439", "port: 70000", "targets[0].port: must be between 1 and 65535, got 70000"),
        ("lookback: 30", "lookback: -1", "fetch.lookback: must be between 0 and 3650, got -1"),
        ("ssl: false", "ssl: maybe", "targets[0].ssl: expected true or false, got \"maybe\""),
        ("type: singular", "type: facebook", "channels[0].type: expected one of twilio, singular, got \"facebook\""),
        ("    type: redshift", "    type: oracle", "targets[0].type: expected one of redshift, postgres, got \"oracle\""),
        ("  region: ADD HERE # Region bucket lives in", "  regoin: eu-west-1", "s3.regoin: unknown key"),
        (
            "    password: ADD HERE", "    password: ${NOT_SET_ANYWHERE}",
            "targets[0].password: environment variable NOT_SET_ANYWHERE is not set"
        ),
        ("    database: ADD HERE # Name of database", "    database:", "targets[0].database: required"),
    ])
    func badValuesNameTheirKeyPath(original: String, replacement: String, expected: String) throws {
        let yaml = try Self.fixture("huskimo-0.3-sample.yml")
        #expect(yaml.contains(original))
        let problems = Self.problems(yaml.replacingOccurrences(of: original, with: replacement), env: [:])
        #expect(problems.contains { $0.hasPrefix(expected) }, "got \(problems)")
    }

    @Test func theManagementURLIsAnHTTPURLWithoutCredentials() {
        let base =
            "channels: [{name: a, type: singular, api_key: k}]\ns3: {access_key_id: k, secret_access_key: s, region: r, bucket: b}\ntargets: [{name: t, host: h, database: d, username: u}]\n"
        let withCredentials = Self.problems(base + "queue: {management_url: \"http://guest:hunter2@rabbit:15672\"}")
        #expect(withCredentials.contains { $0.hasPrefix("queue.management_url: must not carry credentials") }, "got \(withCredentials)")
        #expect(!withCredentials.joined().contains("hunter2"), "the rejected value is not echoed")
        #expect(
            Self.problems(base + "queue: {management_url: \"rabbit:15672\"}").contains {
                $0.hasPrefix("queue.management_url: expected an http")
            })
        #expect(Self.problems(base + "queue: {management_url: \"https://rabbit:15672/\"}").isEmpty)
        // Plain HTTP carries the broker's password every poll: to this machine only, or with allow_http and a warning.
        #expect(
            Self.problems(base + "queue: {management_url: \"http://rabbit:15672\"}").contains {
                $0.hasPrefix("queue.management_url: http:// sends the broker's password unencrypted")
            })
        #expect(Self.problems(base + "queue: {management_url: \"http://127.0.0.1:15672\"}").isEmpty)
        let opted = try? FleetConfig.parse(base + "queue: {management_url: \"http://rabbit:15672\", allow_http: true}", environment: [:])
        #expect(opted?.warnings.contains { $0.contains("management_url is plain http://") } == true)
    }

    @Test func valuesThatReachRedshiftLiteralsCarryNoEscapes() {
        let base = "channels: [{name: a, type: singular, api_key: k}]\n"
        let target =
            "targets: [{name: t, type: redshift, host: h, database: d, username: u, iam_role: \"arn:aws:iam::1:role/x\\\\' OR 1\"}]\n"
        let problems = Self.problems(
            base + "s3: {access_key_id: \"AK\\\\\", secret_access_key: s, region: r, bucket: b, folder_path: \"a'b\"}\n" + target)
        for key in ["s3.access_key_id", "s3.folder_path", "targets[0].iam_role"] {
            #expect(problems.contains { $0.hasPrefix(key) && $0.contains("backslashes, quotes") }, "\(key): \(problems)")
        }
        let odd = try? FleetConfig.parse(
            base
                + "s3: {access_key_id: k, secret_access_key: s, region: r, bucket: My_Bucket}\ntargets: [{name: t, host: h, database: d, username: u}]",
            environment: [:])
        #expect(odd?.warnings.contains { $0.contains("is not an S3 bucket name") } == true)
    }

    /// `${VAR}` works anywhere, but a secret expanded into a field that is not secret (a channel name reaches metric
    /// labels, a URL another host) is refused, naming the field and never the secret.
    @Test func aSecretExpandedIntoANonSecretFieldIsRefused() throws {
        let env = ["TOKEN": "tok-3f9a7c21", "DBHOST": "db.internal", "DBPASS": "pw-77aa12bc"]
        func yaml(name: String, host: String, apiURL: String = "https://api.twilio.com") -> String {
            """
            channels: [{name: "\(name)", type: twilio, api_user: AC1, api_key: "${TOKEN}", api_url: "\(apiURL)"}]
            s3: {access_key_id: k, secret_access_key: s, region: us-east-1, bucket: b}
            targets: [{name: t, host: "\(host)", database: d, username: u, password: "${DBPASS}"}]
            """
        }
        let fine = try FleetConfig.parse(yaml(name: "us", host: "${DBHOST}"), environment: env)
        #expect(fine.targets[0].host == "db.internal" && fine.channels[0].apiKey.reveal() == "tok-3f9a7c21")
        for (text, path) in [
            (yaml(name: "us-${TOKEN}", host: "h"), "channels[0].name"),
            (yaml(name: "us", host: "${DBPASS}.example"), "targets[0].host"),
            (yaml(name: "us", host: "h", apiURL: "https://api.twilio.com/?k=${TOKEN}"), "channels[0].api_url"),
        ] {
            let error = #expect(throws: ConfigError.self) { try FleetConfig.parse(text, environment: env) }
            let shown = error.map { "\($0)" } ?? ""
            #expect(shown.contains("\(path): ${…} expands to text holding one of the configuration's secrets"), "\(shown)")
            #expect(!shown.contains("tok-3f9a7c21") && !shown.contains("pw-77aa12bc"), "the secret is never printed")
        }
    }

    /// A Twilio channel may log in with an API key instead of the auth token, and choose its region's hosts; the
    /// retired `api.{region}.twilio.com` forms are refused with their replacement named.
    @Test func apiKeysAndRegionsOfATwilioChannel() throws {
        let sid = "AC" + String(repeating: "1", count: 32), key = "SK" + String(repeating: "a", count: 32)
        func yaml(_ extra: String) -> String {
            """
            channels: [{name: eu, type: twilio, api_user: \(sid)\(extra)}]
            s3: {access_key_id: k, secret_access_key: s, region: us-east-1, bucket: b}
            targets: [{name: t, host: h, database: d, username: u}]
            """
        }
        let keyed = try FleetConfig.parse(
            yaml(", api_key_sid: \(key), api_key_secret: \"${KEY_SECRET}\", region: ie1, edge: dublin"),
            environment: ["KEY_SECRET": "sk-secret-value-9"])
        let channel = keyed.channels[0]
        #expect(channel.apiKeySID == key && channel.apiKeySecret?.reveal() == "sk-secret-value-9")
        #expect(channel.apiURL == "https://api.dublin.ie1.twilio.com" && channel.pricingURL == "https://pricing.dublin.ie1.twilio.com")
        #expect(keyed.secrets.contains { $0.reveal() == "sk-secret-value-9" } && !keyed.redactedDescription.contains("sk-secret-value-9"))
        let plain = try FleetConfig.parse(yaml(", api_key: tok"), environment: [:]).channels[0]
        #expect(plain.apiKeySID == nil && plain.apiKey.reveal() == "tok" && plain.twilioOAuth == nil, "the auth token as before")

        // OAuth client credentials: the auth token not required, the client secret a secret like the others.
        let oauth = try FleetConfig.parse(
            yaml(", oauth_client_id: OQ\(String(repeating: "b", count: 32)), oauth_client_secret: \"${OAUTH_SECRET}\""),
            environment: ["OAUTH_SECRET": "oauth-secret-value-7"])
        #expect(
            oauth.channels[0].twilioOAuth?.url == "https://oauth.twilio.com"
                && oauth.channels[0].twilioOAuth?.secret.reveal() == "oauth-secret-value-7")
        #expect(
            oauth.secrets.contains { $0.reveal() == "oauth-secret-value-7" } && !oauth.redactedDescription.contains("oauth-secret-value-7"))
        for (extra, problem) in [
            ("", "api_key: required"),
            (", api_key_sid: \(key)", "api_key_secret: required with api_key_sid"),
            (", api_key_sid: AC\(String(repeating: "1", count: 32)), api_key_secret: x", "api_key_sid: expected an API key SID"),
            (", api_key: t, region: ie1", "api.ie1.twilio.com form was retired on 2026-04-28"),
            (", api_key: t, edge: dublin", "region: required with edge"),
            (", api_key: t, include: [\"Client *\"]", "include: selects subaccounts: applies with subaccounts: true only"),
            (", api_key: t, subaccounts: true, status: [active, paused]", "status: expected one or more of active, suspended, closed"),
            (", api_key: t, subaccounts: true, exclude: [[a]]", "exclude[0]"),
            (", oauth_client_id: OQ1", "oauth_client_secret: required with oauth_client_id"),
            (", oauth_client_secret: x", "oauth_client_id: required with oauth_client_secret"),
            (", oauth_client_id: OQ1, oauth_client_secret: x, api_key_sid: \(key), api_key_secret: y", "either OAuth or an API key"),
            (", oauth_client_id: OQ1, oauth_client_secret: x, oauth_url: http://oauth.example.com", "oauth_url: expected an https:// URL"),
            (", api_key: t, oauth_url: https://oauth.example.com", "oauth_url: applies with oauth_client_id"),
            (", api_key: t, list_window_days: 401", "list_window_days: expected a whole number in 1…400"),
            (
                ", api_key: t, api_url: https://api.ie1.twilio.com",
                "api.ie1.twilio.com was retired on 2026-04-28: use api.{edge}.ie1.twilio.com"
            ),
        ] {
            let problems = Self.problems(yaml(extra))
            #expect(problems.contains { $0.contains(problem) }, "\(extra): \(problems)")
        }
    }

    @Test func aYAMLAliasBombIsRefusedNotExpanded() {
        // 9 levels of 10 aliases each: 10^9 nodes from a few hundred bytes.
        var yaml = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...8 {
            let previous = level == 1 ? "a" : "a\(level - 1)"
            yaml += "a\(level): &a\(level) [" + Array(repeating: "*\(previous)", count: 10).joined(separator: ", ") + "]\n"
        }
        let started = Date()
        #expect(throws: ConfigError.self) { try FleetConfig.parse(yaml, environment: [:]) }
        let problems = Self.problems(yaml)
        #expect(problems.contains { $0.contains("expands to more than") }, "\(problems)")
        #expect(-started.timeIntervalSinceNow < 10, "refused without walking the tree")
    }

    @Test func warehouseTLSVerifiesByDefaultAndWeakerModesAreExplicitAndWarned() throws {
        let base = "channels: [{name: a, type: singular, api_key: k}]\ns3: {access_key_id: k, secret_access_key: s, region: r, bucket: b}\n"
        let plain = try FleetConfig.parse(base + "targets: [{name: t, host: h, database: d, username: u}]", environment: [:])
        #expect(plain.targets[0].sslMode == .verifyFull && plain.warnings.isEmpty)
        #expect(plain.targets[0].postgresSettings.sslRootCert == SystemCA.bundle, "the system CA without sslrootcert")
        for mode in ["prefer", "allow"] {
            let problems = Self.problems(base + "targets: [{name: t, host: h, database: d, username: u, sslmode: \(mode)}]")
            #expect(
                problems.contains { $0.hasPrefix("targets[0].sslmode: \(mode) falls back to an unencrypted connection") }, "\(problems)")
        }
        let require = try FleetConfig.parse(
            base + "targets: [{name: t, host: h, database: d, username: u, sslmode: require}]", environment: [:])
        #expect(require.warnings.contains { $0.contains("target t: sslmode require") && $0.contains("not verified") })
        let disable = try FleetConfig.parse(
            base + "targets: [{name: t, host: h, database: d, username: u, sslmode: disable}]", environment: [:])
        #expect(disable.warnings.contains { $0.contains("target t: sslmode disable") })
        #expect(
            Self.problems(base + "targets: [{name: t, host: h, database: d, username: u, sslrootcert: /nonexistent/ca.pem}]")
                .contains("targets[0].sslrootcert: cannot read /nonexistent/ca.pem"))
        let timeouts = try FleetConfig.parse(
            base + "targets: [{name: t, type: postgres, host: h, database: d, username: u, statement_timeout_seconds: 60}]",
            environment: [:]
        ).targets[0].postgresSettings.session
        #expect(timeouts == [.init("statement_timeout", milliseconds: 60_000), .init("lock_timeout", milliseconds: 600_000)])
        let redshift = try FleetConfig.parse(base + "targets: [{name: t, host: h, database: d, username: u}]", environment: [:])
        #expect(redshift.targets[0].postgresSettings.session.map(\.name) == ["statement_timeout"], "Redshift has no lock_timeout")
    }

    @Test func apiURLsArePlainHTTPOnlyToThisMachineOrWhenAllowed() throws {
        func channel(_ url: String, _ extra: String = "") -> String {
            "channels: [{name: a, type: twilio, api_user: AC1, api_key: k, api_url: \"\(url)\"\(extra)}]\n"
                + "s3: {access_key_id: k, secret_access_key: s, region: r, bucket: b}\ntargets: [{name: t, host: h, database: d, username: u}]"
        }
        for url in ["http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:9/x", "https://api.twilio.com"] {
            #expect(Self.problems(channel(url)).isEmpty, "\(url)")
        }
        for url in ["http://api.twilio.com", "http://127.0.0.1.evil.com", "http://127.0.0.1@evil.com/", "http://10.0.0.1"] {
            #expect(
                Self.problems(channel(url)).contains { $0.hasPrefix("channels[0].api_url: http:// sends the credentials unencrypted") },
                "\(url)")
        }
        let allowed = try FleetConfig.parse(channel("http://twilio-proxy.internal", ", allow_http: true"), environment: [:])
        #expect(allowed.warnings.contains { $0.contains("channel a: api_url is plain http://") })
        #expect(Self.problems(channel("ftp://api.twilio.com")).contains("channels[0].api_url: expected an https:// URL"))
    }

    @Test func namesThatReachKeysAndSQLAreHeldToASafeShape() {
        let base = "s3: {access_key_id: k, secret_access_key: s, region: r, bucket: b}\n"
        for bad in ["..", "a\\\\b", String(repeating: "x", count: 129)] {
            let problems = Self.problems(
                base + "channels: [{name: \"\(bad)\", type: singular, api_key: k}]\ntargets: [{name: t, host: h, database: d, username: u}]"
            )
            #expect(problems.contains { $0.hasPrefix("channels[0].name: must be 1–128 bytes") }, "\(bad): \(problems)")
        }
        for bad in ["x\\\"; DROP SCHEMA y; --", "9lives", "", String(repeating: "s", count: 64), "dash-ed"] {
            let problems = Self.problems(
                base
                    + "channels: [{name: a, type: singular, api_key: k}]\ntargets: [{name: t, host: h, database: d, username: u, schema: \"\(bad)\"}]"
            )
            #expect(problems.contains { $0.hasPrefix("targets[0].schema: expected a plain identifier") }, "\(bad): \(problems)")
        }
    }

    @Test func yamlSyntaxErrorsNeverEchoTheLineTheyFoundItOn() {
        let problems = Self.problems(
            """
            channels: [{name: a, type: twilio, api_user: AC1, api_key: "s3cr3t-token-value}]
            """)
        #expect(!problems.isEmpty && problems.allSatisfy { !$0.contains("s3cr3t") }, "\(problems)")
        #expect(problems.contains { $0.contains("not valid YAML") })
    }

    @Test func everyProblemIsReportedNotJustTheFirst() {
        let problems = Self.problems(
            """
            channels:
              - name: a
                type: twilio
            s3: {bucket: b}
            targets:
              - {name: t, port: x}
            """)
        #expect(problems.contains("channels[0].api_key: required"))
        #expect(problems.contains("channels[0].api_user: required for twilio (the Account SID)"))
        #expect(problems.contains("s3.region: required"))
        #expect(problems.contains { $0.hasPrefix("targets[0].port: expected an integer") })
        #expect(problems.contains("targets[0].host: required"))
        #expect(problems.count >= 6)
    }

    @Test func duplicateNamesAreRejectedWithinAType() throws {
        let yaml = try Self.fixture("huskimo-0.3-sample.yml").replacingOccurrences(of: "type: singular", with: "type: twilio")
            .replacingOccurrences(of: "api_user: # Leave blank for Singular", with: "api_user: AC1")
        #expect(Self.problems(yaml, env: [:]).contains { $0.hasPrefix("channels[1].name: duplicate twilio channel name") })
    }

    @Test func secretsNeverAppearInAnyPrintedForm() throws {
        let config = try FleetConfig.parse(try Self.fixture("fleet.yaml"), environment: Self.env)
        var dumped = ""
        dump(config, to: &dumped)
        let forms = [
            config.redactedDescription, "\(config)", String(reflecting: config), dumped,
            "\(config.queue.url)", "\(config.targets[0].postgresSettings)",
        ]
        for form in forms {
            for secret in Self.env.values {
                #expect(!form.contains(secret), "secret leaked in: \(form.prefix(200))")
            }
        }
        #expect(config.redactedDescription.contains("api_key: <redacted>"))
        #expect(config.redactedDescription.contains("amqp://huskimo:<redacted>@127.0.0.1:35672/%2f"))
    }

    @Test func plannerExitsTwoOnBadConfigAndPrintsRedacted() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("huskimo-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = dir.appendingPathComponent("good.yml"), bad = dir.appendingPathComponent("bad.yml")
        try Self.fixture("fleet.yaml").write(to: good, atomically: true, encoding: .utf8)
        try Self.fixture("fleet.yaml").replacingOccurrences(of: "port: 35432", with: "port: forty")
            .write(to: bad, atomically: true, encoding: .utf8)

        let ok = try runTool("huskimo-planner", ["config", "--config", good.path], env: Self.env)
        #expect(ok.status == 0)
        #expect(ok.output.contains("password: <redacted>"))
        for secret in Self.env.values { #expect(!ok.output.contains(secret)) }

        let failed = try runTool("huskimo-planner", ["config", "--config", bad.path], env: Self.env)
        #expect(failed.status == 2)
        #expect(failed.output.contains("targets[0].port: expected an integer, got \"forty\""))

        let missing = try runTool("huskimo-planner", ["config", "--config", dir.appendingPathComponent("none.yml").path])
        #expect(missing.status == 2)
        #expect(missing.output.contains("cannot read the file"))
    }

    @Test func dryRunsSayWhatEachChannelWouldGet() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("huskimo-dry-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("c.yml")
        try Self.fixture("fleet.yaml").replacingOccurrences(of: "  start_date: 2026-01-01\n", with: "  settle_days: 2\n")
            .write(to: path, atomically: true, encoding: .utf8)
        // Days relative to today: a literal date would leave Twilio's 400-day list window a year later and be refused.
        let runDay = Day.today.adding(days: -26), first = Day.today.adding(days: -35)
        func d(_ day: Day, _ offset: Int) -> String { day.adding(days: offset).description }
        let dated = try runTool("huskimo-planner", ["plan", "--config", path.path, "--date", "\(runDay)", "--dry-run"], env: Self.env)
        #expect(dated.status == 0, "\(dated.output)")
        #expect(dated.output.contains("would publish 3 × acme-us calls  \(d(runDay, -2)) … \(runDay)"), "\(dated.output)")
        #expect(dated.output.contains("would publish 7 × spend campaigns  \(d(runDay, -6)) … \(runDay)"), "\(dated.output)")
        #expect(dated.output.contains("acme-us incoming_phone_numbers  (snapshot)"))
        let range = try runTool(
            "huskimo-planner", ["plan", "--config", path.path, "--from", "\(first)", "--to", d(first, 2), "--dry-run"],
            env: Self.env)
        #expect(range.output.contains("would publish 3 × acme-us calls  \(first) … \(d(first, 2))"), "\(range.output)")
        #expect(range.output.contains("would publish 3 × spend campaigns  \(first) … \(d(first, 2))"), "\(range.output)")
    }

    @Test func commandLineEdgesAreRefusedWithTheirReason() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("huskimo-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = dir.appendingPathComponent("good.yml"), closed = dir.appendingPathComponent("closed.yml")
        try Self.fixture("fleet.yaml").write(to: good, atomically: true, encoding: .utf8)
        // The warehouse on a port nothing listens on: the ledger cannot be read.
        try Self.fixture("fleet.yaml").replacingOccurrences(of: "port: 35432", with: "port: 1").write(
            to: closed, atomically: true, encoding: .utf8)
        let cases: [(String, [String], Int32, String)] = [
            ("huskimo-planner", ["run", "--config", good.path, "--workers", "0"], 2, "--workers must be 1–256"),
            (
                "huskimo-planner", ["requeue", "--config", good.path, "--from", "2026-13-01"], 2,
                "'2026-13-01' is invalid for '--from <YYYY-MM-DD>'"
            ),
            ("huskimo-planner", ["plan", "--config", good.path, "--date", "2026-02-30"], 2, "is invalid for '--date <YYYY-MM-DD>'"),
            // ArgumentParser's own usage errors exit 2 too (its default is 64), as the command-line contract says.
            ("huskimo-planner", ["plan", "--config", good.path, "--bogus"], 2, "Unknown option '--bogus'"),
            ("huskimo-worker", ["extract", "--config", good.path, "--concurrency", "x"], 2, "is invalid for '--concurrency"),
            (
                "huskimo-planner", ["requeue", "--config", good.path, "--from", "2026-11-02", "--to", "2026-11-01"], 2,
                "--from must not be after --to"
            ),
            ("huskimo-planner", ["requeue", "--config", good.path, "--limit", "0"], 2, "--limit must be at least 1"),
            (
                "huskimo-worker", ["extract", "--config", good.path, "--metrics-port", "0", "--metrics-host", "localhost"], 2,
                "--metrics-host must be an IPv4 address"
            ),
            ("huskimo-planner", ["plan", "--config", closed.path, "--dry-run"], 1, "catch-up: cannot read the load ledger of target"),
        ]
        for (tool, arguments, status, message) in cases {
            let result = try runTool(tool, arguments, env: Self.env)
            #expect(result.status == status, "\(arguments): \(result.output)")
            #expect(result.output.contains(message), "\(arguments): \(result.output)")
            for secret in Self.env.values { #expect(!result.output.contains(secret)) }
        }
    }
}

/// Runs one of the package's executables (built next to the test bundle) and returns its exit status and
/// combined output (standard output alone with `stdoutOnly`; standard error is then dropped).
func runTool(
    _ name: String, _ arguments: [String], env: [String: String] = [:], stdoutOnly: Bool = false
) throws
    -> (status: Int32, output: String)
{
    let binDir = Bundle.main.bundleURL.deletingLastPathComponent().path
    var candidates = [binDir + "/" + name]
    // `swift test` runs an xctest bundle from .build/<triple>/debug; the executables sit in the same folder.
    candidates.append(
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/\(name)").path)
    guard let path = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "no \(name) in \(candidates)"])
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = stdoutOnly ? FileHandle.nullDevice : pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
