import Foundation
package import HuskimoConnectors
package import HuskimoCore
package import Logging

/// What a batch did.
package struct BatchOutcome: Sendable {
    package var loaded: [String] = []
    /// Load ids not applied, with why (already loaded, or older than what the partition holds).
    package var skipped: [(loadID: String, reason: String)] = []
    var rowsByTable: [String: Int] = [:]
    /// What each replace changed, and the re-reads skipped as identical (``ChangeReport/identical``).
    package var reports: [ChangeReport] = []
}

/// Loads batches of load messages into one target, idempotently: per table, one transaction that deletes the
/// partitions being replaced, loads the objects and writes ledger rows. An object already in the ledger is
/// never loaded again; a partition whose ledger shows a newer extraction is not overwritten by an older one.
/// Not thread-safe: one loader per target (the target's queue has a single active consumer).
package final class WarehouseLoader: BatchLoader, @unchecked Sendable {  // used by one load loop at a time (see above)
    package let target: TargetConfig
    /// The target's warehouse: DDL, serialising statement, copy strategy, error explanation.
    package let dialect: any WarehouseDialect
    private let copier: any CopyStrategy
    private let logger: Logger
    private var connection: PostgresConnection?
    /// The newest day loaded per (table, channel), for the freshness gauge.
    private var newestDay: [String: Day] = [:]
    private let ledger: Ledger
    /// Test hook: runs inside the transaction after the DELETE, before the COPY.
    var afterDelete: ((String) throws -> Void)?

    private let s3: S3Client

    package init(target: TargetConfig, s3: S3Client, s3Config: S3Config, logger: Logger) {
        self.target = target
        self.s3 = s3
        self.dialect = target.type.dialect
        self.copier = dialect.copyStrategy(target: target, s3: s3, s3Config: s3Config)
        self.logger = logger
        self.ledger = Ledger(schema: target.schema)
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
    func publishFreshnessFromLedger() {
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
    package func load(_ batch: [LoadMessage]) throws -> BatchOutcome {
        var outcome = BatchOutcome()
        let byTable = Dictionary(grouping: batch, by: \.table)
        for tableName in byTable.keys.sorted() {
            guard let table = WarehouseSchema.table(tableName) else {
                throw LoadError(loadID: byTable[tableName]![0].loadID, errorClass: .permanent, message: "unknown table \(tableName)")
            }
            do {
                try loadTable(table, byTable[tableName]!, into: &outcome)
            } catch let error as LoadError {
                throw dialect.explain(error, try? db())
            }
        }
        return outcome
    }

    private func loadTable(_ table: WarehouseSchema.Table, _ messages: [LoadMessage], into outcome: inout BatchOutcome) throws {
        let started = ContinuousClock.now
        let pg = try db()
        var candidates = messages.sorted { ($0.runID ?? "", $0.extractedAt) < ($1.runID ?? "", $1.extractedAt) }
        if !table.appendOnly {
            // Within a batch, only the newest extraction of a partition matters.
            candidates = Self.newest(
                candidates, by: { "\($0.ledgerChannel)\u{0}\($0.partition)" },
                skipping: "superseded by a newer extraction in the same batch",
                into: &outcome)
        } else {
            // An appended table takes one retrieval per run and partition: a job redelivered within its run (a worker
            // lost, a broker restarted) is read again, and only the newest of its extractions is appended.
            candidates = Self.newest(
                candidates, by: { "\($0.ledgerChannel)\u{0}\($0.partition)\u{0}\($0.runID ?? $0.loadID)" },
                skipping: "another extraction of the same run in the same batch is appended instead", into: &outcome)
        }
        var rows = 0
        var applied: [String] = []
        var skipped: [(String, String)] = []
        var applying: [LoadMessage] = []
        var reports: [ChangeReport] = []
        var before = BeforeImage(table: table, schema: target.schema)
        try pg.transaction {
            if !candidates.isEmpty {
                // Serialises loads of the same partitions across loaders (a standby that took the queue over during a
                // broker blip while the first still commits); held until the transaction ends, so the ledger checks
                // that follow see what the other loader committed.
                try dialect.lock(table, partitions: candidates.map { ($0.ledgerChannel, $0.partition) }, schema: target.schema, pg)
            }
            for message in candidates {
                if try ledger.containsAny(message.objects.map(\.key), table: table.name, pg) {
                    skipped.append((message.loadID, "already loaded"))
                    continue
                }
                if table.appendOnly, let run = message.runID, try ledger.hasAppended(message, run: run, table: table.name, pg) {
                    skipped.append((message.loadID, "already appended for run \(run) (a redelivered job, read again)"))
                    continue
                }
                if !table.appendOnly {
                    if try ledger.hasExtraction(notOlderThan: message, table: table.name, pg) {
                        skipped.append((message.loadID, "older than the extraction already loaded"))
                        continue
                    }
                    if let digest = message.contentDigest,
                        try ledger.currentDigest(table: table.name, channel: message.ledgerChannel, partition: message.partition, pg)
                            == digest
                    {
                        // The re-read is what the partition holds: the ledger takes the newer extraction, the rows stay.
                        let report = ChangeReport(
                            loadID: message.loadID, table: table.name, channel: message.ledgerChannel,
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
            // The dialect's copy: PostgreSQL streams every object into COPY FROM STDIN, Redshift COPYs one manifest of
            // the whole table's batch (the cluster loads the files in parallel).
            let objects = applying.flatMap { message in message.objects.map { (loadID: message.loadID, object: $0) } }
            if !objects.isEmpty {
                let loaded = try copier.copy(objects, into: table, pg)
                let expected = objects.reduce(0) { $0 + $1.object.rows }
                guard loaded == expected else {
                    throw LoadError(
                        loadID: objects[0].loadID, errorClass: .permanent,
                        message: "\(table.name): COPY loaded \(loaded) rows, the load messages say \(expected)")
                }
                rows += loaded
            }
            for message in applying {
                try ledger.record(message, table: table.name, pg)
                if table.appendOnly { try ledger.recordAppend(message, table: table.name, pg) }
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
                logger.info(
                    "reload identical, skipped",
                    metadata: report.metadata.mapValues { .string($0) }.merging(["target": "\(target.name)"]) { $1 })
            } else {
                FleetMetrics.changedRecords(
                    target: target.name, table: table.name, changed: report.changed ?? 0, added: report.added ?? 0,
                    removed: report.removed ?? 0)
                if report.rowsBefore > 0 {  // first loads are in the table's "loaded" line
                    logger.info(
                        "partition replaced",
                        metadata: report.metadata.mapValues { .string($0) }.merging(["target": "\(target.name)"]) { $1 })
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
            logger.info(
                "loaded",
                metadata: [
                    "table": "\(table.name)", "loads": "\(applied.count)", "rows": "\(rows)",
                    "target": "\(target.name)",
                ])
        }
    }

    /// The last of `messages` (in load order) per `key`; the others are noted in `outcome` as skipped for `reason`.
    private static func newest(
        _ messages: [LoadMessage], by key: (LoadMessage) -> String, skipping reason: String, into outcome: inout BatchOutcome
    ) -> [LoadMessage] {
        var newest: [String: LoadMessage] = [:]
        for m in messages { newest[key(m)] = m }
        let keep = Set(newest.values.map(\.loadID))
        for m in messages where !keep.contains(m.loadID) { outcome.skipped.append((m.loadID, reason)) }
        return messages.filter { keep.contains($0.loadID) }
    }

    private func deletePartition(_ table: WarehouseSchema.Table, _ message: LoadMessage, _ pg: PostgresConnection) throws {
        let (predicate, parameters) = try BeforeImage.partition(table, message, first: 1)
        try pg.query("DELETE FROM \(schema).\(table.name) WHERE \(predicate)", parameters)
    }

    // MARK: - BatchLoader

    package func load(_ batch: [LoadMessage]) async throws -> BatchOutcome {
        try await Blocking.run { try self.load(batch) }
    }

    package func seedFreshness() async {
        _ = try? await Blocking.run { self.publishFreshnessFromLedger() }
    }

    func reconcile(_ loads: [LoadMessage], settledBefore: Day) async throws -> (Reconciler.Outcome, unreconciled: Int) {
        try await Blocking.run {
            let pg = try self.db()
            let reconciler = Reconciler(schema: self.target.schema)
            return (try reconciler.check(loads, settledBefore: settledBefore, pg), try reconciler.unreconciled(pg))
        }
    }

    package func probe(_ keys: [String]) async -> [String: Int?] {
        let s3 = s3
        return (try? await Blocking.run { Dictionary(keys.map { ($0, try? s3.head($0)) }) { first, _ in first } }) ?? [:]
    }
}
