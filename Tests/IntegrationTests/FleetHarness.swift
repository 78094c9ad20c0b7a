import Foundation
import HuskimoTesting
import SandboxKit
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

/// A small fleet for tests: the sandbox in-process, a configuration of its own (queue prefix, schema, bucket),
/// and the real `huskimo-planner` / `huskimo-worker` binaries as separate processes.
final class FleetHarness {
    let api = SandboxAPI()
    let server: HTTPServer
    let id = "t\(UInt32.random(in: 0...UInt32.max))"
    let dir: URL
    let configPath: String
    var accounts: [(name: String, account: SandboxAccount, token: String)]
    /// Singular channels: name and API key.
    var singular: [(name: String, key: SandboxSingular.Key)]
    /// Further keys of a Singular channel, by name, as YAML flow entries (`api: legacy`); every v2 channel polls its
    /// reports every 20 ms unless told otherwise (call ``writeConfig()`` after changing them).
    var singularOptions: [String: String] = [:]
    /// Further keys of a Twilio channel, by name, as YAML flow entries (`subaccounts: true`).
    var twilioOptions: [String: String] = [:]
    var lookback = 30
    /// `fetch.settle_days` (call ``writeConfig()`` after changing it).
    var settleDays = 3
    /// `queue.max_attempts` (call ``writeConfig()`` after changing it).
    var maxAttempts = 4
    /// `fetch.max_response_mib`.
    var maxResponseMiB = 256
    /// The RabbitMQ management API for `queue.management_url` (nil: AMQP only).
    /// `queue.management_url`: one URL, or a YAML flow list of them (`["http://…", …]`).
    var managementURL: String?
    var processes: [pid_t] = []
    /// The target's warehouse: `postgres`, or `redshift` (the Redshift-dialect test server in front of the same
    /// PostgreSQL, so the tests read the rows the same way).
    let targetType: String
    /// The target's password (nil: the stack's) and the staging bucket (nil: the fleet's own): for failure tests.
    var targetPassword: String?
    var bucket: String?

    init(
        accounts: [(String, SandboxAccount)], tokens: [String: String] = [:], singular: [(String, SandboxSingular.Key)] = [],
        lookback: Int = 30, target: String = "postgres"
    ) throws {
        self.targetType = target
        self.singular = singular.map { ($0.0, $0.1) }
        self.lookback = lookback
        server = HTTPServer { [api] in api.handle($0) }
        _ = try server.start()
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("huskimo-fleet-\(id)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        configPath = dir.appendingPathComponent("fleet.yaml").path
        self.accounts = accounts.map { ($0.0, $0.1, tokens[$0.0] ?? $0.1.token) }
        try writeConfig()
        let s3 = S3Client(try TestServices.s3(bucket: id))
        try s3.createBucket()
    }

    deinit {
        for pid in processes { kill(pid, SIGKILL) }
        server.stop()
    }

    func writeConfig() throws {
        let env = TestServices.env
        var yaml = """
            queue: {url: \(TestServices.amqpNodesYAML), prefix: \(id), type: \(TestServices.queueType), retry_delays: [1, 2], max_attempts: \(maxAttempts)\(managementURL.map { ", management_url: " + ($0.hasPrefix("[") ? $0 : "\"\($0)\"") } ?? "")}
            fetch: {lookback: \(lookback), settle_days: \(settleDays), max_response_mib: \(maxResponseMiB)}
            channels:

            """
        for (name, account, token) in accounts {
            yaml +=
                "  - {name: \(name), type: twilio, api_user: \(account.sid), api_key: \(token), api_url: \"http://127.0.0.1:\(server.port)\", pricing_url: \"http://127.0.0.1:\(server.port)\"\(twilioOptions[name].map { ", " + $0 } ?? "")}\n"
        }
        for (name, key) in singular {
            let options = singularOptions[name] ?? "report_poll_s: 0.02"
            yaml += "  - {name: \(name), type: singular, api_key: \(key.key), api_url: \"http://127.0.0.1:\(server.port)\", \(options)}\n"
        }
        yaml += """
            s3: {access_key_id: "\(env["S3_ACCESS_KEY_ID"] ?? "")", secret_access_key: "\(env["S3_SECRET_ACCESS_KEY"] ?? "")", region: us-east-1, bucket: \(bucket ?? id), folder_path: stage, endpoint: "\(env["S3_ENDPOINT"] ?? "")", path_style: true}
            targets:
              - {name: local, type: \(targetType), host: "\(env["POSTGRES_HOSTNAME"] ?? "")", port: \(targetType == "redshift" ? try TestServices.require("REDSHIFT_PORT") : env["POSTGRES_PORT"] ?? "0"), database: "\(env["POSTGRES_DB"] ?? "")", username: "\(env["POSTGRES_USER"] ?? "")", password: "\(targetPassword ?? env["POSTGRES_PASSWORD"] ?? "")", schema: \(id), sslmode: disable}

            """
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    var config: FleetConfig { get throws { try FleetConfig.load(path: configPath) } }

    static func binary(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/debug/\(name)").path
    }

    /// Starts a binary with its output in a log file of its own.
    @discardableResult
    func spawn(_ name: String, _ arguments: [String], log: String) throws -> pid_t {
        let argv = [FleetHarness.binary(name)] + arguments
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let logPath = dir.appendingPathComponent(log).path
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, nil, &cArgs, environ)
        guard rc == 0 else { throw TestServices.ServiceMissing(name: "posix_spawn \(name): \(rc)") }
        processes.append(pid)
        return pid
    }

    /// Waits for a process; returns its exit status (nil on timeout).
    func wait(_ pid: pid_t, timeout: Double = 120) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        while Date() < deadline {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid {
                processes.removeAll { $0 == pid }
                return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            }
            usleep(50_000)
        }
        return nil
    }

    /// Runs a binary to completion and returns (status, output).
    func run(_ name: String, _ arguments: [String], timeout: Double = 120) throws -> (Int32?, String) {
        let log = "run-\(UInt32.random(in: 0...UInt32.max)).log"
        let pid = try spawn(name, arguments, log: log)
        let status = wait(pid, timeout: timeout)
        return (status, self.log(log))
    }

    func log(_ name: String) -> String {
        (try? String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)) ?? ""
    }

    func plan(_ extra: [String]) throws {
        let (status, output) = try run("huskimo-planner", ["plan", "--config", configPath] + extra)
        #expect(status == 0, "plan: \(output)")
    }

    func worker(_ log: String, concurrency: Int = 4, idle: Double = 3, extra: [String] = []) throws -> pid_t {
        try spawn(
            "huskimo-worker",
            [
                "extract", "--config", configPath, "--concurrency", String(concurrency), "--exit-when-idle", String(idle),
                "--grace", "20",
            ] + extra, log: log)
    }

    func loader(_ log: String = "loader.log", idle: Double = 6, extra: [String] = []) throws -> pid_t {
        try spawn(
            "huskimo-worker", ["load", "--config", configPath, "--target", "local", "--exit-when-idle", String(idle)] + extra, log: log)
    }

    func applyDDL() throws {
        let (status, output) = try run("huskimo-planner", ["ddl", "--config", configPath, "--apply"])
        #expect(status == 0, "ddl: \(output)")
    }

    /// Rows per table for one channel in the harness's schema.
    func rows(_ table: String, channel: String) throws -> Int {
        let pg = try PostgresConnection(try TestServices.postgres())
        return Int(try pg.query("SELECT count(*) FROM \(id).\(table) WHERE channel_name = $1", [channel])[0][0]!)!
    }

    func duplicates(_ table: String) throws -> Int {
        let pg = try PostgresConnection(try TestServices.postgres())
        return Int(try pg.query("SELECT count(*) - count(DISTINCT (channel_name, sid)) FROM \(id).\(table)")[0][0]!)!
    }

    /// Every (channel, resource, day) holds exactly the sandbox's rows, and nothing twice.
    func expectExact(
        days: [Day], resources: [Resource] = [.calls, .messages, .recordings], channels: [String]? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        for (name, account, _) in accounts where channels?.contains(name) ?? true {
            for resource in resources {
                let expected = days.reduce(0) { $0 + SandboxAPI.expected(account, resource.rawValue, day: $1).count }
                #expect(try rows(resource.table, channel: name) == expected, "\(name) \(resource.rawValue)", sourceLocation: sourceLocation)
            }
        }
        for resource in resources {
            #expect(try duplicates(resource.table) == 0, "duplicates in \(resource.table)", sourceLocation: sourceLocation)
        }
    }

    /// The parked jobs, left parked.
    func parkedJobs() throws -> [AMQPDelivery] {
        let topology = FleetTopology(try config.queue, targets: ["local"])
        let client = QueueClient(url: try TestServices.amqpURL(), retryWindow: 5, logger: TestServices.logger)
        defer { client.close() }
        var parked: [AMQPDelivery] = []
        try client.drainBlocking(topology.failedQueue) {
            parked.append($0)
            return .keep
        }
        return parked
    }

    /// The ids of the parked jobs, each once (a park is at-least-once too).
    func parkedJobIDs() throws -> Set<String> { Set(try parkedJobs().compactMap { $0.headers["x-id"]?.stringValue }) }

    func cleanUp() {
        let topology = (try? config).map { FleetTopology($0.queue, targets: ["local"]) }
        if let topology, let client = try? QueueClient(url: TestServices.amqpURL(), retryWindow: 2, logger: TestServices.logger) {
            for queue in topology.allQueues { try? client.deleteQueueBlocking(queue) }
            try? client.deleteExchangeBlocking(topology.exchange)
        }
        if let pg = try? PostgresConnection(try TestServices.postgres()) { try? pg.execute("DROP SCHEMA IF EXISTS \(id) CASCADE") }
    }
}
