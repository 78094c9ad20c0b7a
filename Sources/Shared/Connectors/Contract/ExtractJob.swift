import Foundation
public import HuskimoCore

/// One unit of work: a (channel, resource, day) or a (channel, snapshot resource). Carries no credentials:
/// workers resolve the channel against their own configuration.
public struct ExtractJob: Sendable, Codable, Hashable {
    public static let currentVersion = 1
    public var version: Int
    public var jobID: String
    public var runID: String
    public var channel: String
    public var resource: Resource
    public var day: Day?
    public var attempt: Int
    public var plannedAt: String

    enum CodingKeys: String, CodingKey {
        case version, jobID = "job_id", runID = "run_id", channel, resource, day, attempt, plannedAt = "planned_at"
    }

    public init(runID: String, channel: String, resource: Resource, day: Day?, attempt: Int = 0, plannedAt: String) {
        self.version = ExtractJob.currentVersion
        self.jobID = ExtractJob.id(channel: channel, resource: resource, day: day)
        self.runID = runID
        self.channel = channel
        self.resource = resource
        self.day = day
        self.attempt = attempt
        self.plannedAt = plannedAt
    }

    /// Deterministic: `twilio/acme-us/calls/2026-11-28`, `twilio/acme-us/incoming_phone_numbers/snapshot`.
    public static func id(channel: String, resource: Resource, day: Day?) -> String {
        "\(resource.channelType.rawValue)/\(channel)/\(resource.rawValue)/\(day?.description ?? "snapshot")"
    }

    /// The partition label of its load.
    public var partition: String { day?.description ?? "snapshot" }
}

/// A job that failed, with the context an operator needs: what, where, why, and whether retrying can help.
public struct JobError: ClassifiedError {
    public let jobID: String
    public let errorClass: ErrorClass
    public let message: String
    public var description: String { "\(jobID): \(message)" }

    public init(jobID: String, errorClass: ErrorClass, message: String) {
        self.jobID = jobID
        self.errorClass = errorClass
        self.message = message
    }

    public init(_ job: ExtractJob, _ error: any Error) {
        self.jobID = job.jobID
        self.errorClass = ErrorClass.of(error)
        self.message = (error as? any ClassifiedError)?.description ?? "\(error)"
    }
}
