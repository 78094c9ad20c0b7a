import Foundation
import HuskimoConnectors
import HuskimoCore
import Logging

/// The headers of a parked (failed) message: why it failed, in a form `status` and `requeue` read back. The one
/// place their names are written.
struct ParkedHeaders: Sendable, Hashable {
    package var errorClass: String
    package var message: String
    package var channel: String?
    package var resource: String?
    package var day: String?
    package var attempts: Int
    package var id: String?
    var failedAt: String?

    package init(
        errorClass: ErrorClass, message: String, channel: String?, resource: String?, day: String?, attempts: Int,
        id: String?, failedAt: Date = Date()
    ) {
        self.errorClass = errorClass.rawValue
        self.message = String(message.prefix(2000))
        self.channel = channel
        self.resource = resource
        self.day = day
        self.attempts = attempts
        self.id = id
        self.failedAt = UTCTime.iso(failedAt)
    }

    /// Reads the headers of a parked delivery; absent ones are nil (`unknown` class, empty message).
    package init(_ table: AMQPTable) {
        errorClass = table["x-error-class"]?.stringValue ?? "unknown"
        message = table["x-error-message"]?.stringValue ?? ""
        channel = table["x-channel"]?.stringValue
        resource = table["x-resource"]?.stringValue
        day = table["x-day"]?.stringValue
        attempts = Int(table["x-attempts"]?.intValue ?? 0)
        id = table["x-id"]?.stringValue
        failedAt = table["x-failed-at"]?.stringValue
    }

    package var table: AMQPTable {
        var headers: AMQPTable = [
            "x-error-class": .string(errorClass),
            "x-error-message": .string(message),
            "x-attempts": .int(Int64(attempts)),
        ]
        if let failedAt { headers["x-failed-at"] = .string(failedAt) }
        if let channel { headers["x-channel"] = .string(channel) }
        if let resource { headers["x-resource"] = .string(resource) }
        if let day { headers["x-day"] = .string(day) }
        if let id { headers["x-id"] = .string(id) }
        return headers
    }
}

/// Moves a message that will not succeed to its failed queue, with ``ParkedHeaders``: the one parking path of
/// both workers.
struct Parking: Sendable {
    let driver: any QueueDriver
    let exchange: String
    /// The failed queue (its name is also its routing key).
    let queue: String
    /// `job` or `load`: names the message in logs.
    let noun: String
    let logger: Logger
    /// Stamped on every log line (the loader's target).
    var metadata: Logger.Metadata = [:]

    /// Publishes `body` to the failed queue. - Returns: false when it could not be published: then the caller
    /// must not ack the delivery (the broker keeps it, and nothing is lost).
    func park(_ body: [UInt8], headers: ParkedHeaders) async -> Bool {
        do {
            try await driver.publish([
                AMQPMessage(
                    exchange: exchange, routingKey: queue, body: body, headers: headers.table,
                    messageID: headers.id)
            ])
        } catch {
            logger.error(
                "cannot park a failed \(noun); it stays on the queue",
                metadata: metadata.merging([LogKey.id(noun): "\(headers.id ?? "?")", "error": "\(error)"]) { $1 })
            return false
        }
        logger.error(
            "\(noun) failed",
            metadata: metadata.merging([
                LogKey.id(noun): "\(headers.id ?? "?")", "error.class": "\(headers.errorClass)", "error": "\(headers.message)",
                "messaging.destination.name": "\(queue)",
            ]) { $1 })
        return true
    }
}

/// Log metadata keys used in more than one place.
enum LogKey {
    /// `job.id` or `load.id`.
    static func id(_ noun: String) -> String { "\(noun).id" }
}
