import Foundation
public import HuskimoCore

/// One staged object of a load.
public struct StagedObject: Sendable, Codable, Hashable {
    public var key: String
    public var rows: Int
    public var bytes: Int
    public var sha256: String
}

/// The load message: everything a loader needs to replace one partition of one table with staged objects,
/// and nothing secret. Published once per target.
public struct LoadMessage: Sendable, Codable, Hashable {
    public static let currentVersion = 1
    public var version: Int
    /// Unique per extraction: `job_id` + extraction time.
    public var loadID: String
    public var jobID: String
    public var channel: String
    public var resource: String
    public var table: String
    /// `YYYY-MM-DD` for day partitions, `snapshot` for snapshot tables, `YYYY-MM-DD` of the reporting day for
    /// Singular (appended, not replaced).
    public var partition: String
    public var objects: [StagedObject]
    /// When the extraction started (UTC, ISO 8601): a newer extraction of a partition wins.
    public var extractedAt: String
    /// The staged rows' ``RowDigest`` (replaced partitions only): a re-read with the digest of what is loaded
    /// changed nothing, and the loader skips it. Absent in messages of older workers.
    public var contentDigest: String?
    /// The planner's run the job belonged to: the change reports of one run make one reload pass in `status`.
    public var runID: String?
    public var rows: Int { objects.reduce(0) { $0 + $1.rows } }

    enum CodingKeys: String, CodingKey {
        case version, loadID = "load_id", jobID = "job_id", channel, resource, table, partition, objects
        case extractedAt = "extracted_at", contentDigest = "content_digest", runID = "run_id"
    }

    public init(loadID: String, jobID: String, channel: String, resource: String, table: String, partition: String,
                objects: [StagedObject], extractedAt: String) {
        self.version = LoadMessage.currentVersion
        self.loadID = loadID
        self.jobID = jobID
        self.channel = channel
        self.resource = resource
        self.table = table
        self.partition = partition
        self.objects = objects
        self.extractedAt = extractedAt
    }
}

extension LoadMessage {
    /// The load message of a job's staged objects.
    public init(job: ExtractJob, objects: [StagedObject], extractedAt: String, contentDigest: String? = nil) {
        self.init(loadID: "\(job.jobID)@\(extractedAt)", jobID: job.jobID, channel: job.channel, resource: job.resource.rawValue,
                  table: job.resource.table, partition: job.partition, objects: objects, extractedAt: extractedAt)
        self.contentDigest = contentDigest
        self.runID = job.runID
    }
}

/// A load that cannot succeed as is: a staged object missing or corrupt, a table unknown, a row count off.
public struct LoadError: ClassifiedError {
    public let loadID: String
    public let errorClass: ErrorClass
    public let message: String
    /// The warehouse's SQLSTATE when the warehouse refused the load (a target-wide refusal pauses the loader).
    public var sqlState: String?
    public var description: String { "load \(loadID): \(message)" }

    public init(loadID: String, errorClass: ErrorClass, message: String, sqlState: String? = nil) {
        self.loadID = loadID
        self.errorClass = errorClass
        self.message = message
        self.sqlState = sqlState
    }
}
