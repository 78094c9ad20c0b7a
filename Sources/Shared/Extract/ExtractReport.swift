public import Foundation

/// What an extraction did, besides staging: the load message to publish and the figures for logs and metrics.
public struct ExtractReport: Sendable {
    public var load: LoadMessage
    public var records: Int
    public var tally: APIClient.Tally
    /// Records whose partition day is not the job's (or is null).
    public var outsidePartition: Int
    /// The accounts extracted (a parent and its subaccounts; empty for Singular).
    public var accounts: [String]
    public var stagedBytes: Int { load.objects.reduce(0) { $0 + $1.bytes } }
}

extension ExtractJob {
    /// The staged objects' key prefix of one extraction: `<folder>/<table>/<channel>/<partition>/<time>-<nonce>`
    /// (unique per extraction, so a retry never overwrites what an earlier attempt staged).
    public func stagingPrefix(folder: String, now: Date) -> String {
        let nonce = String(format: "%08x", UInt32.random(in: 0...UInt32.max))
        return [folder, resource.table, channel, partition, "\(UTCTime.compact(now))-\(nonce)"]
            .filter { !$0.isEmpty }.joined(separator: "/")
    }

    /// The load message of this job's staged objects.
    public func loadMessage(objects: [StagedObject], extractedAt: String) -> LoadMessage {
        LoadMessage(loadID: "\(jobID)@\(extractedAt)", jobID: jobID, channel: channel, resource: resource.rawValue,
                    table: resource.table, partition: partition, objects: objects, extractedAt: extractedAt)
    }
}
