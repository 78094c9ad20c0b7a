import Foundation
import HuskimoCore

/// Where staged objects live in the bucket, in one place: what extract workers write, what loaders read, mark and
/// delete.
///
/// - `<folder>/<table>/<channel>/<partition>/<time>-<nonce>-NNNN.tsv.gz`: one extraction's objects (the prefix is
///   unique per extraction, so a retry never overwrites what an earlier attempt staged).
/// - `<folder>/_loaded/<sha256(load id)>/<target>`: an empty marker per target that has loaded a load's objects.
/// - `<folder>/_manifests/<sha256(target, load id)>.manifest`: a Redshift COPY manifest, deleted after its COPY.
package struct StagingLayout: Sendable, Hashable {
    /// The configured folder (`s3.folder_path`) without leading or trailing slashes; empty: the bucket's root.
    package let folder: String

    package init(folder: String) { self.folder = folder }

    private func join(_ parts: [String]) -> String { parts.filter { !$0.isEmpty }.joined(separator: "/") }

    /// The key prefix of one extraction of `job` started at `time`.
    func extractionPrefix(_ job: ExtractJob, at time: Date) -> String {
        extractionPrefix(
            table: job.resource.table, channel: job.channel, partition: job.partition, extractedAt: UTCTime.iso(time),
            nonce: UInt32.random(in: 0...UInt32.max))
    }

    /// The key prefix of the extraction of (table, channel, partition) started at `extractedAt` (an ``UTCTime/iso(_:)``
    /// text), told apart from others of the same instant by `nonce`. ``isObjectKey(_:table:channel:partition:extractedAt:)``
    /// reads this format back.
    package func extractionPrefix(table: String, channel: String, partition: String, extractedAt: String, nonce: UInt32) -> String {
        join([folder, table, channel, partition, "\(StagingLayout.stamp(extractedAt))-\(String(format: "%08x", nonce))"])
    }

    /// Where every extraction of one (table, channel, partition) is staged (no trailing slash).
    package func partitionPrefix(table: String, channel: String, partition: String) -> String {
        join([folder, table, channel, partition])
    }

    /// Whether `key` is an object of the extraction started at `extractedAt` (an ``UTCTime/iso(_:)`` text) of that
    /// (table, channel, partition): `<partition prefix>/<compact time>-<8 hex>-<index>.tsv.gz`, as
    /// ``extractionPrefix(_:at:)`` and ``objectKey(prefix:index:)`` write it. What a load message names is checked
    /// against this before anything is copied or deleted: a key elsewhere in the bucket is never the loader's to touch.
    package func isObjectKey(_ key: String, table: String, channel: String, partition: String, extractedAt: String) -> Bool {
        let head = partitionPrefix(table: table, channel: channel, partition: partition) + "/"
        guard key.utf8.starts(with: head.utf8) else { return false }  // bytes: S3 does not normalise
        let name = Array(key.utf8.dropFirst(head.utf8.count))
        let stampBytes = Array(StagingLayout.stamp(extractedAt).utf8)
        // <stamp>-<8 hex>-<4+ digits>.tsv.gz
        guard name.count >= stampBytes.count + 1 + 8 + 1 + 4 + 7, name.starts(with: stampBytes) else { return false }
        var rest = name[stampBytes.count...]
        guard rest.first == UInt8(ascii: "-") else { return false }
        rest = rest.dropFirst()
        let isHex: (UInt8) -> Bool = { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
        guard rest.prefix(8).count == 8, rest.prefix(8).allSatisfy(isHex) else { return false }
        rest = rest.dropFirst(8)
        guard rest.first == UInt8(ascii: "-") else { return false }
        rest = rest.dropFirst()
        let suffix = Array(".tsv.gz".utf8)
        guard rest.count > suffix.count, rest.suffix(suffix.count).elementsEqual(suffix) else { return false }
        let digits = rest.dropLast(suffix.count)
        return (4...9).contains(digits.count) && digits.allSatisfy { $0 >= 48 && $0 <= 57 }
    }

    /// An extraction time in keys: its ``UTCTime/iso(_:)`` text without `-`, `:` and `.` (``UTCTime/compact(_:)`` of
    /// the same instant).
    private static func stamp(_ extractedAt: String) -> String { extractedAt.filter { $0 != "-" && $0 != ":" && $0 != "." } }

    /// The `index`-th object of an extraction.
    package func objectKey(prefix: String, index: Int) -> String { "\(prefix)-\(String(format: "%04d", index)).tsv.gz" }

    /// The folder of a load's loaded-by markers (ends without a slash).
    package func loadedMarkers(loadID: String) -> String {
        join([folder, "_loaded", Digest.sha256Hex(Array(loadID.utf8))])
    }

    /// The marker that `target` has loaded `loadID`.
    package func loadedMarker(loadID: String, target: String) -> String { "\(loadedMarkers(loadID: loadID))/\(target)" }

    /// The Redshift manifest of a load into `target`: one per target, so two Redshift targets loading the same batch
    /// never put, COPY and delete one another's manifest.
    package func manifestKey(loadID: String, target: String) -> String {
        join([folder, "_manifests", "\(Digest.sha256Hex(Array("\(target)\u{0}\(loadID)".utf8))).manifest"])
    }
}
