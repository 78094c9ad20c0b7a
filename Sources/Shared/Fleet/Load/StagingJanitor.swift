public import HuskimoConnectors
public import HuskimoCore
public import Logging

/// Deletes staged objects once every target has loaded them: each loader leaves an empty marker
/// (``StagingLayout/loadedMarker(loadID:target:)``); the loader that completes the set deletes the objects and
/// the markers. Blocking.
public struct StagingJanitor: Sendable {
    let s3: S3Client
    let layout: StagingLayout
    let targets: [String]
    let logger: Logger

    public init(s3: S3Client, layout: StagingLayout, targets: [String], logger: Logger) {
        self.s3 = s3
        self.layout = layout
        self.targets = targets
        self.logger = logger
    }

    public func markLoaded(_ load: LoadMessage, by target: String) {
        let base = layout.loadedMarkers(loadID: load.loadID)
        do {
            try s3.put(layout.loadedMarker(loadID: load.loadID, target: target), [])
            let markers = Set(try s3.list(prefix: base + "/").map { String($0.key.dropFirst(base.count + 1)) })
            guard Set(targets).isSubset(of: markers) else { return }
            try s3.delete(load.objects.map(\.key) + markers.map { "\(base)/\($0)" })
        } catch {
            // Leftover objects cost storage, not correctness: note it and carry on.
            logger.warning("cannot clean staged objects", metadata: ["load.id": "\(load.loadID)", "error": "\(error)"])
        }
    }
}
