import Foundation
import HuskimoCore
import Synchronization

/// Extracts one job of a Twilio channel: pages through the API (following `next_page_uri` verbatim), converts
/// each page as it arrives, stages gzip TSV on S3 and returns the load message. With `subaccounts: true` it
/// discovers the channel's subaccounts and extracts each with the parent's credentials.
struct TwilioExtractor: Sendable {
    package let channel: ChannelConfig
    package let client: APIClient
    package let s3: S3Client
    package let folder: String
    package var maxObjectBytes: Int
    package var pageSize: Int
    /// Pages one job may read (per list it walks) before it is refused as endless.
    package var maxPages = 100_000
    /// Countries per page of the Pricing list (Twilio's maximum is 1000).
    var pricingPageSize = 1000

    package init(
        channel: ChannelConfig, client: APIClient, s3: S3Client, folder: String, maxObjectBytes: Int = 64 << 20,
        pageSize: Int = 1000
    ) {
        self.channel = channel
        self.client = client
        self.s3 = s3
        self.folder = folder
        self.maxObjectBytes = maxObjectBytes
        self.pageSize = pageSize
    }

    /// `check`: one authenticated request for the channel's account (`GET /2010-04-01/Accounts/{sid}.json`).
    /// Blocking. - Returns: the account's status as Twilio reports it. - Throws: the API's classified error.
    func probeAccount() throws -> String {
        var tally = APIClient.Tally()
        let sid = channel.apiUser ?? ""
        return try client.get(
            "\(base)/2010-04-01/Accounts/\(PercentEncoding.encode(sid, keepSlash: false)).json", account: sid,
            auth: channel.twilioAuth(client), tally: &tally
        ) { body in
            let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]
            return (object?["status"] as? String) ?? "unknown"
        }
    }

    /// `AC` and 32 hex digits: an Account SID.
    static func isAccountSID(_ sid: String) -> Bool {
        let b = Array(sid.utf8)
        return b.count == 34 && b[0] == UInt8(ascii: "A") && b[1] == UInt8(ascii: "C")
            && b[2...].allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) || ($0 >= 65 && $0 <= 70) }
    }

    /// Runs the job. Blocking. - Parameter fetched: called once the API has given everything, before the staged
    /// objects are completed. - Throws: ``JobError`` (classified) naming channel, resource and day.
    package func extract(_ job: ExtractJob, now: Date = Date(), fetched: (@Sendable () -> Void)? = nil) throws -> ExtractReport {
        let whenRetrieved = UTCTime.sql(now)
        return try StagedExtraction.run(
            job, s3: s3, folder: folder, maxObjectBytes: maxObjectBytes, now: now,
            secrets: channel.twilioSecrets, fetched: fetched
        ) { staging, tally in
            var records = 0
            if let history = try history(job, whenRetrieved: whenRetrieved, now: now, staging: staging, tally: &tally) {
                return StagedExtraction.Found(records: history, accounts: [channel.apiUser ?? ""])
            }
            let accounts = try accounts(of: job, &tally)
            var tsv = TSVWriter()
            switch job.resource {
            case .pricingPhoneNumbers:
                records = try extractPricing(whenRetrieved: whenRetrieved, tsv: &tsv, staging: staging, tally: &tally)
            case let resource where resource.twilioPricing != nil:
                records = try extractPricing(
                    resource.twilioPricing!, whenRetrieved: whenRetrieved, tsv: &tsv, staging: staging, tally: &tally)
            default:
                guard let twilioTable = job.resource.twilioTable, let list = job.resource.twilioList else {
                    throw JobError(jobID: job.jobID, errorClass: .permanent, message: "\(job.resource.rawValue) is not a Twilio resource")
                }
                if list.dayQuery != nil && job.day == nil {
                    throw JobError(jobID: job.jobID, errorClass: .permanent, message: "\(job.resource.rawValue) needs a day")
                }
                let page = PageStream(
                    TwilioPageConverter(
                        table: twilioTable, channelName: channel.name, whenRetrieved: whenRetrieved,
                        day: job.day))
                for account in accounts {
                    var query = "PageSize=\(min(pageSize, list.maxPageSize))"
                    if let dayQuery = list.dayQuery, let day = job.day { query = dayQuery(day) + "&" + query }
                    var links = try PageLinks(base: base, maxPages: maxPages)
                    var next: String? = "\(base)/2010-04-01/Accounts/\(account)/\(list.path)?\(query)"
                    while let url = next {
                        try links.visit(url)
                        page.begin()
                        let result: PageResult
                        do {
                            result = try client.get(
                                url, account: account, auth: channel.twilioAuth(client), tally: &tally,
                                restart: page.restart, onChunk: page.feed, finish: page.finish)
                        } catch let error as APIError where error.status == 404 && list.emptyWhenNotFound && links.visited == 1 {
                            page.restart()  // a day without usage: nothing to read, not an error
                            break
                        } catch let error as APIError
                            where error.code == 20004 && links.visited == 1 && TwilioBulkExport.exportName(job.resource) != nil
                        {
                            // The account keeps fewer days than the channel says (its owner shortened retention): the
                            // day is history, and only the operator can say where the window ends.
                            let window = TwilioConnector.listWindow(channel)
                            throw JobError(
                                jobID: job.jobID, errorClass: .permanent,
                                message:
                                    "\(error); the account keeps fewer days than the \(window) this channel expects: set list_window_days on channel \(channel.name) to the days its owner kept, and huskimo-planner backfill reads the older days through Bulk Export"
                            )
                        }
                        try staging.write(&page.tsv)
                        records += result.records
                        next = try result.nextPage.map(links.resolve)
                    }
                }
            }
            return StagedExtraction.Found(records: records, accounts: accounts)
        }
    }

    private var base: String {
        channel.apiURL.withoutTrailingSlashes
    }

    /// A calls or messages day older than the list window, read through Bulk Export (``TwilioBulkExport``) into the
    /// same table and partition; nil for any other job. The window is judged now, at extraction: a day planned inside
    /// it that has left it since is read from the export, so the boundary never opens a gap.
    private func history(
        _ job: ExtractJob, whenRetrieved: String, now: Date, staging: StagingWriter, tally: inout APIClient.Tally
    ) throws -> Int? {
        let today = Day(ordinal: Int(now.timeIntervalSince1970.rounded(.down)) / 86_400)
        let options = TwilioBulkExport.Options.read(channel).options
        guard let day = job.day, day < today.adding(days: -options.listWindow),
            let exportName = TwilioBulkExport.exportName(job.resource), let table = job.resource.twilioTable
        else { return nil }
        if let why = TwilioBulkExport.unavailable(channel) {
            throw JobError(jobID: job.jobID, errorClass: .permanent, message: "\(day) is older than the list window: \(why)")
        }
        let page = PageStream(
            TwilioPageConverter(table: table, channelName: channel.name, whenRetrieved: whenRetrieved, day: day), lines: true)
        let export = TwilioBulkExport(channel: channel, client: client, options: options)
        return try export.extract(
            resource: exportName, day: day, account: channel.apiUser ?? "", page: page, staging: staging, tally: &tally)
    }

    /// The parent and every subaccount the selection reads (``SubaccountSelection``), parent first.
    func discoverAccounts(_ tally: inout APIClient.Tally) throws -> [String] {
        let accounts = [channel.apiUser ?? ""] + (try discover(&tally)).filter(\.selected).map(\.sid)
        Self.remember(accounts, of: channel)
        return accounts
    }

    /// The accounts a job reads: its one account (the parent, or a subaccount the selection reads: anything else is
    /// refused, whatever the message says), else the parent and, with `subaccounts: true`, every selected subaccount.
    func accounts(of job: ExtractJob, _ tally: inout APIClient.Tally) throws -> [String] {
        let parent = channel.apiUser ?? ""
        guard let account = job.account else { return try channel.subaccounts ? discoverAccounts(&tally) : [parent] }
        guard job.day != nil, job.resource.twilioList != nil else {
            throw JobError(
                jobID: job.jobID, errorClass: .permanent, message: "\(job.resource.rawValue) is read for the whole channel, not per account"
            )
        }
        if account == parent { return [parent] }
        if let recent = Self.recent(of: channel), recent.contains(account) { return [account] }
        let known = try channel.subaccounts ? discoverAccounts(&tally) : [parent]
        guard known.contains(account) else {
            throw JobError(
                jobID: job.jobID, errorClass: .permanent,
                message: "account \(account) is neither the channel's (\(parent)) nor one of the subaccounts its selection reads")
        }
        return [account]
    }

    /// Discovery results by channel, kept 10 minutes: a day split into a job per subaccount discovers once per worker,
    /// not once per job.
    private static let discovered = Mutex<[String: (at: Date, accounts: [String])]>([:])

    static func remember(_ accounts: [String], of channel: ChannelConfig) {
        discovered.withLock { $0[channel.name + "\u{0}" + (channel.apiUser ?? "")] = (Date(), accounts) }
    }

    static func recent(of channel: ChannelConfig) -> [String]? {
        discovered.withLock { cache in
            cache[channel.name + "\u{0}" + (channel.apiUser ?? "")].flatMap { -$0.at.timeIntervalSinceNow < 600 ? $0.accounts : nil }
        }
    }

    /// Every subaccount `Accounts.json` lists with the parent's credentials (the parent itself left out), each once,
    /// with whether the channel's selection reads it.
    func discover(_ tally: inout APIClient.Tally) throws -> [DiscoveredAccount] {
        let parent = channel.apiUser ?? ""
        let selection = SubaccountSelection.read(channel).selection
        var found: [DiscoveredAccount] = []
        var links = try PageLinks(base: base, maxPages: maxPages)
        var next: String? = "\(base)/2010-04-01/Accounts.json?PageSize=1000"
        let accountsKey = Array("accounts".utf8), sidKey = Array("sid".utf8), statusKey = Array("status".utf8)
        let nameKey = Array("friendly_name".utf8), nextKey = Array("next_page_uri".utf8)
        while let url = next {
            try links.visit(url)
            next = nil
            let (page, nextPage) = try client.get(url, account: parent, auth: channel.twilioAuth(client), tally: &tally) { body in
                try body.withUnsafeBytes { bytes -> ([DiscoveredAccount], String?) in
                    var scanner = JSONScanner(bytes)
                    var page: [DiscoveredAccount] = []
                    var nextPage: String?
                    try scanner.forEachMember { scanner, key in
                        if scanner.key(key, is: accountsKey) {
                            try scanner.forEachElement { scanner in
                                var sid: String?
                                var status = "active", name = ""
                                try scanner.forEachMember { scanner, field in
                                    let value = try scanner.readValue()
                                    if scanner.key(field, is: sidKey) { sid = try scanner.string(value) }
                                    if scanner.key(field, is: statusKey), value.kind == .string { status = try scanner.string(value) }
                                    if scanner.key(field, is: nameKey), value.kind == .string { name = try scanner.string(value) }
                                }
                                // A SID from the API goes into a URL path and every row: only an Account SID's shape.
                                guard let sid, sid != parent else { return }
                                guard TwilioExtractor.isAccountSID(sid) else {
                                    throw ConversionError(
                                        table: "accounts", field: "sid", recordSID: nil,
                                        reason: "a subaccount SID that is not AC and 32 hex digits (\(sid.utf8.count) bytes)")
                                }
                                page.append(
                                    DiscoveredAccount(
                                        sid: sid, name: name, status: status,
                                        selected: selection.selects(sid: sid, name: name, status: status)))
                            }
                        } else if scanner.key(key, is: nextKey) {
                            let value = try scanner.readValue()
                            nextPage = value.kind == .string ? try scanner.string(value) : nil
                        } else {
                            _ = try scanner.readValue()
                        }
                    }
                    return (page, nextPage)
                }
            }
            found += page
            next = try nextPage.map(links.resolve)
        }
        // Each account once (a page repeated by the API would double its rows).
        var seen: Set<String> = []
        return found.filter { seen.insert($0.sid).inserted }
    }

}

/// One Twilio page converted as it streams in, in one pass (``TwilioPageConverter/convert(partial:progress:into:final:)``):
/// only the unfinished record at the end of what has arrived is kept between chunks, never the page. The page's
/// rows stay in `tsv` until the page is whole (then the caller stages them), so a page that breaks off is rolled
/// back and read again in place, never half staged.
final class PageStream: @unchecked Sendable {  // used by the one thread that runs the job
    let converter: TwilioPageConverter
    var tsv = TSVWriter()
    /// Bytes received and not yet converted: an unfinished record or member, or chunks too small to convert alone.
    private var pending: [UInt8] = []
    private var progress = TwilioPageConverter.PageProgress()
    private var mark = (count: 0, rows: 0)
    /// Chunks are gathered up to this size before they are converted (each call learns the key order afresh).
    let minBatchBytes: Int
    /// The most one record, or one member around the list, may have.
    let maxPendingBytes: Int

    /// JSON lines (Bulk Export's day files) rather than a list page.
    let lines: Bool

    init(_ converter: TwilioPageConverter, lines: Bool = false, minBatchBytes: Int = 32 << 10, maxPendingBytes: Int = 1 << 20) {
        self.converter = converter
        self.lines = lines
        self.minBatchBytes = minBatchBytes
        self.maxPendingBytes = maxPendingBytes
    }

    /// A new page begins at the rows converted so far.
    func begin() {
        mark = (tsv.count, tsv.rows)
        progress = TwilioPageConverter.PageProgress(lines: lines)
        pending.removeAll(keepingCapacity: true)
    }

    /// The page is read again: its rows so far are dropped.
    func restart() {
        tsv.truncate(to: mark.count, rows: mark.rows)
        begin()
    }

    func feed(_ chunk: UnsafeRawBufferPointer) throws {
        if pending.isEmpty, chunk.count >= minBatchBytes {
            let used = try converter.convert(partial: chunk, progress: &progress, into: &tsv, final: false)
            keep(UnsafeRawBufferPointer(rebasing: chunk[used...]))
        } else {
            keep(chunk)
            guard pending.count >= minBatchBytes else { return }
            let used = try pending.withUnsafeBytes { try converter.convert(partial: $0, progress: &progress, into: &tsv, final: false) }
            pending.removeFirst(used)
        }
        guard pending.count <= maxPendingBytes else {
            throw JSONError(offset: 0, reason: "a record or member over \(maxPendingBytes) bytes", truncated: false)
        }
    }

    func finish() throws -> PageResult {
        _ = try pending.withUnsafeBytes { try converter.convert(partial: $0, progress: &progress, into: &tsv, final: true) }
        return PageResult(records: progress.records, nextPage: progress.nextPage)
    }

    private func keep(_ bytes: UnsafeRawBufferPointer) {
        pending.append(contentsOf: bytes.assumingMemoryBound(to: UInt8.self))  // contiguous: one copy
    }
}
