import ArgumentParser
import Foundation
import Shared

@main
struct Planner: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "huskimo-planner",
        abstract: "Plans Huskimo extract jobs and operates the fleet.",
        subcommands: [ConfigCommand.self])
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
