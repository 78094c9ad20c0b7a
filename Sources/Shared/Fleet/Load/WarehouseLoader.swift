import Foundation
public import HuskimoConnectors
public import HuskimoCore
public import Logging

/// What a batch did.
public struct LoadOutcome: Sendable {
    public var loaded: [String] = []
    /// Load ids not applied, with why (already loaded, or older than what the partition holds).
    public var skipped: [(loadID: String, reason: String)] = []
    public var rowsByTable: [String: Int] = [:]
    /// What each replace changed, and the re-reads skipped as identical (``ChangeReport/identical``).
    public var reports: [ChangeReport] = []
}

/// Loads batches of load messages into one target, idempotently: per table, one transaction that deletes the
/// partitions being replaced, loads the objects and writes ledger rows. An object already in the ledger is
/// never loaded again; a partition whose ledger shows a newer extraction is not overwritten by an older one.
/// Not thread-safe: one loader per target (the target's queue has a single active consumer).
public final class WarehouseLoader: BatchLoader, @unchecked Sendable {  // used by one load loop at a time (see above)
    public let target: TargetConfig
    public let flavor: WarehouseSchema.Flavor
    private let s3: S3Client
    private let s3Config: S3Config
    private let logger: Logger
    private var connection: PostgresConnection?
    /// The newest day loaded per (table, channel), for the freshness gauge.
    private var newestDay: [String: Day] = [:]
    private let ledger: Ledger
    private let layout: StagingLayout
    /// Test hook: runs inside the transaction after the DELETE, before the COPY.
    package var afterDelete: ((String) throws -> Void)?

    public init(target: TargetConfig, s3: S3Client, s3Config: S3Config, logger: Logger) {
        self.target = target
        self.flavor = target.type == .redshift ? .redshift : .postgres
        self.s3 = s3
        self.s3Config = s3Config
        self.logger = logger
        self.ledger = Ledger(schema: target.schema)
        self.layout = StagingLayout(folder: s3Config.folderPath)
    }

    var schema: String { sqlIdentifier(target.schema) }

    package func db() throws -> PostgresConnection {
        if let connection, connection.isHealthy { return connection }
        connection = nil
        let fresh = try PostgresConnection(target.postgresSettings)
        connection = fresh
        return fresh
    }

    /// Seeds the freshness gauge from the ledger (what earlier loaders loaded). Best effort.
    public func publishFreshnessFromLedger() {
        guard let newest = try? ledger.newestDays(db()) else { return }
        for (table, channel, day) in newest { noteLoaded(table: table, channel: channel, day: day) }
    }

    private func noteLoaded(table: String, channel: String, day: Day) {
        let key = table + "\u{0}" + channel
        if newestDay[key].map({ $0 < day }) ?? true {
            newestDay[key] = day
            FleetMetrics.loadedDay(target: target.name, table: table, channel: channel, day: day)
        }
    }

    /// Loads a batch. Messages are grouped by table; each table's group commits or rolls back as one.
    /// - Throws: the first failing table's error; tables committed before it stay committed (each is whole).
    public func load(_ batch: [LoadMessage]) throws -> LoadOutcome {
        var outcome = LoadOutcome()
        let byTable = Dictionary(grouping: batch, by: \.table)
        for tableName in byTable.keys.sorted() {
            guard let table = WarehouseSchema.table(tableName) else {
                throw LoadError(loadID: byTable[tableName]![0].loadID, errorClass: .permanent, message: "unknown table \(tableName)")
            }
            do {
                try loadTable(table, byTable[tableName]!, into: &outcome)
            } catch let error as LoadError where flavor == .redshift && error.message.contains("stl_load_errors") {
                throw explained(error)
            }
        }
        return outcome
    }

    private func loadTable(_ table: WarehouseSchema.Table, _ messages: [LoadMessage], into outcome: inout LoadOutcome) throws {
        let started = ContinuousClock.now
        let pg = try db()
        var candidates = messages.sorted { ($0.runID ?? "", $0.extractedAt) < ($1.runID ?? "", $1.extractedAt) }
        if !table.appendOnly {
            // Within a batch, only the newest extraction of a partition matters.
            var newest: [String: LoadMessage] = [:]
            for m in candidates { newest["\(m.channel)\u{0}\(m.partition)"] = m }
            let keep = Set(newest.values.map(\.loadID))
            for m in candidates where !keep.contains(m.loadID) {
                outcome.skipped.append((m.loadID, "superseded by a newer extraction in the same batch"))
            }
            candidates = candidates.filter { keep.contains($0.loadID) }
        }
        var rows = 0
        var applied: [String] = []
        var skipped: [(String, String)] = []
        var applying: [LoadMessage] = []
        var reports: [ChangeReport] = []
        var before = BeforeImage(table: table, schema: target.schema)
        try pg.transaction {
            try lockPartitions(table, candidates, pg)
            for message in candidates {
                if try ledger.containsAny(message.objects.map(\.key), table: table.name, pg) {
                    skipped.append((message.loadID, "already loaded"))
                    continue
                }
                if !table.appendOnly {
                    if try ledger.hasExtraction(notOlderThan: message, table: table.name, pg) {
                        skipped.append((message.loadID, "older than the extraction already loaded"))
                        continue
                    }
                    if let digest = message.contentDigest,
                       try ledger.currentDigest(table: table.name, channel: message.channel, partition: message.partition, pg) == digest {
                        // The re-read is what the partition holds: the ledger takes the newer extraction, the rows stay.
                        let report = ChangeReport(loadID: message.loadID, table: table.name, channel: message.channel,
                                                  partition: message.partition, extractedAt: message.extractedAt, identical: true,
                                                  rowsBefore: message.rows, rowsAfter: message.rows, changed: 0, added: 0, removed: 0,
                                                  contentDigest: digest, runID: message.runID)
                        try ledger.record(message, table: table.name, pg)
                        try ledger.record(report, pg)
                        reports.append(report)
                        continue
                    }
                    try before.capture(message, pg)
                    try deletePartition(table, message, pg)
                    try afterDelete?(message.loadID)
                }
                applying.append(message)
            }
            // PostgreSQL: every object streamed into COPY FROM STDIN. Redshift: one COPY of one manifest for the
            // whole table's batch (the cluster loads the files in parallel).
            switch flavor {
            case .postgres:
                let objects = applying.flatMap { message in message.objects.map { (loadID: message.loadID, object: $0) } }
                if !objects.isEmpty {
                    let loaded = try copy(objects, into: table, pg)
                    let expected = objects.reduce(0) { $0 + $1.object.rows }
                    guard loaded == expected else {
                        throw LoadError(loadID: objects[0].loadID, errorClass: .permanent,
                                        message: "\(table.name): COPY loaded \(loaded) rows, the load messages say \(expected)")
                    }
                    rows += loaded
                }
            case .redshift:
                let objects = applying.flatMap(\.objects)
                if !objects.isEmpty {
                    let loaded = try copyManifest(objects, into: table, pg, loadID: applying[0].loadID)
                    let expected = objects.reduce(0) { $0 + $1.rows }
                    guard loaded == expected else {
                        throw LoadError(loadID: applying[0].loadID, errorClass: .permanent,
                                        message: "\(table.name): COPY loaded \(loaded) rows, the load messages say \(expected)")
                    }
                    rows += loaded
                }
            }
            for message in applying {
                try ledger.record(message, table: table.name, pg)
                if !table.appendOnly {
                    let report = try before.report(message, rowsAfter: message.rows, pg)
                    try ledger.record(report, pg)
                    reports.append(report)
                }
                applied.append(message.loadID)
            }
            try before.drop(pg)
        }
        outcome.reports += reports
        let identical = reports.filter(\.identical)
        FleetMetrics.load(target: target.name, outcome: .identical, count: identical.count)
        for report in reports {
            if report.identical {
                logger.info("reload identical, skipped", metadata: report.metadata.mapValues { .string($0) }.merging(["target": "\(target.name)"]) { $1 })
            } else {
                FleetMetrics.changedRecords(target: target.name, table: table.name, changed: report.changed ?? 0, added: report.added ?? 0,
                                            removed: report.removed ?? 0)
                if report.rowsBefore > 0 {  // first loads are in the table's "loaded" line
                    logger.info("partition replaced", metadata: report.metadata.mapValues { .string($0) }.merging(["target": "\(target.name)"]) { $1 })
                }
            }
        }
        outcome.loaded += applied
        outcome.skipped += skipped.map { (loadID: $0.0, reason: $0.1) }
        outcome.rowsByTable[table.name, default: 0] += rows
        FleetMetrics.load(target: target.name, outcome: .skipped, count: skipped.count)
        if !applied.isEmpty {
            FleetMetrics.load(target: target.name, outcome: .succeeded, count: applied.count)
            FleetMetrics.loadedTable(target: target.name, table: table.name, rows: rows, seconds: (ContinuousClock.now - started).seconds)
            for message in candidates where applied.contains(message.loadID) {
                // Snapshots count as loaded on the day they were extracted.
                guard let day = Day(message.partition) ?? Day(String(message.extractedAt.prefix(10))) else { continue }
                noteLoaded(table: table.name, channel: message.channel, day: day)
            }
            logger.info("loaded", metadata: ["table": "\(table.name)", "loads": "\(applied.count)", "rows": "\(rows)",
                                             "target": "\(target.name)"])
        }
    }

    /// Serialises loads of the same partitions across loaders (a standby that took the queue over during a broker
    /// blip while the first still commits): PostgreSQL takes a transaction-scoped advisory lock per partition, in
    /// key order (no deadlock between two batches); Redshift, which has no advisory locks, locks the table. Held
    /// until the transaction ends; the ledger checks that follow see what the other loader committed.
    private func lockPartitions(_ table: WarehouseSchema.Table, _ messages: [LoadMessage], _ pg: PostgresConnection) throws {
        guard !messages.isEmpty else { return }
        switch flavor {
        case .redshift:
            try pg.execute("LOCK \(schema).\(table.name)")
        case .postgres:
            let keys = Set(messages.map { Self.lockKey(schema: target.schema, table: table.name, channel: $0.channel, partition: $0.partition) })
            for key in keys.sorted() { try pg.query("SELECT pg_advisory_xact_lock($1::bigint)", [String(key)]) }
        }
    }

    /// A partition's advisory-lock key: FNV-1a (64 bits) of schema, table, channel and partition.
    static func lockKey(schema: String, table: String, channel: String, partition: String) -> Int64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in [schema, table, channel, partition].joined(separator: "\u{0}").utf8 {
            h = (h ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return Int64(bitPattern: h)
    }

    private func deletePartition(_ table: WarehouseSchema.Table, _ message: LoadMessage, _ pg: PostgresConnection) throws {
        let (predicate, parameters) = try BeforeImage.partition(table, message, first: 1)
        try pg.query("DELETE FROM \(schema).\(table.name) WHERE \(predicate)", parameters)
    }

    /// PostgreSQL: the objects of a table's batch, one after another through gunzip into one `COPY FROM STDIN` (one
    /// statement per table and batch: no round trip and no idle server between objects), the next object fetched
    /// while the one before streams in. Each object is checked on the way as if it were loaded alone: its SHA-256,
    /// its row count (its newlines: the TSV escapes every newline inside a value) and that it ends with a whole row,
    /// so a bad object fails named, before the COPY commits anything.
    private func copy(_ objects: [(loadID: String, object: StagedObject)], into table: WarehouseSchema.Table,
                      _ pg: PostgresConnection) throws -> Int {
        let fetcher = StagedObjectFetcher(s3: s3, objects: objects.map(\.object))
        fetcher.prefetch(0)
        return try pg.copyIn(
            "COPY \(schema).\(table.name) (\(table.columnList)) FROM STDIN WITH (FORMAT text, DELIMITER E'\\t', NULL '\\N', ENCODING 'UTF8')"
        ) { write in
            try withoutActuallyEscaping(write) { write in
                for (index, (loadID, object)) in objects.enumerated() {
                    try copy(object, index: index, from: fetcher, loadID: loadID, write)
                }
            }
        }
    }

    private func copy(_ object: StagedObject, index: Int, from fetcher: StagedObjectFetcher, loadID: String,
                      _ write: @escaping (UnsafeRawBufferPointer) throws -> Void) throws {
        let sha = Digest(.sha256)
        let rows = RowCounter()
        do {
            let gunzip = try GzipReader { chunk in
                rows.count(chunk)
                try write(chunk)
            }
            try fetcher.read(index) { chunk in
                sha.update(chunk)
                try gunzip.write(chunk)
            }
            try gunzip.finish()
        } catch let error as GzipError {
            // Corrupt bytes fail the same way every time (permanent: the loader parks this load); name the object.
            throw LoadError(loadID: loadID, errorClass: error.errorClass, message: "\(object.key): the staged object is not valid gzip (\(error.reason))")
        }
        let digest = sha.finalize().hexString
        guard digest == object.sha256 else {
            throw LoadError(loadID: loadID, errorClass: .permanent, message: "\(object.key): SHA-256 \(digest) ≠ \(object.sha256)")
        }
        guard rows.rows == object.rows, rows.endsWithRow else {
            throw LoadError(loadID: loadID, errorClass: .permanent,
                            message: "\(object.key): \(rows.rows) rows\(rows.endsWithRow ? "" : " and a partial one"), the load message says \(object.rows)")
        }
    }

    /// A failed Redshift COPY says only "check stl_load_errors": read its newest row (after the rollback) and name
    /// the file, line, column and reason in the error an operator sees. Not the raw value: it may be personal data.
    func explained(_ error: LoadError) -> LoadError {
        guard let pg = try? db(),
              let row = try? pg.query("""
                  SELECT trim(filename), line_number::text, trim(colname), err_code::text, trim(err_reason)
                  FROM stl_load_errors ORDER BY starttime DESC LIMIT 1
                  """).first, row.count == 5
        else { return error }
        let detail = "\(row[0] ?? "?") line \(row[1] ?? "?"), column \(row[2] ?? "?"): error \(row[3] ?? "?") \(row[4] ?? "")"
        return LoadError(loadID: error.loadID, errorClass: error.errorClass, message: "\(error.message) — stl_load_errors: \(detail)",
                         sqlState: error.sqlState)
    }

    /// Redshift: `COPY … MANIFEST` of all `objects` in one statement; returns `pg_last_copy_count()`.
    private func copyManifest(_ objects: [StagedObject], into table: WarehouseSchema.Table, _ pg: PostgresConnection,
                              loadID: String) throws -> Int {
        let manifestKey = layout.manifestKey(loadID: loadID)
        try s3.put(manifestKey, Array(RedshiftCopy.manifest(bucket: s3Config.bucket, keys: objects.map(\.key)).utf8),
                   contentType: "application/json")
        defer { _ = try? s3.delete([manifestKey]) }
        do {
            try pg.execute(RedshiftCopy.statement(schema: target.schema, table: table, bucket: s3Config.bucket,
                                                  manifestKey: manifestKey, region: s3Config.region, auth: redshiftAuth))
        } catch let error as PQError {
            // The statement may carry the S3 secret (key-pair auth): scrub it from anything that gets printed.
            throw LoadError(loadID: loadID, errorClass: error.errorClass, message: error.description.redacting([s3Config.secretAccessKey]),
                            sqlState: error.sqlState)
        }
        let count = try pg.query("SELECT pg_last_copy_count()")
        return Int(count[0][0] ?? "0") ?? 0
    }

    /// The production COPY of one object (PostgreSQL) or of a set (Redshift), for `check`'s probe.
    func copyObject(_ object: StagedObject, into table: WarehouseSchema.Table, _ pg: PostgresConnection, loadID: String) throws -> Int {
        try copy([(loadID, object)], into: table, pg)
    }

    func copyObjects(_ objects: [StagedObject], into table: WarehouseSchema.Table, _ pg: PostgresConnection, loadID: String) throws -> Int {
        try copyManifest(objects, into: table, pg, loadID: loadID)
    }

    var redshiftAuth: RedshiftCopy.Auth {
        if let role = target.iamRole { return .iamRole(role) }
        return .keys(s3Config.accessKeyID, s3Config.secretAccessKey)
    }

    // MARK: - BatchLoader

    public func load(_ batch: [LoadMessage]) async throws -> LoadOutcome {
        try await Blocking.run { try self.load(batch) }
    }

    public func seedFreshness() async {
        _ = try? await Blocking.run { self.publishFreshnessFromLedger() }
    }
}

/// Reads a table batch's staged objects for its COPY, one ahead: while one object streams into the COPY, the next
/// is fetched into memory on another thread (an object up to `maxPrefetchBytes`, its size bounded by what its load
/// message says; a larger one streams from S3 when its turn comes). At most two are held: the one streaming and the
/// next (up to 2 × `maxPrefetchBytes`); a prefetch still running when the COPY fails finishes and is dropped.
final class StagedObjectFetcher: @unchecked Sendable {  // `fetches` is used by the COPY's thread only
    private let s3: S3Client
    private let objects: [StagedObject]
    private let maxPrefetchBytes: Int
    private var fetches: [Int: Fetch] = [:]

    private final class Fetch: @unchecked Sendable {  // `result` is written before `done` is signalled, read after
        let done = DispatchSemaphore(value: 0)
        var result: Result<[UInt8], any Error> = .success([])
    }

    init(s3: S3Client, objects: [StagedObject], maxPrefetchBytes: Int = 32 << 20) {
        self.s3 = s3
        self.objects = objects
        self.maxPrefetchBytes = maxPrefetchBytes
    }

    /// Starts fetching object `index` (when it exists, is small enough and is not already on its way).
    func prefetch(_ index: Int) {
        guard index < objects.count, objects[index].bytes <= maxPrefetchBytes, fetches[index] == nil else { return }
        let fetch = Fetch()
        fetches[index] = fetch
        let (s3, key, bytes) = (s3, objects[index].key, objects[index].bytes)
        DispatchQueue.global().async {
            fetch.result = Result { try s3.get(key, maxBytes: bytes) }
            fetch.done.signal()
        }
    }

    /// Hands object `index`'s bytes to `body`, and starts fetching the next one.
    func read(_ index: Int, _ body: @escaping (UnsafeRawBufferPointer) throws -> Void) throws {
        prefetch(index)
        let fetch = fetches.removeValue(forKey: index)
        prefetch(index + 1)
        if let fetch {
            fetch.done.wait()
            try fetch.result.get().withUnsafeBytes { try body($0) }
        } else {
            try s3.get(objects[index].key, onChunk: body)
        }
    }
}

/// Counts the rows of COPY text as it streams by: its newlines, except those escaped by a backslash (a value's own
/// newline is written `\` + newline, which both warehouses read as data).
final class RowCounter: @unchecked Sendable {  // one COPY, one thread
    private(set) var rows = 0
    /// Whether the text so far is whole rows (nothing, or a last byte that ends a row).
    private(set) var endsWithRow = true
    /// Whether the backslashes ending the bytes so far are an odd run (the next byte is escaped).
    private var escaping = false

    func count(_ chunk: UnsafeRawBufferPointer) {
        guard let base = chunk.baseAddress, !chunk.isEmpty else { return }
        var at = 0
        while let hit = memchr(base + at, 0x0A, chunk.count - at) {
            let newline = base.distance(to: UnsafeRawPointer(hit))
            let ends = !escaped(chunk, newline)
            if ends { rows += 1 }
            endsWithRow = ends && newline == chunk.count - 1
            at = newline + 1
        }
        if chunk[chunk.count - 1] != 0x0A { endsWithRow = false }
        var run = 0
        while run < chunk.count, chunk[chunk.count - 1 - run] == 0x5C { run += 1 }
        escaping = run == chunk.count ? (escaping != (run % 2 == 1)) : run % 2 == 1
    }

    /// Whether the byte at `index` follows an odd run of backslashes (this chunk's, and the one before's).
    private func escaped(_ chunk: UnsafeRawBufferPointer, _ index: Int) -> Bool {
        var run = 0
        while run < index, chunk[index - 1 - run] == 0x5C { run += 1 }
        return run == index ? (escaping != (run % 2 == 1)) : run % 2 == 1
    }
}
