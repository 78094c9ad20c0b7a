import Foundation
package import HuskimoCore

/// One unit of work: a (channel, resource, day) or a (channel, snapshot resource), or one account's share of a day of a
/// channel that reads several (Twilio's subaccounts: `account`). Carries no credentials: workers resolve the channel
/// against their own configuration.
package struct ExtractJob: Sendable, Codable, Hashable {
    /// 2: a job of one account (`account`); a job without one stays version 1, which workers before it understand.
    static let currentVersion = 2
    package var version: Int
    package var jobID: String
    package var runID: String
    package var channel: String
    package var resource: Resource
    package var day: Day?
    package var attempt: Int
    package var plannedAt: String
    /// The one account of the channel this job reads (nil: every account the channel reads).
    package var account: String?

    enum CodingKeys: String, CodingKey {
        case version, jobID = "job_id", runID = "run_id", channel, resource, day, attempt, plannedAt = "planned_at", account
    }

    package init(
        runID: String, channel: String, resource: Resource, day: Day?, attempt: Int = 0, plannedAt: String, account: String? = nil
    ) {
        self.version = account == nil ? 1 : 2
        self.account = account
        self.jobID = ExtractJob.id(channel: channel, resource: resource, day: day, account: account)
        self.runID = runID
        self.channel = channel
        self.resource = resource
        self.day = day
        self.attempt = attempt
        self.plannedAt = plannedAt
    }

    /// Deterministic: `twilio/acme-us/calls/2026-11-28`, `twilio/acme-us/incoming_phone_numbers/snapshot`, one account's
    /// `twilio/acme-us/calls/2026-11-28/AC…`.
    package static func id(channel: String, resource: Resource, day: Day?, account: String? = nil) -> String {
        "\(resource.channelType.rawValue)/\(channel)/\(resource.rawValue)/\(day?.description ?? "snapshot")"
            + (account.map { "/\($0)" } ?? "")
    }

    /// Whether `text` can be an account in a job (it goes into ids, object keys and SQL parameters): 1–64 ASCII
    /// letters and digits. Which accounts a channel really reads, its connector checks.
    package static func isAccount(_ text: String) -> Bool {
        (1...64).contains(text.utf8.count) && text.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 | 0x20 >= 97 && $0 | 0x20 <= 122) }
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
