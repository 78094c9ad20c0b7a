import Foundation

/// Extract resources and their tables.
public enum Resource: String, Sendable, Codable, CaseIterable {
    case calls, messages, recordings
    case incomingPhoneNumbers = "incoming_phone_numbers"
    case pricingPhoneNumbers = "pricing_phone_numbers"
    case campaigns, creatives

    public var channelType: ChannelConfig.Kind {
        switch self {
        case .campaigns, .creatives: return .singular
        default: return .twilio
        }
    }

    /// Snapshot resources have one job per channel, no day.
    public var isSnapshot: Bool { self == .incomingPhoneNumbers || self == .pricingPhoneNumbers }

    public var table: String {
        switch self {
        case .calls: return "twilio_calls"
        case .messages: return "twilio_messages"
        case .recordings: return "twilio_recordings"
        case .incomingPhoneNumbers: return "twilio_incoming_phone_numbers"
        case .pricingPhoneNumbers: return "twilio_pricing_phone_numbers"
        case .campaigns: return "singular_campaigns"
        case .creatives: return "singular_creatives"
        }
    }

    public var twilioTable: TwilioTable? {
        switch self {
        case .calls: return .calls
        case .messages: return .messages
        case .recordings: return .recordings
        case .incomingPhoneNumbers: return .incomingPhoneNumbers
        default: return nil
        }
    }

    /// The 2010 API list path and its date filter.
    var twilioList: (path: String, filter: String?)? {
        switch self {
        case .calls: return ("Calls.json", "StartTime")
        case .messages: return ("Messages.json", "DateSent")
        case .recordings: return ("Recordings.json", "DateCreated")
        case .incomingPhoneNumbers: return ("IncomingPhoneNumbers.json", nil)
        default: return nil
        }
    }
}

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
public struct JobError: ClassifiedError, Sendable {
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
        if let classified = error as? any ClassifiedError {
            self.errorClass = classified.errorClass
            self.message = classified.description
        } else {
            self.errorClass = .transient
            self.message = "\(error)"
        }
    }
}
