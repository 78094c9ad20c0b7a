import Foundation
import HuskimoCore

/// Encoding and decoding of the fleet's messages (extract jobs, load messages): versioned JSON, refused with a
/// permanent error when a message is newer than this process understands.
public enum MessageCodec {
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
}
