import HuskimoConnectors
import HuskimoCore
import Logging

/// Deletes staged objects once every target has loaded them: each loader leaves an empty marker
/// (``StagingLayout/loadedMarker(loadID:target:)``); the loader that completes the set deletes the objects and
/// the markers. Blocking.
struct StagingJanitor: Sendable {
    let s3: S3Client
    let layout: StagingLayout
    let targets: [String]
    let logger: Logger

    package init(s3: S3Client, layout: StagingLayout, targets: [String], logger: Logger) {
        self.s3 = s3
        self.layout = layout
        self.targets = targets
        self.logger = logger
    }

    /// Notes that `target` has loaded `loads` and deletes what every target has now loaded, in one DeleteObjects
    /// request per 1,000 keys. A fleet with one target needs no markers: its loader is the last to load, so the
    /// batch's objects go at once (one request per batch, not three per load). Best effort: leftover objects cost
    /// storage, never correctness (the ledger, not S3, says what was loaded).
    func markLoaded(_ loads: [LoadMessage], by target: String) {
        guard !loads.isEmpty else { return }
        var doomed: [String] = []
        // Only keys of the load's own extraction: whatever else a message names is never deleted (the loader checked
        // this before it loaded; the janitor does not take that on trust).
        func keys(_ load: LoadMessage) -> [String] {
            load.objects.map(\.key).filter {
                layout.isObjectKey($0, table: load.table, channel: load.channel, partition: load.partition, extractedAt: load.extractedAt)
            }
        }
        if targets == [target] {
            doomed = loads.flatMap(keys)
        } else {
            for load in loads {
                let base = layout.loadedMarkers(loadID: load.loadID)
                do {
                    try s3.put(layout.loadedMarker(loadID: load.loadID, target: target), [])
                    let markers = Set(try s3.list(prefix: base + "/").map { String($0.key.dropFirst(base.count + 1)) })
                    guard Set(targets).isSubset(of: markers) else { continue }
                    doomed += keys(load) + markers.map { "\(base)/\($0)" }
                } catch {
                    logger.warning("cannot mark staged objects loaded", metadata: ["load.id": "\(load.loadID)", "error": "\(error)"])
                }
            }
        }
        guard !doomed.isEmpty else { return }
        do {
            try s3.delete(doomed)
        } catch {
            logger.warning(
                "cannot clean staged objects",
                metadata: [
                    "loads": "\(loads.count)", "first.load.id": "\(loads[0].loadID)",
                    "error": "\(error)",
                ])
        }
    }
}
