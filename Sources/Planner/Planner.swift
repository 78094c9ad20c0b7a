import ArgumentParser
import Foundation
import Shared

@main
struct Planner: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "huskimo-planner",
        abstract: "Plans Huskimo extract jobs and operates the fleet.",
        subcommands: [ConfigCommand.self, DDLCommand.self])
}

/// Exit codes of every Huskimo command: 0 success, 1 a job or check failed, 2 bad usage or configuration.
enum ExitCodes {
    static let failed = ExitCode(1)
    static let badConfig = ExitCode(2)
}

/// Loads the configuration or exits 2 with every problem and its key path.
func loadConfig(_ path: String) throws -> FleetConfig {
    do {
        let config = try FleetConfig.load(path: path)
        for warning in config.warnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
        return config
    } catch let error as ConfigError {
        FileHandle.standardError.write(Data("huskimo: \(error)\n".utf8))
        throw ExitCodes.badConfig
    }
}

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Validates the configuration and prints it with every secret redacted.")

    @Option(help: "Path to the YAML configuration.") var config: String

    func run() throws {
        let loaded = try loadConfig(config)
        print(loaded.redactedDescription)
    }
}

struct DDLCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ddl",
        abstract: "Prints the warehouse DDL for each target (or one flavor), or applies it idempotently with --apply.")

    @Option(help: "Path to the YAML configuration.") var config: String?
    @Option(help: "Only this target.") var target: String?
    @Option(help: "Print the DDL of a flavor (postgres | redshift) without a configuration.") var flavor: String?
    @Flag(help: "Apply the DDL to the targets (idempotent).") var apply = false

    func run() throws {
        if let flavor {
            guard let kind = WarehouseSchema.Flavor(rawValue: flavor) else {
                FileHandle.standardError.write(Data("huskimo: --flavor must be postgres or redshift\n".utf8))
                throw ExitCodes.badConfig
            }
            print(WarehouseSchema.ddl(kind, schema: "huskimo"), terminator: "")
            return
        }
        guard let config else {
            FileHandle.standardError.write(Data("huskimo: give --config (or --flavor)\n".utf8))
            throw ExitCodes.badConfig
        }
        let loaded = try loadConfig(config)
        var targets = loaded.targets
        if let target {
            targets = targets.filter { $0.name == target }
            guard !targets.isEmpty else {
                FileHandle.standardError.write(Data("huskimo: no target named \(target)\n".utf8))
                throw ExitCodes.badConfig
            }
        }
        for t in targets {
            let ddl = WarehouseSchema.ddl(t.type == .redshift ? .redshift : .postgres, schema: t.schema)
            guard apply else {
                print("-- target \(t.name)\n" + ddl)
                continue
            }
            do {
                try PostgresConnection(t.postgresSettings).execute(ddl)
                print("applied the DDL to \(t.name) (schema \(t.schema))")
            } catch {
                FileHandle.standardError.write(Data("huskimo: target \(t.name): \(error)\n".utf8))
                throw ExitCodes.failed
            }
        }
    }
}
