import Foundation
public import Logging

/// What every Huskimo executable does first.
public enum CommandSupport {
    /// Loads the configuration; on a bad file prints every problem (with key paths) to stderr and returns nil,
    /// so the command exits 2. Warnings about obsolete keys go to stderr too.
    public static func loadConfig(_ path: String) -> FleetConfig? {
        do {
            let config = try FleetConfig.load(path: path)
            for warning in config.warnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
            return config
        } catch {
            complain("\(error)")
            return nil
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
