import Foundation
import HuskimoTesting
import Logging
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import SandboxKit

/// Singular's Reporting API v2.0, the pure parts: the CSV download read by header name into 0.3 records, the
/// channel keys, and which download URLs are followed.
@Suite struct SingularV2Tests {
    static let header =
        "adn_installs,adn_clicks,start_date,adn_cost,adn_impressions,country_field,adn_campaign_id,site_public_id,adn_sub_campaign_name,adn_campaign_url,adn_campaign_name,source,extra_column"

    /// Feeds `csv` in chunks of `chunk` bytes and converts every batch. - Returns: the rows as TSV fields.
    static func rows(
        _ csv: String, chunk: Int = 1 << 20, table: SingularTable = .campaigns, batchBytes: Int = 1 << 20
    ) throws -> [[String?]] {
        let converter = SingularConverter(
            table: table, channelName: "spend", whenRetrieved: "2026-12-01 00:00:00.000", day: Day("2026-11-20"))
        var stream = SingularCSVStream(spec: table.report, table: table.name, batchBytes: batchBytes)
        var writer = TSVWriter()
        let deliver = { (batch: [UInt8]) throws in _ = try batch.withUnsafeBytes { try converter.convert($0, into: &writer) } }
        let bytes = Array(csv.utf8)
        var start = 0
        while start < bytes.count {
            let end = min(start + chunk, bytes.count)
            try bytes[start..<end].withUnsafeBytes { try stream.feed($0, deliver) }
            start = end
        }
        try stream.finish(deliver)
        return TSVReader.rows(writer.buffer)
    }

    static let body =
        header + "\r\n"
        + "12,345,2026-11-20,1.0E-4,1000,US,9876,com.example.app,\"sub, \"\"one\"\"\",\"https://t.example/c?a=1&b=2\",\"Campaign\nwith a line break\",\"AdWords\",x\r\n"
        + "0,0,2026-11-20,,5,\"\",,\"\",,,\"C2\",\"Facebook\",\r\n"

    @Test(arguments: [1, 2, 3, 7, 64, 1 << 20]) func aReportIsReadByHeaderNameInAnyChunking(chunk: Int) throws {
        let rows = try Self.rows(Self.body, chunk: chunk)
        #expect(rows.count == 2)
        // 0.3's column order: channel_name, when_retrieved, ad_network, campaign_name, campaign_type, campaign_url,
        // subcampaign_name, app_id, campaign_network_id, country, reporting_date, impressions, clicks, installs, cost,
        // revenue, last_modified.
        #expect(
            rows[0] == [
                "spend", "2026-12-01 00:00:00.000", "AdWords", "Campaign\nwith a line break", nil, "https://t.example/c?a=1&b=2",
                "sub, \"one\"", "com.example.app", "9876", "US", "2026-11-20 00:00:00", "1000", "345", "12", "0.0001", nil, nil,
            ])
        // An unquoted empty field is NULL, a quoted empty one the empty string.
        #expect(rows[1][7] == "" && rows[1][9] == "" && rows[1][8] == nil && rows[1][14] == nil && rows[1][5] == nil)
    }

    @Test func smallBatchesGiveTheSameRows() throws {
        #expect(try Self.rows(Self.body, chunk: 5, batchBytes: 10) == Self.rows(Self.body))
    }

    @Test func aReportWithoutAnAskedForColumnIsRefusedNamingIt() {
        let csv = Self.header.replacingOccurrences(of: "country_field,", with: "") + "\n"
        #expect {
            _ = try Self.rows(csv)
        } throws: { error in
            "\(error)".contains("no column country_field") && ErrorClass.of(error) == .permanent
        }
    }

    @Test(arguments: [
        (header + "\n1,2,2026-11-20\n", "a record of 3 fields under a header of 13"),
        ("", "no header row"),
        (header + "\n1,2,\"2026-11-20,3,4,5,6,7,8,9,10,11,12\n", "ends inside a quoted field"),
        (header + "\n1,2,2026-11-19,1,1,US,1,a,b,c,d,e,f\n", "reporting day 2026-11-19"),
        (header + "\n1,many,2026-11-20,1,1,US,1,a,b,c,d,e,f\n", "not a number: many"),
        (header + "\n1,2,2026-11-20,1,1,USA,1,a,b,c,d,e,f\n", "the column holds 2"),
        (header + "\n1,2,2026-11-20,1,1,U\"S,1,a,b,c,d,e,f\n", "a quote inside an unquoted field"),
    ])
    func badReportsAreRefusedNamingWhatIsWrong(_ csv: String, _ reason: String) {
        #expect {
            _ = try Self.rows(csv)
        } throws: { error in
            "\(error)".contains(reason)
        }
    }

    @Test func aHugeFieldIsRefusedNotBuffered() {
        let converter = SingularConverter(table: .campaigns, channelName: "s", whenRetrieved: "2026-12-01 00:00:00", day: nil)
        var stream = SingularCSVStream(spec: SingularTable.campaigns.report, table: "singular_campaigns", maxFieldBytes: 100)
        var writer = TSVWriter()
        let csv = Array((Self.header + "\n\"" + String(repeating: "x", count: 1000)).utf8)
        #expect {
            try csv.withUnsafeBytes { bytes in
                try stream.feed(bytes) { batch in _ = try batch.withUnsafeBytes { try converter.convert($0, into: &writer) } }
            }
        } throws: { error in
            "\(error)".contains("a field over 100 bytes")
        }
    }

    @Test func creativesMapEveryReportColumnAndBooleansInSingularsSpelling() throws {
        let spec = SingularTable.creatives.report
        #expect(spec.dimensions.contains("creative_is_video") && spec.discrepancyMetrics == ["adn_clicks", "adn_installs"])
        let header = spec.columns.map(\.name).joined(separator: ",")
        let values = spec.columns.map { column -> String in
            switch column.key {
            case "is_video": return "True"
            case "date": return "2026-11-20"
            case "impressions", "clicks", "installs", "cost", "width", "height": return "3"
            default: return "\"\(column.key)\""
            }
        }
        let rows = try Self.rows(header + "\n" + values.joined(separator: ",") + "\n", table: .creatives)
        let columns = SingularTable.creatives.columnNames
        #expect(rows.count == 1)
        #expect(rows[0][columns.firstIndex(of: "is_video")!] == "true")
        #expect(rows[0][columns.firstIndex(of: "image_hash")!] == "image_hash")
        // What v2 cannot fill stays NULL.
        #expect(rows[0][columns.firstIndex(of: "campaign_type")!] == nil && rows[0][columns.firstIndex(of: "modified_at")!] == nil)
    }

    /// Every 0.3 column v2 fills is one of the table's, and the ones it leaves NULL are nullable in the schema.
    @Test(arguments: [SingularTable.campaigns, SingularTable.creatives]) func theMappingFitsTheSchema(table: SingularTable) {
        let keys = table.report.keys
        for column in table.columns {
            guard let key = column.source.jsonKey else { continue }
            if !keys.contains(key) { #expect(!column.required, "\(table.name).\(column.name) is left NULL by v2 but NOT NULL") }
        }
        #expect(keys.isSubset(of: Set(table.columns.compactMap(\.source.jsonKey))))
        let query = Dictionary(table.report.query(day: Day("2026-11-20")!), uniquingKeysWith: { a, _ in a })
        #expect(query["country_code_format"] == "iso" && query["time_breakdown"] == "day" && query["display_alignment"] == "false")
        #expect(query["format"] == "csv" && query["start_date"] == "2026-11-20" && query["end_date"] == "2026-11-20")
    }

    static func channel(_ options: [String: String], apiURL: String = "https://api.singular.net") -> ChannelConfig {
        var channel = ChannelConfig(name: "spend", type: .singular, apiUser: nil, apiKey: Secret("sg-key"), apiURL: apiURL)
        channel.options = options
        return channel
    }

    @Test func optionsHaveDefaultsAndRefuseWhatIsWrongNamingTheKey() {
        let (defaults, none) = SingularOptions.read(Self.channel([:]))
        #expect(none.isEmpty && defaults.api == .v2 && defaults.concurrentReports == 100 && defaults.reportAttempts == 3)
        let (_, problems) = SingularOptions.read(
            Self.channel([
                "api": "v3", "report_wait_s": "-1", "report_attempts": "0", "concurrent_reports": "x", "download_hosts": "*, a b",
            ]))
        #expect(Set(problems.map(\.key)) == ["api", "report_wait_s", "report_attempts", "concurrent_reports", "download_hosts"])
        let (legacy, wrong) = SingularOptions.read(Self.channel(["api": "legacy", "concurrent_reports": "5"]))
        #expect(legacy.api == .legacy && wrong.map(\.key) == ["concurrent_reports"])
    }

    @Test(arguments: [
        ("https://singular-reports.s3.amazonaws.com/r/1.csv?X-Amz-Signature=abc", true),
        ("https://api.singular.net/download/1.csv", true),
        ("https://reports.singular.net/1.csv", true),
        ("https://evil.example/1.csv", false),
        ("https://amazonaws.com.evil.example/1.csv", false),
        ("https://user:pw@reports.singular.net/1.csv", false),
        ("http://reports.singular.net/1.csv", false),
        ("ftp://reports.singular.net/1.csv", false),
        ("https://reports.singular.net/1 .csv", false),
    ])
    func onlyDownloadURLsOnAllowedHostsOverHTTPSAreFollowed(_ url: String, _ allowed: Bool) throws {
        let reports = SingularReportsAPI(
            channel: Self.channel([:]), client: APIClient(http: HTTPClient(), limiters: AccountLimiters(), logger: Logger(label: "test")),
            options: SingularOptions())
        if allowed {
            let request = try reports.download(url)
            #expect(!request.headers.contains { $0.0.lowercased() == "authorization" } && request.basicAuth == nil)
            #expect(!request.displayURL.contains("?"), "the presigned signature stays out of logs")
        } else {
            #expect(throws: PagingError.self) { try reports.download(url) }
        }
    }

    @Test func theSlotSetIsNamedByADigestOfTheKeyNeverTheKey() {
        let s3 = S3Client(
            S3Endpoint(endpoint: "http://127.0.0.1:1", region: "us-east-1", bucket: "b", accessKeyID: "a", secretAccessKey: Secret("s")))
        let extractor = SingularExtractor(
            channel: Self.channel([:]), client: APIClient(http: HTTPClient(), limiters: AccountLimiters(), logger: Logger(label: "test")),
            s3: s3, folder: "f")
        #expect(!extractor.slotSet.contains("sg-key") && extractor.slotSet.hasPrefix("singular.") && extractor.slotSet.count == 25)
    }

    /// The sandbox's report carries the records the 0.3 endpoints serve, under v2's names: read back through the
    /// production reader, they are the 0.3 rows with the columns v2 cannot fill NULL.
    @Test func theSandboxReportHoldsThe03RecordsUnderV2Names() throws {
        let key = SandboxSingular.keys[0]
        let day = (1...40).map { Day.today.adding(days: -$0) }.first {
            SandboxSingular.records(key: key, resource: "stats", day: $0.ordinal, revision: 0).count > 3
        }!
        let records = SandboxSingular.records(key: key, resource: "stats", day: day.ordinal, revision: 0)
        let report = SandboxSingular.Report(
            key: key.key, resource: "campaigns", day: day.ordinal, revision: 0, columns: SingularTable.campaigns.report.columns.map(\.name),
            iso3: false, fails: false, stuck: false, broken: false)
        let csv = String(decoding: SandboxSingular.csv(report, key: key), as: UTF8.self)
        let converter = SingularConverter(table: .campaigns, channelName: "spend", whenRetrieved: "2026-12-01 00:00:00.000", day: day)
        var stream = SingularCSVStream(spec: SingularTable.campaigns.report, table: "singular_campaigns")
        var writer = TSVWriter()
        let deliver = { (batch: [UInt8]) throws in _ = try batch.withUnsafeBytes { try converter.convert($0, into: &writer) } }
        try Array(csv.utf8).withUnsafeBytes { try stream.feed($0, deliver) }
        try stream.finish(deliver)
        let rows = TSVReader.rows(writer.buffer)
        let filled = SingularTable.campaigns.columns.dropFirst(2).map {
            $0.source.jsonKey.map(SingularTable.campaigns.report.keys.contains) ?? true
        }
        // Decimals compared as numbers (the warehouse's decimal holds 2889.60 and 2889.6 alike).
        func plain(_ row: [String?]) -> [String?] { row.map { $0.map { PlainDecimal.format(Array($0.utf8)) ?? $0 } } }
        let expected = records.map { record in plain(zip(record.expected, filled).map { $1 ? $0 : nil }) }
        #expect(rows.map { plain(Array($0.dropFirst(2))) } == expected)
        #expect(rows.count == records.count && rows.count > 3)
    }

    @Test func aSplitDayAsksSourceBySourceThenForEveryOtherSource() throws {
        let only = SingularReportSpec.Sources.only("ironSource \"Ads\"")
        let rest = SingularReportSpec.Sources.allBut(["AdWords", "Facebook"])
        let decode = { (text: String) in try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]] }
        let a = try #require(try decode(only.filter)), b = try #require(try decode(rest.filter))
        #expect(a[0]["operator"] as? String == "in" && a[0]["values"] as? [String] == ["ironSource \"Ads\""])
        #expect(b[0]["operator"] as? String == "not in" && b[0]["values"] as? [String] == ["AdWords", "Facebook"])
        #expect(b[0]["dimension"] as? String == "source")
        let query = SingularTable.campaigns.report.query(day: Day("2026-11-20")!, sources: rest)
        #expect(query.first { $0.0 == "filters" }?.1 == rest.filter)
        #expect(SingularTable.campaigns.report.query(day: Day("2026-11-20")!).allSatisfy { $0.0 != "filters" })
    }

    @Test(arguments: [
        ("Report exceeds the limit of 8 rows per report (12 rows): add filters", true),
        ("Too many rows in the result", true),
        ("Query timed out on the reporting cluster", false),
        ("rows", false),
    ])
    func onlyATooManyRowsFailureSplitsTheDay(_ message: String, _ splits: Bool) {
        #expect(SingularReportsAPI.isTooManyRows(message) == splits)
    }
}
