public import Foundation

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
    public var rows: Int { objects.reduce(0) { $0 + $1.rows } }

    enum CodingKeys: String, CodingKey {
        case version, loadID = "load_id", jobID = "job_id", channel, resource, table, partition, objects
        case extractedAt = "extracted_at"
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

/// Timestamps as the warehouse and the messages write them.
public enum UTCTime {
    /// `YYYY-MM-DD HH:MM:SS` (the staged-file timestamp format).
    public static func sql(_ date: Date) -> String { RFC2822.format(Int(date.timeIntervalSince1970.rounded(.down))) }

    /// `YYYY-MM-DD HH:MM:SS.mmm`: the staged-file timestamp with milliseconds (Singular's `when_retrieved`).
    public static func sqlMillis(_ date: Date) -> String { iso(date).dropLast().replacingOccurrences(of: "T", with: " ") }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`: sorts as text, keeps milliseconds so extractions in one second differ.
    public static func iso(_ date: Date) -> String {
        let seconds = Int(date.timeIntervalSince1970.rounded(.down))
        let millis = Int((date.timeIntervalSince1970 - Double(seconds)) * 1000)
        return RFC2822.format(seconds).replacingOccurrences(of: " ", with: "T") + String(format: ".%03dZ", millis)
    }

    /// `YYYYMMDDTHHMMSSmmmZ`, for object keys.
    public static func compact(_ date: Date) -> String {
        iso(date).replacingOccurrences(of: "-", with: "").replacingOccurrences(of: ":", with: "").replacingOccurrences(of: ".", with: "")
    }
}
