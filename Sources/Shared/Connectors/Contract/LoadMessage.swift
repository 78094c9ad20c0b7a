import Foundation
package import HuskimoCore

/// One staged object of a load.
package struct StagedObject: Sendable, Codable, Hashable {
    package var key: String
    package var rows: Int
    package var bytes: Int
    package var sha256: String

    package init(key: String, rows: Int, bytes: Int, sha256: String) {
        self.key = key
        self.rows = rows
        self.bytes = bytes
        self.sha256 = sha256
    }
}

/// The load message: everything a loader needs to replace one partition of one table with staged objects,
/// and nothing secret. Published once per target.
package struct LoadMessage: Sendable, Codable, Hashable {
    /// 2: a load of one account's share of a partition (`account`); one without stays version 1.
    static let currentVersion = 2
    package var version: Int
    /// Unique per extraction: `job_id` + extraction time.
    package var loadID: String
    package var jobID: String
    package var channel: String
    package var resource: String
    package var table: String
    /// `YYYY-MM-DD` for day partitions, `snapshot` for snapshot tables, `YYYY-MM-DD` of the reporting day for
    /// Singular (appended, not replaced).
    package var partition: String
    package var objects: [StagedObject]
    /// When the extraction started (UTC, ISO 8601): a newer extraction of a partition wins.
    package var extractedAt: String
    /// The staged rows' ``RowDigest`` (replaced partitions only): a re-read with the digest of what is loaded
    /// changed nothing, and the loader skips it. Absent in messages of older workers.
    package var contentDigest: String?
    /// The planner's run the job belonged to: the change reports of one run make one reload pass in `status`.
    package var runID: String?
    /// The one account whose rows of the partition this load replaces (`account_sid`); nil: the whole partition.
    package var account: String?
    package var rows: Int { objects.reduce(0) { $0 + $1.rows } }
    /// What the ledger and the change reports know the partition by: the channel, or `channel/account` for one
    /// account's share (`/` never appears in a channel name).
    package var ledgerChannel: String { account.map { "\(channel)/\($0)" } ?? channel }

    enum CodingKeys: String, CodingKey {
        case version, loadID = "load_id", jobID = "job_id", channel, resource, table, partition, objects
        case extractedAt = "extracted_at", contentDigest = "content_digest", runID = "run_id", account
    }

    package init(
        loadID: String, jobID: String, channel: String, resource: String, table: String, partition: String,
        objects: [StagedObject], extractedAt: String
    ) {
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
    package init(job: ExtractJob, objects: [StagedObject], extractedAt: String, contentDigest: String? = nil) {
        self.init(
            loadID: "\(job.jobID)@\(extractedAt)", jobID: job.jobID, channel: job.channel, resource: job.resource.rawValue,
            table: job.resource.table, partition: job.partition, objects: objects, extractedAt: extractedAt)
        self.contentDigest = contentDigest
        self.runID = job.runID
        self.account = job.account
        if job.account != nil { self.version = 2 }
    }
}

/// A load that cannot succeed as is: a staged object missing or corrupt, a table unknown, a row count off.
package struct LoadError: ClassifiedError {
    package let loadID: String
    package let errorClass: ErrorClass
    package let message: String
    /// The warehouse's SQLSTATE when the warehouse refused the load (a target-wide refusal pauses the loader).
    package var sqlState: String?
    package var description: String { "load \(loadID): \(message)" }

    package init(loadID: String, errorClass: ErrorClass, message: String, sqlState: String? = nil) {
        self.loadID = loadID
        self.errorClass = errorClass
        self.message = message
        self.sqlState = sqlState
    }
}
