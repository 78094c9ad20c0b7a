import Foundation
import HuskimoCore

/// The frame every extractor runs its job in: a ``StagingWriter`` under the job's unique prefix, the request
/// tally, the load message of what was staged — or, on any failure, every object staged so far deleted and the
/// error turned into a ``JobError`` scrubbed of the channel's secrets. Blocking.
enum StagedExtraction {
    /// What an extractor's body found.
    struct Found {
        var records: Int
        var accounts: [String]
    }

    /// - Parameter fetched: called once the API has given everything (before the last object is completed on S3).
    static func run(
        _ job: ExtractJob, s3: S3Client, folder: String, maxObjectBytes: Int, now: Date, secrets: [Secret],
        fetched: (@Sendable () -> Void)? = nil,
        _ body: (StagingWriter, inout APIClient.Tally) throws -> Found
    ) throws -> ExtractReport {
        let layout = StagingLayout(folder: folder)
        let staging = StagingWriter(
            client: s3, layout: layout, keyPrefix: layout.extractionPrefix(job, at: now),
            maxObjectBytes: maxObjectBytes, digest: !job.resource.appendOnly)
        var tally = APIClient.Tally()
        do {
            let found = try body(staging, &tally)
            fetched?()
            let objects = try staging.finish()
            tally.pageBuffer = []  // the last response's bytes need not live as long as the report
            let digest = staging.content?.text
            var report = ExtractReport(
                load: LoadMessage(job: job, objects: objects, extractedAt: UTCTime.iso(now), contentDigest: digest),
                records: found.records, tally: tally, accounts: found.accounts)
            report.replacedValues = staging.replacedValues
            return report
        } catch {
            staging.discard()
            let jobError = (error as? JobError) ?? JobError(job, error)
            throw JobError(jobID: jobError.jobID, errorClass: jobError.errorClass, message: jobError.message.redacting(secrets))
        }
    }
}
