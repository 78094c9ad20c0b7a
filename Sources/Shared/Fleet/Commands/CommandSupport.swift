import Foundation
public import Logging
import HuskimoCore
import HuskimoConnectors

/// A command that ends with an exit code other than 0: 1 a job or check failed, 2 bad usage or configuration.
/// The message (if any) goes to stderr as `huskimo: message`.
public struct CommandFailure: Error, Sendable {
    public let exitCode: Int32
    public let message: String?

    public static func failed(_ message: String? = nil) -> CommandFailure { CommandFailure(exitCode: 1, message: message) }
    public static func usage(_ message: String? = nil) -> CommandFailure { CommandFailure(exitCode: 2, message: message) }
}

/// What every Huskimo executable does first.
public enum CommandSupport {
    /// Loads the configuration; warnings about obsolete keys go to stderr.
    /// - Throws: ``CommandFailure/usage(_:)`` with every problem and its key path.
    public static func loadConfig(_ path: String) throws -> FleetConfig {
        do {
            let config = try FleetConfig.load(path: path)
            for warning in config.warnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
            return config
        } catch {
            throw CommandFailure.usage("\(error)")
        }
    }

    /// Writes `huskimo: message` to stderr (usage and configuration errors, before the command exits 2).
    public static func complain(_ message: String) {
        FileHandle.standardError.write(Data("huskimo: \(message)\n".utf8))
    }

    /// Bootstraps logging once (stderr, level from `HUSKIMO_LOG_LEVEL`, default info) and returns the logger.
    public static func logger(_ label: String) -> Logger {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = Logger.Level(rawValue: ProcessInfo.processInfo.environment["HUSKIMO_LOG_LEVEL"] ?? "info") ?? .info
            return handler
        }
        return Logger(label: label)
    }
}
