import Foundation
import HuskimoCore

/// Extracts one (Singular channel, resource, day) job: one GET of `{api_url}/api/{key}/adv/{slug}/D/D`, the
/// records converted in the 0.3 column order and staged as gzip TSV. Each extraction is a new snapshot stamped
/// `when_retrieved` (milliseconds, so the latest retrieval of a day is always distinct); loads append.
///
/// The API key is part of the URL path: the request's display URL shows `<api_key>` instead, and the key is
/// scrubbed from every error text.
struct SingularExtractor: Sendable {
    package let channel: ChannelConfig
    package let client: APIClient
    package let s3: S3Client
    package let folder: String
    package var maxObjectBytes: Int

    package init(channel: ChannelConfig, client: APIClient, s3: S3Client, folder: String, maxObjectBytes: Int = 64 << 20) {
        self.channel = channel
        self.client = client
        self.s3 = s3
        self.folder = folder
        self.maxObjectBytes = maxObjectBytes
    }

    /// Runs the job. Blocking. - Parameter fetched: called once the API has given everything, before the staged
    /// objects are completed. - Throws: ``JobError`` (classified) naming channel, resource and day.
    package func extract(_ job: ExtractJob, now: Date = Date(), fetched: (@Sendable () -> Void)? = nil) throws -> ExtractReport {
        guard let table = job.resource.singularTable, let day = job.day else {
            throw JobError(
                jobID: job.jobID, errorClass: .permanent, message: "\(job.resource.rawValue) is not a Singular resource with a day")
        }
        let whenRetrieved = UTCTime.sqlMillis(now)
        return try StagedExtraction.run(
            job, s3: s3, folder: folder, maxObjectBytes: maxObjectBytes, now: now,
            secrets: [channel.apiKey], fetched: fetched
        ) { staging, tally in
            var request = HTTPRequest(
                url: url(table, day, key: channel.apiKey.reveal()), headers: [("Accept", "application/json")],
                timeout: client.timeout, displayURL: url(table, day, key: "<api_key>"))
            let encodedKey = PercentEncoding.encode(channel.apiKey.reveal(), keepSlash: false)
            request.redact = [channel.apiKey] + (encodedKey == channel.apiKey.reveal() ? [] : [Secret(encodedKey)])
            let converter = SingularConverter(table: table, channelName: channel.name, whenRetrieved: whenRetrieved, day: day)
            // The day streams to staging batch by batch, like Twilio's pages: never held whole (issue #12).
            final class Progress: @unchecked Sendable {  // used by this thread's one transfer
                var splitter = JSONArrayStream()
                var tsv = TSVWriter()
                var records = 0
            }
            let progress = Progress()
            let convert = { (batch: [UInt8]) throws in
                progress.records += try batch.withUnsafeBytes { try converter.convert($0, into: &progress.tsv) }.records
                if progress.tsv.count >= 1 << 20 { try staging.write(&progress.tsv) }
            }
            let records = try client.stream(
                request, api: .singular, account: channel.limiterKey, tally: &tally,
                onChunk: { chunk in try progress.splitter.feed(chunk, convert) },
                finish: { () throws -> Int in
                    try progress.splitter.finish(convert)
                    return progress.records
                })
            try staging.write(&progress.tsv)
            return StagedExtraction.Found(records: records, accounts: [])
        }
    }

    /// `check`: one authenticated query of a day's campaigns, converted (so a changed response shape shows) and
    /// not staged. Blocking. - Returns: the records found. - Throws: the API's classified error, key scrubbed.
    package func probe(day: Day) throws -> Int {
        guard let table = Resource.campaigns.singularTable else { return 0 }
        var request = HTTPRequest(
            url: url(table, day, key: channel.apiKey.reveal()), headers: [("Accept", "application/json")],
            timeout: client.timeout, displayURL: url(table, day, key: "<api_key>"))
        let encodedKey = PercentEncoding.encode(channel.apiKey.reveal(), keepSlash: false)
        request.redact = [channel.apiKey] + (encodedKey == channel.apiKey.reveal() ? [] : [Secret(encodedKey)])
        let converter = SingularConverter(table: table, channelName: channel.name, whenRetrieved: UTCTime.sqlMillis(Date()), day: day)
        var tsv = TSVWriter(capacity: 1 << 16)
        var tally = APIClient.Tally()
        return try client.fetch(request, api: .singular, account: channel.limiterKey, tally: &tally) { body in
            try body.withUnsafeBytes { try converter.convert($0, into: &tsv) }
        }.records
    }

    private func url(_ table: SingularTable, _ day: Day, key: String) -> String {
        let base = channel.apiURL.withoutTrailingSlashes
        let encoded = key == "<api_key>" ? key : PercentEncoding.encode(key, keepSlash: false)
        return "\(base)/api/\(encoded)/adv/\(table.slug)/\(day)/\(day)"
    }
}
