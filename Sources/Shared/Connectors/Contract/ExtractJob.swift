import Foundation
package import HuskimoCore

/// One unit of work: a (channel, resource, day) or a (channel, snapshot resource). Carries no credentials:
/// workers resolve the channel against their own configuration.
package struct ExtractJob: Sendable, Codable, Hashable {
    static let currentVersion = 1
    package var version: Int
    package var jobID: String
    package var runID: String
    package var channel: String
    package var resource: Resource
    package var day: Day?
    package var attempt: Int
    package var plannedAt: String

    enum CodingKeys: String, CodingKey {
        case version, jobID = "job_id", runID = "run_id", channel, resource, day, attempt, plannedAt = "planned_at"
    }

    package init(runID: String, channel: String, resource: Resource, day: Day?, attempt: Int = 0, plannedAt: String) {
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
    package static func id(channel: String, resource: Resource, day: Day?) -> String {
        "\(resource.channelType.rawValue)/\(channel)/\(resource.rawValue)/\(day?.description ?? "snapshot")"
    }

    /// The partition label of its load.
    package var partition: String { day?.description ?? "snapshot" }
}

/// A job that failed, with the context an operator needs: what, where, why, and whether retrying can help.
package struct JobError: ClassifiedError {
    package let jobID: String
    package let errorClass: ErrorClass
    package let message: String
    package var description: String { "\(jobID): \(message)" }

    package init(jobID: String, errorClass: ErrorClass, message: String) {
        self.jobID = jobID
        self.errorClass = errorClass
        self.message = message
    }

    package init(_ job: ExtractJob, _ error: any Error) {
        self.jobID = job.jobID
        self.errorClass = ErrorClass.of(error)
        self.message = (error as? any ClassifiedError)?.description ?? "\(error)"
    }
}
