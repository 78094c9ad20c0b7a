import Foundation
import HuskimoConnectors
import HuskimoCore

/// What a load message must be before a loader acts on it. Anyone with the broker's credentials can publish one, so
/// decoding (shape, sizes, formats: ``MessageCodec/decodeLoad(_:)``) is not enough: the table must be one Huskimo
/// loads, the channel one this loader's configuration has, the object list non-empty and bounded, every key an object
/// of this very extraction (under its own table, channel and partition, stamped with its own extraction time), and its
/// times not later than this loader's clock allows. A message that fails is parked with the field named; nothing is
/// deleted, copied or skipped on its account.
struct LoadMessageCheck: Sendable {
    let config: FleetConfig
    let layout: StagingLayout
    /// How far ahead of this process's clock a message's times may be (clock skew between hosts): loaders and extract
    /// workers alike.
    static let clockTolerance: TimeInterval = 300
    /// The most objects one load may name (a day is split at 64 MiB of gzip per object: 10,000 of them is 640 GB).
    static let maxObjects = 10_000

    init(config: FleetConfig) {
        self.config = config
        self.layout = StagingLayout(folder: config.s3.folderPath)
    }

    /// - Throws: a permanent ``LoadError`` naming the first field that is wrong.
    func check(_ load: LoadMessage, now: Date = Date()) throws {
        func refuse(_ what: String) -> LoadError {
            LoadError(loadID: String(load.loadID.prefix(200)), errorClass: .permanent, message: "load message refused: \(what)")
        }
        func shown(_ text: String) -> String { text.printable(limit: 80) }
        guard let resource = Resource(table: load.table) else { throw refuse("table \(shown(load.table)) is not one Huskimo loads") }
        guard load.resource == resource.rawValue else {
            throw refuse("resource \(shown(load.resource)) is not the resource of table \(load.table)")
        }
        guard config.channel(named: load.channel, type: resource.channelType) != nil else {
            throw refuse("channel \(shown(load.channel)) is not a \(resource.channelType) channel of this loader's configuration")
        }
        guard resource.isSnapshot == (load.partition == "snapshot") else {
            throw refuse(
                "partition \(shown(load.partition)) does not fit \(resource.rawValue) (\(resource.isSnapshot ? "a snapshot" : "a day"))")
        }
        if let account = load.account {
            guard ExtractJob.isAccount(account), !resource.isSnapshot, resource.schema.columns.contains(where: { $0.name == "account_sid" })
            else {
                throw refuse(
                    "account \(shown(account)) does not fit \(resource.rawValue) (a day table with account_sid, 1–64 letters and digits)")
            }
        }
        let jobID = ExtractJob.id(channel: load.channel, resource: resource, day: Day(load.partition), account: load.account)
        // Bytes, not Swift's `==` (which matches any Unicode normalisation): the ledger stores what the message says.
        guard load.jobID.utf8.elementsEqual(jobID.utf8) else {
            throw refuse("job_id is not \(shown(jobID)), the id of its channel, resource and partition")
        }
        guard load.loadID.utf8.elementsEqual("\(jobID)@\(load.extractedAt)".utf8) else {
            throw refuse("load_id is not its job_id@extracted_at")
        }
        guard let extracted = UTCTime.date(iso: load.extractedAt), extracted <= now.addingTimeInterval(Self.clockTolerance) else {
            throw refuse("extracted_at \(shown(load.extractedAt)) is later than this loader's clock (\(UTCTime.iso(now)))")
        }
        if let runID = load.runID {
            guard let planned = UTCTime.date(compact: runID) else {
                throw refuse("run_id \(shown(runID)) is not a run id (YYYYMMDDTHHMMSSmmmZ)")
            }
            guard planned <= now.addingTimeInterval(Self.clockTolerance) else {
                throw refuse("run_id \(runID) is later than this loader's clock (\(UTCTime.iso(now))): its planner's clock runs ahead")
            }
        }
        guard !load.objects.isEmpty else { throw refuse("objects is empty: a load replaces its partition with what it names") }
        guard load.objects.count <= Self.maxObjects else {
            throw refuse("\(load.objects.count) objects (at most \(Self.maxObjects))")
        }
        var seen = Set<String>()
        for (index, object) in load.objects.enumerated() {
            guard
                layout.isObjectKey(
                    object.key, table: load.table, channel: load.channel, partition: load.partition, extractedAt: load.extractedAt)
            else {
                throw refuse(
                    "objects[\(index)].key \(shown(object.key)) is not an object of this extraction "
                        + "(\(layout.partitionPrefix(table: load.table, channel: load.channel, partition: load.partition))/…)")
            }
            guard seen.insert(object.key).inserted else { throw refuse("objects[\(index)].key is named twice") }
            guard object.rows >= 0, object.bytes > 0, object.bytes <= 5 << 40 else {
                throw refuse("objects[\(index)]: rows \(object.rows) and bytes \(object.bytes) out of range")
            }
            guard object.sha256.utf8.count == 64, object.sha256.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) })
            else { throw refuse("objects[\(index)].sha256 is not 64 lowercase hex digits") }
        }
    }
}
