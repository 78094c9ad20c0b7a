import Foundation
import HuskimoCore
import Logging

/// Extracts one (Singular channel, resource, day) job through the channel's API (``SingularOptions/api``), the
/// records converted in the 0.3 column order and staged as gzip TSV. Each extraction is a new snapshot stamped
/// `when_retrieved` (milliseconds, so the latest retrieval of a day is always distinct); loads append.
///
/// - v2 (``SingularReportsAPI``): the day's availability first (a day whose sources are not all in is transient: the
///   delay queues bring it back); then one of the key's report slots, held fleet-wide (``SlotLeases``); then an async
///   report, polled with a growing pause up to `report_wait_s`, created again while it ends FAILED (up to
///   `report_attempts`), and its CSV streamed from the presigned URL, without the key, through ``SingularCSVStream``.
/// - legacy: one GET of `{api_url}/api/{key}/adv/{slug}/D/D`. The key is part of that URL's path: the request's display
///   URL shows `<api_key>` instead.
///
/// Either way the key is scrubbed from every error text.
struct SingularExtractor: Sendable {
    package let channel: ChannelConfig
    package let client: APIClient
    package let s3: S3Client
    package let folder: String
    package var maxObjectBytes: Int
    var options: SingularOptions
    let leases: any SlotLeases

    package init(
        channel: ChannelConfig, client: APIClient, s3: S3Client, folder: String, maxObjectBytes: Int = 64 << 20,
        leases: any SlotLeases = LocalSlotLeases()
    ) {
        self.channel = channel
        self.client = client
        self.s3 = s3
        self.folder = folder
        self.maxObjectBytes = maxObjectBytes
        self.options = SingularOptions.read(channel).options
        self.leases = leases
    }

    /// Runs the job. Blocking. - Parameter fetched: called once the API has given everything, before the staged
    /// objects are completed. - Throws: ``JobError`` (classified) naming channel, resource and day.
    package func extract(_ job: ExtractJob, now: Date = Date(), fetched: (@Sendable () -> Void)? = nil) throws -> ExtractReport {
        guard let table = job.resource.singularTable, let day = job.day else {
            throw JobError(
                jobID: job.jobID, errorClass: .permanent, message: "\(job.resource.rawValue) is not a Singular resource with a day")
        }
        let converter = SingularConverter(table: table, channelName: channel.name, whenRetrieved: UTCTime.sqlMillis(now), day: day)
        return try StagedExtraction.run(
            job, s3: s3, folder: folder, maxObjectBytes: maxObjectBytes, now: now,
            secrets: [channel.apiKey], fetched: fetched
        ) { staging, tally in
            // The day streams to staging batch by batch, like Twilio's pages: never held whole (issue #12).
            let records: Int
            switch options.api {
            case .legacy:
                var splitter = JSONArrayStream()
                records = try stream(legacyRequest(table, day), &splitter, converter, staging: staging, tally: &tally)
            case .v2:
                records = try runReport(job.jobID, table, day, tally: &tally) { request, tally in
                    var splitter = SingularCSVStream(spec: table.report, table: table.name)
                    return try stream(request, &splitter, converter, staging: staging, tally: &tally)
                }
            }
            return StagedExtraction.Found(records: records, accounts: [])
        }
    }

    /// Streams one response through `splitter` and `converter`; stages the rows when `staging` is given (else only
    /// counts them: `check`). - Returns: the records converted.
    private func stream<Splitter: RecordBatchStream>(
        _ request: HTTPRequest, _ splitter: inout Splitter, _ converter: SingularConverter, staging: StagingWriter?,
        tally: inout APIClient.Tally
    ) throws -> Int {
        let progress = StreamProgress(splitter)
        let convert = { (batch: [UInt8]) throws in
            progress.records += try batch.withUnsafeBytes { try converter.convert($0, into: &progress.tsv) }.records
            if progress.tsv.count >= 1 << 20 {
                if let staging { try staging.write(&progress.tsv) } else { progress.tsv = TSVWriter() }
            }
        }
        let records = try client.stream(
            request, api: .singular, account: channel.limiterKey, tally: &tally,
            onChunk: { chunk in try progress.splitter.feed(chunk, convert) },
            finish: { () throws -> Int in
                try progress.splitter.finish(convert)
                return progress.records
            })
        if let staging { try staging.write(&progress.tsv) }
        splitter = progress.splitter
        return records
    }

    /// The v2.0 flow for one day up to the download, which `download` streams. - Throws: ``JobError`` transient for a
    /// day not ready, no free report slot, or a report still pending after `report_wait_s`; permanent once
    /// `report_attempts` reports ended FAILED (the last one's id and Singular's message named).
    private func runReport(
        _ jobID: String, _ table: SingularTable, _ day: Day, tally: inout APIClient.Tally,
        download: (HTTPRequest, inout APIClient.Tally) throws -> Int
    ) throws -> Int {
        let reports = SingularReportsAPI(channel: channel, client: client, options: options)
        func failure(_ errorClass: ErrorClass, _ message: String) -> JobError {
            JobError(jobID: jobID, errorClass: errorClass, message: "Singular \(table.name) of \(day): \(message)")
        }
        let availability = try reports.availability(day, tally: &tally)
        guard availability.ready else {
            let waiting =
                availability.waitingFor.isEmpty ? "" : ": waiting for \(availability.waitingFor.prefix(10).joined(separator: ", "))"
            throw failure(.transient, "the day is not complete yet (data_availability_status)\(waiting); read again later")
        }
        guard let lease = try leases.acquire(slotSet, limit: options.concurrentReports, wait: options.reportWait, stop: client.stop) else {
            throw failure(
                .transient,
                "all \(options.concurrentReports) report slots of the key (concurrent_reports) stayed busy for \(Int(options.reportWait)) s; read again later"
            )
        }
        defer { lease.release() }
        // The day as one report; one Singular refuses as too many rows, as one report per source of the day plus one
        // for every other source (so no row is lost to a source the availability did not list), one after the other.
        var parts: [SingularReportSpec.Sources?] = [nil]
        var records = 0
        var index = 0
        while index < parts.count {
            let part = parts[index]
            var failed: (id: String, message: String)?
            var done = false
            for _ in 0..<options.reportAttempts {
                let id = try reports.create(table, day, sources: part, tally: &tally)
                switch try waitFor(id, reports, tally: &tally, failure: failure) {
                case .done(let url):
                    records += try download(try reports.download(url), &tally)
                    done = true
                case .failed(let message):
                    failed = (id, message)
                    client.logger.warning(
                        "Singular report failed", metadata: ["channel": "\(channel.name)", "report_id": "\(id)", "error": "\(message)"])
                case .pending:
                    preconditionFailure("waitFor returns a final status")
                }
                if done || (part == nil && SingularReportsAPI.isTooManyRows(failed?.message ?? "") && !availability.sources.isEmpty) {
                    break
                }
            }
            if !done, part == nil, let message = failed?.message, SingularReportsAPI.isTooManyRows(message), !availability.sources.isEmpty {
                client.logger.info(
                    "Singular report too large: one report per source",
                    metadata: ["channel": "\(channel.name)", "day": "\(day)", "sources": "\(availability.sources.count)"])
                parts = availability.sources.map { .only($0) } + [.allBut(availability.sources)]
                index = 0
                continue
            }
            guard done else {
                let scope = part.map { " (\($0))" } ?? ""
                throw failure(
                    .permanent,
                    "report \(failed?.id ?? "?")\(scope) ended FAILED, \(options.reportAttempts) reports in a row (report_attempts); Singular: \(failed?.message ?? "")"
                )
            }
            index += 1
        }
        return records
    }

    /// Polls a report until it is DONE or FAILED, the pause growing from `report_poll_s` by half each time (at most 30 s).
    private func waitFor(
        _ id: String, _ reports: SingularReportsAPI, tally: inout APIClient.Tally, failure: (ErrorClass, String) -> JobError
    ) throws -> SingularReportsAPI.Status {
        let started = Date()
        var pause = options.reportPoll
        while true {
            let status = try reports.status(id, tally: &tally)
            guard case .pending(let state) = status else { return status }
            let waited = Date().timeIntervalSince(started)
            guard waited + pause <= options.reportWait else {
                throw failure(
                    .transient,
                    "report \(id) still \(state) after \(Int(waited)) s (report_wait_s: \(Int(options.reportWait))); read again later")
            }
            guard client.stop.sleep(pause) else { throw failure(.transient, "shutting down while report \(id) was \(state)") }
            pause = min(pause * 1.5, 30)
        }
    }

    /// The key's report slots: named by a digest of the key (never the key), so channels sharing a key share them.
    var slotSet: String { "singular." + Digest.sha256Hex(Array(channel.apiKey.reveal().utf8)).prefix(16) }

    private func legacyRequest(_ table: SingularTable, _ day: Day) -> HTTPRequest {
        var request = HTTPRequest(
            url: url(table, day, key: channel.apiKey.reveal()), headers: [("Accept", "application/json")],
            timeout: client.timeout, displayURL: url(table, day, key: "<api_key>"))
        let encodedKey = PercentEncoding.encode(channel.apiKey.reveal(), keepSlash: false)
        request.redact = [channel.apiKey] + (encodedKey == channel.apiKey.reveal() ? [] : [Secret(encodedKey)])
        return request
    }

    /// `check`: for v2, the day's availability and a campaigns report for it, downloaded through its presigned URL and
    /// converted (not staged); for legacy, one query of the day's campaigns, converted. Blocking.
    /// - Returns: what answered. - Throws: the API's classified error, key scrubbed.
    package func probe(day: Day) throws -> String {
        let table = SingularTable.campaigns
        let converter = SingularConverter(table: table, channelName: channel.name, whenRetrieved: UTCTime.sqlMillis(Date()), day: day)
        var tally = APIClient.Tally()
        switch options.api {
        case .legacy:
            var tsv = TSVWriter(capacity: 1 << 16)
            let records = try client.fetch(legacyRequest(table, day), api: .singular, account: channel.limiterKey, tally: &tally) { body in
                try body.withUnsafeBytes { try converter.convert($0, into: &tsv) }
            }.records
            return "legacy: campaigns of \(day) answered and converted (\(records) records)"
        case .v2:
            let reports = SingularReportsAPI(channel: channel, client: client, options: options)
            let availability = try reports.availability(day, tally: &tally)
            var probe = self
            probe.options.reportWait = min(options.reportWait, 120)  // `check` answers in minutes, not half an hour
            let records = try probe.runReport("check", table, day, tally: &tally) { request, tally in
                var splitter = SingularCSVStream(spec: table.report, table: table.name)
                return try stream(request, &splitter, converter, staging: nil, tally: &tally)
            }
            return
                "v2.0: availability of \(day) answered (\(availability.ready ? "complete" : "not complete yet")), and its campaigns report came back through the presigned download and converted (\(records) records)"
        }
    }

    private func url(_ table: SingularTable, _ day: Day, key: String) -> String {
        let base = channel.apiURL.withoutTrailingSlashes
        let encoded = key == "<api_key>" ? key : PercentEncoding.encode(key, keepSlash: false)
        return "\(base)/api/\(encoded)/adv/\(table.slug)/\(day)/\(day)"
    }
}

/// One transfer's state: the splitter, the rows not yet staged, the records so far (used by one thread).
private final class StreamProgress<S: RecordBatchStream>: @unchecked Sendable {
    var splitter: S
    var tsv = TSVWriter()
    var records = 0
    init(_ splitter: S) { self.splitter = splitter }
}

/// A streamed answer split into JSON arrays of whole records (``JSONArrayStream`` for 0.3's JSON, ``SingularCSVStream``
/// for v2.0's CSV).
protocol RecordBatchStream {
    mutating func feed(_ chunk: UnsafeRawBufferPointer, _ deliver: ([UInt8]) throws -> Void) throws
    mutating func finish(_ deliver: ([UInt8]) throws -> Void) throws
}

extension JSONArrayStream: RecordBatchStream {}
extension SingularCSVStream: RecordBatchStream {}
