import Foundation
import HuskimoCore

/// Encoding and decoding of the fleet's messages (extract jobs, load messages): versioned JSON, refused with a
/// permanent error when a message is newer than this process understands.
package enum MessageCodec {
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }()

    package static func encode<T: Encodable>(_ value: T) -> [UInt8] { Array((try? encoder.encode(value)) ?? Data()) }

    /// The largest attempt number a job may carry (a queue's `max_attempts` is at most 100).
    static let maxAttempt = 1000

    /// - Throws: a permanent error for a body over 64 KiB, bad JSON, a version newer than this worker's, an attempt
    ///   number out of range, or a job id that does not match its channel, resource and day.
    package static func decodeJob(_ body: [UInt8]) throws -> ExtractJob {
        guard body.count <= 64 << 10 else {
            throw JobError(jobID: "?", errorClass: .permanent, message: "an extract job of \(body.count) bytes (at most 64 KiB)")
        }
        let job: ExtractJob
        do {
            job = try JSONDecoder().decode(ExtractJob.self, from: Data(body))
        } catch {
            throw JobError(jobID: "?", errorClass: .permanent, message: "not an extract job: \(describe(error))")
        }
        guard (1...ExtractJob.currentVersion).contains(job.version) else {
            throw JobError(
                jobID: job.jobID, errorClass: .permanent,
                message: "job version \(job.version) is not one this worker understands (1–\(ExtractJob.currentVersion))")
        }
        guard (0...maxAttempt).contains(job.attempt) else {
            throw JobError(jobID: job.jobID, errorClass: .permanent, message: "attempt \(job.attempt) is out of range (0–\(maxAttempt))")
        }
        if let account = job.account, !ExtractJob.isAccount(account) {
            throw JobError(
                jobID: String(job.jobID.prefix(200)), errorClass: .permanent, message: "account is not 1–64 ASCII letters and digits")
        }
        guard job.jobID == ExtractJob.id(channel: job.channel, resource: job.resource, day: job.day, account: job.account) else {
            throw JobError(
                jobID: String(job.jobID.prefix(200)), errorClass: .permanent,
                message: "job id does not match its channel, resource, day and account")
        }
        guard UTCTime.date(compact: job.runID) != nil else {
            throw JobError(jobID: job.jobID, errorClass: .permanent, message: "run_id is not a run id (YYYYMMDDTHHMMSSmmmZ)")
        }
        guard job.resource.isSnapshot == (job.day == nil) else {
            throw JobError(
                jobID: job.jobID, errorClass: .permanent,
                message: job.day == nil ? "\(job.resource.rawValue) needs a day" : "\(job.resource.rawValue) is a snapshot: no day")
        }
        return job
    }

    package static func decodeLoad(_ body: [UInt8]) throws -> LoadMessage {
        guard body.count <= 16 << 20 else {
            throw LoadError(loadID: "?", errorClass: .permanent, message: "a load message of \(body.count) bytes (at most 16 MiB)")
        }
        let load: LoadMessage
        do {
            load = try JSONDecoder().decode(LoadMessage.self, from: Data(body))
        } catch {
            throw LoadError(loadID: "?", errorClass: .permanent, message: "not a load message: \(describe(error))")
        }
        guard load.version <= LoadMessage.currentVersion else {
            throw LoadError(
                loadID: load.loadID, errorClass: .permanent,
                message: "load message version \(load.version) is newer than this loader understands")
        }
        func refuse(_ what: String) -> LoadError {
            LoadError(loadID: String(load.loadID.prefix(200)), errorClass: .permanent, message: "load message: \(what)")
        }
        // Bounded as the ledger's columns are, so a hostile message fails here, named, not in the warehouse.
        for (name, value, limit) in [
            ("load_id", load.loadID, 1100), ("job_id", load.jobID, 1024), ("channel", load.channel, 512),
            ("run_id", load.runID ?? "", 64), ("content_digest", load.contentDigest ?? "", 64),
        ]
        where value.utf8.count > limit {
            throw refuse("\(name) of \(value.utf8.count) bytes (at most \(limit))")
        }
        guard load.partition == "snapshot" || Day(load.partition) != nil else {
            throw refuse("partition \(load.partition.prefix(40)) is neither a day nor snapshot")
        }
        guard UTCTime.isISO(load.extractedAt) else {
            throw refuse("extracted_at \(load.extractedAt.prefix(40)) is not an ISO 8601 UTC time")
        }
        guard load.contentDigest.map({ $0.allSatisfy { $0.isHexDigit || $0 == ":" } }) ?? true else {
            throw refuse("content_digest is not rows:sum in hex")
        }
        return load
    }

    /// A decoding error in a line: what was wrong and where (the key path), never the message body itself.
    static func describe(_ error: any Error) -> String {
        guard let decoding = error as? DecodingError else { return "\(type(of: error))" }
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch decoding {
        case .keyNotFound(let key, let context): return "\(path(context).isEmpty ? "" : path(context) + ".")\(key.stringValue) is missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context): return "\(path(context)): \(context.debugDescription)"
        case .dataCorrupted(let context): return path(context).isEmpty ? "not valid JSON" : "\(path(context)): \(context.debugDescription)"
        @unknown default: return "undecodable"
        }
    }
}
