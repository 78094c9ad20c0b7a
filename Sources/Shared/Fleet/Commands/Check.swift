import Foundation
import HuskimoConnectors
import HuskimoCore
package import Logging
import Synchronization

/// `huskimo-planner check`: the connector world's "check connection", end to end, before the first night — the
/// broker round-trips a message, S3 takes, lists, returns and deletes a probe under the folder, every channel
/// answers one authenticated request, every target connects as configured (TLS included), has the DDL's tables
/// and columns, and loads a probe of every hard character class with the production COPY byte for byte (rolled
/// back). One line per check with its verdict and, for a failure, the fix.
package enum Check {
    package struct Line: Sendable, Codable, Hashable {
        var subject: String
        package var check: String
        /// `ok`, `warn` (reported, does not fail) or `fail`.
        var verdict: String
        package var detail: String
        package var fix: String?
    }

    /// Runs the checks (all, or one target's / one channel's with the shared broker and S3 checks) and prints them.
    /// - Returns: the exit code: 0 when nothing failed, 1 otherwise.
    package static func run(config: FleetConfig, target: String?, channel: String?, json: Bool, logger: Logger) async throws -> Int32 {
        if let target, !config.targets.contains(where: { $0.name == target }) { throw CommandFailure.usage("no target named \(target)") }
        if let channel, !config.channels.contains(where: { $0.name == channel }) {
            throw CommandFailure.usage("no channel named \(channel)")
        }
        let driver = QueueDriverFactory.make(config, retryWindow: 5, logger: logger)
        let broker = await broker(config, driver: driver)
        driver.close()
        let lines = try await [broker] + Blocking.run { collect(config: config, target: target, channel: channel, logger: logger) }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(lines), as: UTF8.self))
        } else {
            for line in lines {
                print(
                    "\(line.verdict.uppercased().padding(toLength: 5, withPad: " ", startingAt: 0)) \(line.subject): \(line.check) — \(line.detail)"
                )
                if let fix = line.fix { print("      fix: \(fix)") }
            }
            let failed = lines.filter { $0.verdict == "fail" }.count
            print(failed == 0 ? "all \(lines.count) checks passed" : "\(failed) of \(lines.count) checks failed")
        }
        return lines.contains { $0.verdict == "fail" } ? 1 : 0
    }

    /// Every check's line after the broker's, in order. Blocking; every failure becomes a line, never an exit.
    static func collect(config: FleetConfig, target: String?, channel: String?, logger: Logger) -> [Line] {
        let s3 = S3Client(config.s3.s3Endpoint)
        var lines = [storage(config, s3)]
        let context = ExtractContext(
            api: APIClient(http: HTTPClient(), limiters: AccountLimiters(), maxAttempts: 2, logger: logger),
            s3: s3, folder: config.s3.folderPath)
        for c in config.channels where channel == nil || c.name == channel {
            lines.append(api(c, context: context))
        }
        for t in config.targets where target == nil || t.name == target {
            lines += warehouse(t, s3: s3, config: config, logger: logger)
        }
        return lines
    }

    static func line(_ subject: String, _ check: String, _ result: () throws -> String, fix: (any Error) -> String) -> Line {
        do {
            return Line(subject: subject, check: check, verdict: "ok", detail: try result())
        } catch {
            return Line(subject: subject, check: check, verdict: "fail", detail: "\(error)", fix: fix(error))
        }
    }

    static func broker(_ config: FleetConfig, driver: any QueueDriver) async -> Line {
        let topology = FleetTopology(config)
        let probe = "\(config.queue.prefix).check.\(UInt32.random(in: 0...UInt32.max))"
        let body = Array("huskimo check \(probe)".utf8)
        let received = Mutex<[UInt8]?>(nil)
        var failure: (any Error)?
        do {
            try await driver.declare(topology.topology)
            try await driver.declare(QueueTopology(exchange: "", queues: [.init(name: probe)]))
            do {
                try await driver.publish([AMQPMessage(exchange: "", routingKey: probe, body: body, messageID: probe)])
                try await driver.drain(probe, limit: 1) { delivery in
                    received.withLock { $0 = delivery.body }
                    return .remove
                }
            } catch {
                failure = error
            }
            try? await driver.deleteQueue(probe)
        } catch {
            failure = error
        }
        if failure == nil, received.withLock({ $0 }) != body {
            failure = CommandFailure.failed("published to \(probe) with a confirm, but did not get it back")
        }
        if let failure {
            return Line(
                subject: "broker", check: "declare and round trip", verdict: "fail", detail: "\(failure)",
                fix:
                    "check queue.url (host, port, user, password, vhost) and that the user may declare queues under \(config.queue.prefix).*"
            )
        }
        return Line(
            subject: "broker", check: "declare and round trip", verdict: "ok",
            detail: "the fleet's \(topology.allQueues.count) queues declared; a message published with a confirm and read back")
    }

    static func storage(_ config: FleetConfig, _ s3: S3Client) -> Line {
        let key = StagingLayout(folder: config.s3.folderPath).folder + "/check/probe-\(UInt32.random(in: 0...UInt32.max)).txt"
        return line(
            "s3", "put, list, get, delete",
            {
                let body = Array("huskimo check".utf8)
                try s3.put(key, body, contentType: "text/plain")
                defer { _ = try? s3.delete([key]) }
                guard try s3.list(prefix: key).contains(where: { $0.key == key }) else {
                    throw CommandFailure.failed("\(key) was put but is not listed")
                }
                guard try s3.get(key) == body else { throw CommandFailure.failed("\(key) read back different bytes") }
                try s3.delete([key])
                return "s3://\(config.s3.bucket)/\(key) put, listed, read back and deleted"
            },
            fix: { error in
                let status = (error as? S3Error)?.status
                return status == 403
                    ? "the keys may not use the folder: allow s3:PutObject, GetObject, DeleteObject and ListBucket on s3://\(config.s3.bucket)/\(config.s3.folderPath)*"
                    : status == 404
                        ? "no bucket \(config.s3.bucket) in \(config.s3.region): check s3.bucket and s3.region"
                        : "check s3.endpoint / s3.region and the network path to S3"
            })
    }

    static func api(_ channel: ChannelConfig, context: ExtractContext) -> Line {
        let connector = ConnectorRegistry.connector(of: channel)
        return line(
            "channel \(channel.name)", connector.probeName, { try connector.probe(channel, context: context) },
            fix: { connector.probeFix($0, channel: channel) })
    }

    static func warehouse(_ target: TargetConfig, s3: S3Client, config: FleetConfig, logger: Logger) -> [Line] {
        let subject = "target \(target.name)"
        var connection: PostgresConnection?
        let connect = line(
            subject, "connect (sslmode \(target.sslMode.rawValue))",
            {
                connection = try PostgresConnection(target.postgresSettings)
                return "connected to \(target.host):\(target.port)/\(target.database) as \(target.username)"
            },
            fix: { error in
                let text = "\(error)"
                if (error as? PQError)?.sqlState == "28P01" { return "the warehouse refuses username/password of \(target.name)" }
                if text.contains("SSL") || text.contains("certificate") {
                    return "TLS failed: check sslmode and sslrootcert (Redshift: Amazon's CA bundle) or the server's certificate name"
                }
                return "check host, port and database, and that this machine may reach the warehouse (security group, firewall)"
            })
        guard let pg = connection else { return [connect] }
        var lines = [connect]
        let check = WarehouseCheck(target: target, pg: pg, s3: s3, s3Config: config.s3)
        do {
            for finding in try check.schema() {
                lines.append(
                    Line(
                        subject: subject, check: finding.check, verdict: finding.ok ? (finding.warning ? "warn" : "ok") : "fail",
                        detail: finding.detail, fix: finding.fix))
            }
        } catch {
            lines.append(
                Line(
                    subject: subject, check: "schema", verdict: "fail", detail: "\(error)",
                    fix: "the user may not read information_schema of \(target.schema)"))
        }
        do {
            let finding = try check.copyProbe(s3: s3, folder: config.s3.folderPath)
            lines.append(
                Line(
                    subject: subject, check: "copy (the production statement)", verdict: finding.ok ? "ok" : "fail",
                    detail: finding.detail, fix: finding.fix))
        } catch {
            lines.append(
                Line(
                    subject: subject, check: "copy (the production statement)", verdict: "fail", detail: "\(error)",
                    fix: check.dialect.copyFix(target: target, s3Config: config.s3)))
        }
        return lines
    }
}
