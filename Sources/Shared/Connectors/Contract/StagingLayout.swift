import Foundation
import HuskimoCore

/// Where staged objects live in the bucket, in one place: what extract workers write, what loaders read, mark and
/// delete.
///
/// - `<folder>/<table>/<channel>/<partition>/<time>-<nonce>-NNNN.tsv.gz`: one extraction's objects (the prefix is
///   unique per extraction, so a retry never overwrites what an earlier attempt staged).
/// - `<folder>/_loaded/<sha256(load id)>/<target>`: an empty marker per target that has loaded a load's objects.
/// - `<folder>/_manifests/<sha256(load id)>.manifest`: a Redshift COPY manifest, deleted after its COPY.
package struct StagingLayout: Sendable, Hashable {
    /// The configured folder (`s3.folder_path`) without leading or trailing slashes; empty: the bucket's root.
    package let folder: String

    package init(folder: String) { self.folder = folder }

    private func join(_ parts: [String]) -> String { parts.filter { !$0.isEmpty }.joined(separator: "/") }

    /// The key prefix of one extraction of `job` started at `time`.
    func extractionPrefix(_ job: ExtractJob, at time: Date) -> String {
        let nonce = String(format: "%08x", UInt32.random(in: 0...UInt32.max))
        return join([folder, job.resource.table, job.channel, job.partition, "\(UTCTime.compact(time))-\(nonce)"])
    }

    /// The `index`-th object of an extraction.
    func objectKey(prefix: String, index: Int) -> String { "\(prefix)-\(String(format: "%04d", index)).tsv.gz" }

    /// The folder of a load's loaded-by markers (ends without a slash).
    package func loadedMarkers(loadID: String) -> String {
        join([folder, "_loaded", Digest.sha256Hex(Array(loadID.utf8))])
    }

    /// The marker that `target` has loaded `loadID`.
    package func loadedMarker(loadID: String, target: String) -> String { "\(loadedMarkers(loadID: loadID))/\(target)" }

    /// The Redshift manifest of a load.
    package func manifestKey(loadID: String) -> String {
        join([folder, "_manifests", "\(Digest.sha256Hex(Array(loadID.utf8))).manifest"])
    }
}
