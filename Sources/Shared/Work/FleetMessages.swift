import Foundation

/// Encoding and decoding of the fleet's messages, and the headers of parked (failed) ones.
public enum FleetMessages {
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }()

    public static func encode<T: Encodable>(_ value: T) -> [UInt8] { Array((try? encoder.encode(value)) ?? Data()) }

    public static func decodeJob(_ body: [UInt8]) throws -> ExtractJob {
        let job = try JSONDecoder().decode(ExtractJob.self, from: Data(body))
        guard job.version <= ExtractJob.currentVersion else {
            throw JobError(jobID: job.jobID, errorClass: .permanent, message: "job version \(job.version) is newer than this worker understands")
        }
        return job
    }

    public static func decodeLoad(_ body: [UInt8]) throws -> LoadMessage {
        let load = try JSONDecoder().decode(LoadMessage.self, from: Data(body))
        guard load.version <= LoadMessage.currentVersion else {
            throw LoadError(loadID: load.loadID, errorClass: .permanent, message: "load message version \(load.version) is newer than this loader understands")
        }
        return load
    }

    /// Headers of a parked message: why it failed, in a form `status` and `requeue` read back.
    public static func failureHeaders(errorClass: ErrorClass, message: String, channel: String?, resource: String?, day: String?,
                                      attempts: Int, id: String?) -> AMQPTable {
        var headers: AMQPTable = [
            "x-error-class": .string(errorClass.rawValue),
            "x-error-message": .string(String(message.prefix(2000))),
            "x-attempts": .int(Int64(attempts)),
            "x-failed-at": .string(UTCTime.iso(Date())),
        ]
        if let channel { headers["x-channel"] = .string(channel) }
        if let resource { headers["x-resource"] = .string(resource) }
        if let day { headers["x-day"] = .string(day) }
        if let id { headers["x-id"] = .string(id) }
        return headers
    }
}
