import Foundation
import HuskimoTesting
import Logging
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

/// The integration tests' calendar: the days of a month that ends a week before today, fixed when the test process
/// starts (a run that crosses midnight keeps its days). Literal dates leave Twilio's 400-day list window, and the
/// sandbox's, a year after they were written, and the worker then reads them through Bulk Export instead; these days
/// stay where the tests were written to be whenever they run.
enum TestDays {
    private static let start = Day.today.adding(days: -37)

    /// Day `n` (1…31) of the test month.
    static func day(_ n: Int) -> Day { start.adding(days: n) }

    /// Day `n` as YYYY-MM-DD.
    static func text(_ n: Int) -> String { day(n).description }
}

/// The services the stack script started (`deploy/local/stack.sh up` prints these variables and writes them to
/// `.local/stack/stack.env`). The environment wins; what it lacks comes from that file, so with the stack up a plain
/// `swift test --filter X` finds the stack's fixed loopback ports (and its per-stack keys) by itself.
enum TestServices {
    static let env: [String: String] = {
        var values: [String: String] = [:]
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let dir = ProcessInfo.processInfo.environment["HUSKIMO_STACK_DIR"] ?? repo.appendingPathComponent(".local/stack").path
        if let text = try? String(contentsOfFile: dir + "/stack.env", encoding: .utf8) {
            for line in text.split(separator: "\n") where line.hasPrefix("export ") {
                guard let equals = line.firstIndex(of: "=") else { continue }
                // Written by `printf %q`: a backslash escapes the character after it.
                var value = "", escaped = false
                for c in line[line.index(after: equals)...] {
                    if c == "\\" && !escaped {
                        escaped = true
                    } else {
                        value.append(c)
                        escaped = false
                    }
                }
                values[String(line[line.index(line.startIndex, offsetBy: 7)..<equals])] = value
            }
        }
        return values.merging(ProcessInfo.processInfo.environment) { $1 }
    }()

    static func require(_ name: String) throws -> String {
        guard let value = env[name], !value.isEmpty else {
            throw ServiceMissing(name: name)
        }
        return value
    }

    struct ServiceMissing: Error, CustomStringConvertible {
        let name: String
        var description: String { "\(name) is not set: start the services with deploy/local/stack.sh up (or run deploy/local/test.sh)" }
    }

    static func amqpURL() throws -> AMQPURL { try AMQPURL(try require("AMQP_URL")) }

    /// Every node of the stack's broker (a cluster of three by default; `AMQP_URLS`, comma-separated), as a YAML flow
    /// list for `queue.url`.
    static var amqpNodesYAML: String {
        let urls = (env["AMQP_URLS"] ?? env["AMQP_URL"] ?? "").split(separator: ",").map { "\"\($0)\"" }
        return "[\(urls.joined(separator: ", "))]"
    }

    /// The queue type the fleet suites run on: the product's default (quorum) on RabbitMQ 4; classic on the oldest
    /// supported 3.10, whose single-node quorum queues can stay leaderless after an unclean restart.
    static var queueType: String { env["RABBITMQ_VERSION"] == "3.10" ? "classic" : "quorum" }

    /// A TCP port on 127.0.0.1 that nothing listens on now (the kernel's choice, not a random guess that another
    /// test's process may hold).
    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func postgres() throws -> PostgresSettings {
        PostgresSettings(
            host: try require("POSTGRES_HOSTNAME"), port: Int(try require("POSTGRES_PORT"))!, database: try require("POSTGRES_DB"),
            user: try require("POSTGRES_USER"), password: Secret(try require("POSTGRES_PASSWORD")), sslMode: .disable)
    }

    static func s3(bucket: String, strict: Bool = false) throws -> S3Endpoint {
        let prefix = strict ? "S3_STRICT_" : "S3_"
        return S3Endpoint(
            endpoint: try require("\(prefix)ENDPOINT"), region: env["S3_REGION"] ?? "us-east-1", bucket: bucket,
            accessKeyID: try require("\(prefix)ACCESS_KEY_ID"), secretAccessKey: Secret(try require("\(prefix)SECRET_ACCESS_KEY")),
            pathStyle: true)
    }

    /// Runs the stack script (e.g. `restart-rabbitmq`) and waits for it. Spawned with posix_spawn and
    /// reaped with waitpid: Foundation's `Process.waitUntilExit` never returned here once the script had
    /// left a daemonised broker behind.
    static func stack(_ arguments: String...) throws {
        let argv = ["/bin/bash", try require("HUSKIMO_STACK_SCRIPT")] + arguments
        var cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/bin/bash", nil, nil, &cArgs, environ)
        guard rc == 0 else { throw ServiceMissing(name: "posix_spawn stack.sh: \(rc)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        guard status == 0 else {
            throw ServiceMissing(name: "stack.sh \(arguments.joined(separator: " ")) exited with status \(status)")
        }
    }

    /// Runs `python3 -c script arguments…` (the stack's Python, which has boto3 beside moto) and returns what it printed.
    static func python(_ script: String, _ arguments: [String]) throws -> String {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("huskimo-py-\(UInt32.random(in: 0...UInt32.max))")
        defer { try? FileManager.default.removeItem(at: out) }
        let argv = ["/usr/bin/env", "python3", "-c", script] + arguments
        var cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, out.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/usr/bin/env", &actions, nil, &cArgs, environ)
        guard rc == 0 else { throw ServiceMissing(name: "posix_spawn python3: \(rc)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        guard status == 0 else { throw ServiceMissing(name: "python3 exited with status \(status)") }
        return (try? String(contentsOf: out, encoding: .utf8)) ?? ""
    }

    static func unique(_ prefix: String) -> String {
        "\(prefix)-\(UInt32.random(in: 0...UInt32.max))"
    }

    static var logger: Logger {
        var logger = Logger(label: "huskimo.test")
        logger.logLevel = .warning
        return logger
    }
}
