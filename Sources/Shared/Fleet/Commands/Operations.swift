import Foundation
import HuskimoConnectors
import HuskimoCore
package import Logging

/// The library side of the operator commands: `status`, `requeue`, `ddl`.
package enum Operations {
    /// `status`: prints the fleet's state (text or JSON), refreshing every 2 s with `watch`.
    /// - Returns: 1 while anything is parked or a figure could not be read, else 0.
    package static func status(config: FleetConfig, json: Bool, watch: Bool, logger: Logger) async throws -> Int32 {
        let driver = QueueDriverFactory.make(config, retryWindow: 5, logger: logger)
        defer { driver.close() }
        // Discovery asks the APIs: once per command, not on every refresh of --watch.
        let accounts = await Planning.accountLines(config, logger: logger)
        while true {
            var status = await FleetStatus.collect(config: config, driver: driver)
            status.accounts = accounts
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(status), as: UTF8.self))
            } else {
                if watch { print("\u{1B}[H\u{1B}[2J", terminator: "") }
                print(status.text)
            }
            guard watch else { return status.failedTotal > 0 || status.unreconciledTotal > 0 || !status.problems.isEmpty ? 1 : 0 }
            try await Task.sleep(for: .seconds(2))
        }
    }

    /// `requeue`: moves failed jobs (or a target's failed loads) back and prints what moved.
    package static func requeue(
        config: FleetConfig, filter: Requeue.Filter, loadsOf target: String?, dryRun: Bool, logger: Logger
    )
        async throws
    {
        if let target, config.target(named: target) == nil { throw CommandFailure.usage("no target named \(target)") }
        let topology = FleetTopology(config)
        let driver = QueueDriverFactory.make(config, logger: logger)
        defer { driver.close() }
        let moved: [(id: String, reason: String)]
        do {
            moved = try await Requeue(driver: driver, topology: topology).run(filter, loadsOf: target, dryRun: dryRun)
        } catch {
            throw CommandFailure.failed("requeue failed: \(error)")
        }
        for (id, reason) in moved { print("\(dryRun ? "would requeue" : "requeued") \(id)  (was: \(reason.prefix(120)))") }
        print("\(dryRun ? "would requeue" : "requeued") \(moved.count)")
    }

    /// `ddl`: prints each target's DDL, or applies it (idempotent) with `apply`.
    package static func ddl(config: FleetConfig, target name: String?, apply: Bool) async throws {
        var targets = config.targets
        if let name {
            targets = targets.filter { $0.name == name }
            guard !targets.isEmpty else { throw CommandFailure.usage("no target named \(name)") }
        }
        for target in targets {
            let ddl = target.type.dialect.ddl(schema: target.schema)
            guard apply else {
                print("-- target \(target.name)\n" + ddl)
                continue
            }
            do {
                try await Blocking.run { try PostgresConnection(target.postgresSettings).execute(ddl) }
                print("applied the DDL to \(target.name) (schema \(target.schema))")
            } catch {
                throw CommandFailure.failed("target \(target.name): \(error)")
            }
        }
    }
}
