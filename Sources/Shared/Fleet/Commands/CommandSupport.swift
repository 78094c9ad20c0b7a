import Foundation
import HuskimoConnectors
import HuskimoCore
package import Logging

/// A command that ends with an exit code other than 0: 1 a job or check failed, 2 bad usage or configuration.
/// The message (if any) goes to stderr as `huskimo: message`.
package struct CommandFailure: Error, Sendable {
    package let exitCode: Int32
    package let message: String?

    package static func failed(_ message: String? = nil) -> CommandFailure { CommandFailure(exitCode: 1, message: message) }
    package static func usage(_ message: String? = nil) -> CommandFailure { CommandFailure(exitCode: 2, message: message) }
}

/// What every Huskimo executable does first.
package enum CommandSupport {
    /// Loads the configuration; warnings about obsolete keys go to stderr.
    /// - Throws: ``CommandFailure/usage(_:)`` with every problem and its key path.
    package static func loadConfig(_ path: String) throws -> FleetConfig {
        do {
            let config = try FleetConfig.load(path: path)
            for warning in config.warnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
            return config
        } catch {
            throw CommandFailure.usage("\(error)")
        }
    }

    /// Writes `huskimo: message` to stderr (usage and configuration errors, before the command exits 2).
    package static func complain(_ message: String) {
        FileHandle.standardError.write(Data("huskimo: \(message)\n".utf8))
    }

    /// Bootstraps logging once (stderr, level from `HUSKIMO_LOG_LEVEL`, default info) and returns the logger.
    package static func logger(_ label: String) -> Logger {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = Logger.Level(rawValue: ProcessInfo.processInfo.environment["HUSKIMO_LOG_LEVEL"] ?? "info") ?? .info
            return handler
        }
        return Logger(label: label)
    }
}
