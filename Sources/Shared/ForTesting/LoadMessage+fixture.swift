import Foundation
package import HuskimoConnectors
import HuskimoCore

extension LoadMessage {
    /// A load message as an extract worker writes it, for tests that do not stage real objects: one object per entry
    /// of `rows`, keyed under the job's own extraction in `folder` (what the loader's message check requires), with
    /// stand-in digests.
    package static func fixture(job: ExtractJob, folder: String, rows: [Int], extractedAt: String, bytes: Int = 10) -> LoadMessage {
        let layout = StagingLayout(folder: folder)
        let prefix = layout.extractionPrefix(
            table: job.resource.table, channel: job.channel, partition: job.partition, extractedAt: extractedAt, nonce: 0xabcd)
        let objects = rows.enumerated().map { index, count in
            StagedObject(
                key: layout.objectKey(prefix: prefix, index: index), rows: count, bytes: bytes,
                sha256: String(repeating: "0", count: 63) + String(index % 10))
        }
        return LoadMessage(job: job, objects: objects, extractedAt: extractedAt)
    }
}

extension ExtractJob {
    /// A run id of the planner's form (`YYYYMMDDTHHMMSSmmmZ`), an hour before now.
    package static var fixtureRunID: String { UTCTime.compact(Date(timeIntervalSinceNow: -3600)) }
}
