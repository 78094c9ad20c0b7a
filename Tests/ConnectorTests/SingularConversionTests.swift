import Foundation
import HuskimoTesting
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore

@Suite struct SingularConversionTests {
    static func convert(
        _ table: SingularTable, _ json: String, day: Day? = Day("2026-11-20")
    ) throws -> ([[String?]], SingularConverter.Result) {
        let converter = SingularConverter(table: table, channelName: "spend\teu", whenRetrieved: "2026-11-29 04:30:00.125", day: day)
        var writer = TSVWriter()
        let bytes = Array(json.utf8)
        let result = try bytes.withUnsafeBytes { try converter.convert($0, into: &writer) }
        #expect(writer.rows == result.records)
        return (TSVReader.rows(writer.buffer), result)
    }

    @Test(arguments: [
        ("1.0E-4", "0.0001"), ("2.5e-05", "0.000025"), ("1.2345678E7", "12345678"), ("12345678.9", "12345678.9"),
        ("0", "0"), ("0.0", "0"), ("-0.0", "0"), ("1e2", "100"), ("-3.50", "-3.5"), ("007.10", "7.1"), ("1E+3", "1000"),
        ("123.456e-2", "1.23456"), ("9.99E-1", "0.999"), ("+5", "5"),
    ])
    func plainDecimalsAreExact(_ json: String, _ plain: String) {
        #expect(PlainDecimal.format(json) == plain)
    }

    @Test(arguments: ["", "-", "1.", ".e1", "1e", "1e+", "abc", "1.2.3", "1e99999", "0x10", "1 "])
    func notNumbersAreRefused(_ text: String) {
        #expect(PlainDecimal.format(text) == nil)
    }

    @Test func campaignsKeepThe03ColumnOrderAndConvertEachField() throws {
        #expect(SingularTable.campaigns.columnNames == WarehouseSchema.table("singular_campaigns")!.columns.map(\.name))
        #expect(
            SingularTable.campaigns.columnNames == [
                "channel_name", "when_retrieved", "ad_network", "campaign_name", "campaign_type", "campaign_url", "subcampaign_name",
                "app_id", "campaign_network_id", "country", "reporting_date", "impressions", "clicks", "installs", "cost", "revenue",
                "last_modified",
            ])
        let json = """
            [{"ad_network": "AdWords", "campaign_name": "Black \\"Friday\\"\\t\\u00e9 😀", "campaign_type": "UA",
              "campaign_url": null, "subcampaign_name": "a\\\\b\\nc", "app_id": "com.x", "campaign_network_id": 123456789012,
              "country": null, "date": "2026-11-20", "impressions": 1000, "clicks": null, "installs": 2.0E1,
              "cost": 1.0E-4, "revenue": 12345678.9, "last_modified": "2026-11-21T23:59:59", "unknown": {"x": [1]}},
             {"ad_network": "FB", "campaign_name": "", "campaign_type": "Brand", "date": "2026-11-19",
              "cost": "17.50", "last_modified": "2026-11-21T00:00:00.250Z"}]
            """
        let (rows, result) = try Self.convert(.campaigns, json, day: nil)
        #expect(result.records == 2)
        // In the job for 2026-11-20, the record of 2026-11-19 is refused, named.
        let stray = #expect(throws: ConversionError.self) { try Self.convert(.campaigns, json) }
        #expect(stray?.field == "reporting_date" && stray?.reason.contains("2026-11-19") == true)
        #expect(
            rows == [
                [
                    "spend\teu", "2026-11-29 04:30:00.125", "AdWords", "Black \"Friday\"\té 😀", "UA", nil, "a\\b\nc", "com.x",
                    "123456789012", nil, "2026-11-20 00:00:00", "1000", nil, "20", "0.0001", "12345678.9", "2026-11-21 23:59:59",
                ],
                [
                    "spend\teu", "2026-11-29 04:30:00.125", "FB", "", "Brand", nil, nil, nil, nil, nil, "2026-11-19 00:00:00", nil, nil,
                    nil, "17.5", nil, "2026-11-21 00:00:00.250",
                ],
            ])
    }

    @Test func creativesKeepThe03ColumnOrderAndConvertEachField() throws {
        #expect(SingularTable.creatives.columnNames == WarehouseSchema.table("singular_creatives")!.columns.map(\.name))
        let json = """
            [{"ad_network": "Unity", "creative_name": null, "creative_text": "مرحبا\\r\\n", "image": "https://i/x.png",
              "image_hash": "ab12", "width": 320, "height": "50", "is_video": true, "campaign_name": "C", "campaign_type": "UA",
              "campaign_url": "https://t/?a=1&b=2", "subcampaign_name": null, "app_id": null, "campaign_network_id": "n-1",
              "date": "2026-11-20", "impressions": 0, "clicks": 0, "installs": 0, "cost": 0, "modified_at": "2026-11-20T08:00:00"}]
            """
        let (rows, _) = try Self.convert(.creatives, json)
        #expect(
            rows == [
                [
                    "spend\teu", "2026-11-29 04:30:00.125", "Unity", nil, "مرحبا\r\n", "https://i/x.png", "ab12", "320", "50", "true", "C",
                    "UA", "https://t/?a=1&b=2", nil, nil, "n-1", "2026-11-20 00:00:00", "0", "0", "0", "0", "2026-11-20 08:00:00",
                ]
            ])
    }

    @Test(arguments: [
        (
            #"[{"ad_network": null, "campaign_name": "c", "campaign_type": "t", "date": "2026-11-20", "last_modified": "2026-11-20T00:00:00"}]"#,
            "ad_network"
        ),
        (
            #"[{"ad_network": "a", "campaign_name": "c", "campaign_type": "t", "date": "20/11/2026", "last_modified": "2026-11-20T00:00:00"}]"#,
            "reporting_date"
        ),
        (
            #"[{"ad_network": "a", "campaign_name": "c", "campaign_type": "t", "date": "2026-11-20", "last_modified": "yesterday"}]"#,
            "last_modified"
        ),
        (
            #"[{"ad_network": "a", "campaign_name": "c", "campaign_type": "t", "date": "2026-11-20", "last_modified": "2026-11-20T25:00:00"}]"#,
            "last_modified"
        ),
        (
            #"[{"ad_network": "a", "campaign_name": "c", "campaign_type": "t", "date": "2026-11-20", "last_modified": "2026-11-20T00:00:00", "clicks": 1.5}]"#,
            "clicks"
        ),
        (
            #"[{"ad_network": "a", "campaign_name": "c", "campaign_type": "t", "date": "2026-11-20", "last_modified": "2026-11-20T00:00:00", "cost": "n/a"}]"#,
            "cost"
        ),
        (
            #"[{"ad_network": "a", "campaign_name": ["c"], "campaign_type": "t", "date": "2026-11-20", "last_modified": "2026-11-20T00:00:00"}]"#,
            "campaign_name"
        ),
        (#"{"error": "Invalid API key"}"#, "(response)"),
        // Values the warehouse columns cannot hold: caught here, named, instead of failing the COPY.
        (
            #"[{"ad_network": "a", "campaign_name": "c", "campaign_type": "t", "date": "2026-11-20", "last_modified": "2026-11-20T00:00:00", "cost": 123456789.5}]"#,
            "cost"
        ),
        (
            #"[{"ad_network": "a", "campaign_name": "c", "campaign_type": "t", "date": "2026-11-20", "last_modified": "2026-11-20T00:00:00", "impressions": 1e20}]"#,
            "impressions"
        ),
    ])
    func badRecordsArePermanentErrorsNamingTheField(_ json: String, _ field: String) throws {
        var writer = TSVWriter()
        writer.plain("before")
        writer.endRow()
        let converter = SingularConverter(table: .campaigns, channelName: "c", whenRetrieved: "2026-11-29 04:30:00", day: nil)
        let error = try #require(throws: ConversionError.self) {
            try Array(json.utf8).withUnsafeBytes { try converter.convert($0, into: &writer) }
        }
        #expect(error.field == field)
        #expect(error.errorClass == .permanent)
        #expect(writer.rows == 1 && writer.buffer == Array("before\n".utf8), "nothing of a failed response is kept")
    }

    /// Streams `json` through the splitter in chunks of `size` bytes (batches of `batch` bytes) and converts.
    static func streamed(_ json: String, chunk size: Int, batch: Int) throws -> [[String?]] {
        let converter = SingularConverter(table: .campaigns, channelName: "spend\teu", whenRetrieved: "2026-11-29 04:30:00.125", day: nil)
        var splitter = JSONArrayStream(batchBytes: batch, maxObjectBytes: 4096)
        var writer = TSVWriter()
        let convert = { (b: [UInt8]) throws in _ = try b.withUnsafeBytes { try converter.convert($0, into: &writer) } }
        let bytes = Array(json.utf8)
        for start in stride(from: 0, to: bytes.count, by: size) {
            try bytes[start..<min(start + size, bytes.count)].withUnsafeBytes { try splitter.feed($0, convert) }
        }
        try splitter.finish(convert)
        return TSVReader.rows(writer.buffer)
    }

    @Test func aStreamedDayConvertsAsTheWholeResponseDoesInAnyChunking() throws {
        // Strings holding brackets, braces, commas, escaped quotes and backslashes; nested values; odd whitespace.
        let records = (0..<40).map { i in
            #"{"ad_network": "n\#(i) ],[ {\"x\"}, \\", "campaign_name": "c\#(i) 😀 中", "campaign_type": "UA", "date": "2026-11-20", "last_modified": "2026-11-21T00:00:00", "impressions": \#(i), "unknown": {"a": [1, {"b": "]"}]}}"#
        }
        let json = " \n[ " + records.joined(separator: " ,\n ") + " ]\n "
        let (whole, _) = try Self.convert(.campaigns, json, day: nil)
        #expect(whole.count == 40)
        for (size, batch) in [(1, 1), (7, 64), (100, 1 << 20), (json.utf8.count, 200)] {
            #expect(try Self.streamed(json, chunk: size, batch: batch) == whole, "chunks of \(size), batches of \(batch)")
        }
        #expect(try Self.streamed("[]", chunk: 1, batch: 1).isEmpty)
        #expect(try Self.streamed(" [ ] ", chunk: 2, batch: 1).isEmpty)
    }

    @Test func aStreamedDayThatBreaksOffOrIsNotAnArrayFailsNamed() throws {
        let cut =
            #"[{"ad_network": "a", "campaign_name": "c", "campaign_type": "UA", "date": "2026-11-20", "last_modified": "2026-11-21T00:00:00"}, {"ad_network": "b""#
        let truncated = try #require(throws: JSONError.self) { _ = try Self.streamed(cut, chunk: 5, batch: 1) }
        #expect(truncated.errorClass == .transient && truncated.reason.contains("never ended"))
        let trailing = try #require(throws: JSONError.self) { _ = try Self.streamed(#"[] {"x": 1}"#, chunk: 3, batch: 1) }
        #expect(trailing.errorClass == .permanent)
        #expect(throws: JSONError.self) { _ = try Self.streamed("42", chunk: 1, batch: 1) }
        #expect(throws: JSONError.self) { _ = try Self.streamed("", chunk: 1, batch: 1) }
        // Singular's {"error": …} answer arrives whole at the end and is the API's error, as before.
        #expect(throws: (any Error).self) { _ = try Self.streamed(#"{"error": "Invalid API key"}"#, chunk: 4, batch: 1) }
        let huge = "{\"error\": \"" + String(repeating: "x", count: 5000) + "\"}"
        #expect(throws: JSONError.self) { _ = try Self.streamed(huge, chunk: 1000, batch: 1) }
    }

    @Test func aTruncatedResponseIsTransient() throws {
        var writer = TSVWriter()
        let converter = SingularConverter(table: .campaigns, channelName: "c", whenRetrieved: "2026-11-29 04:30:00", day: nil)
        let error = try #require(throws: JSONError.self) {
            try Array(#"[{"ad_network": "a", "campaign_na"#.utf8).withUnsafeBytes { try converter.convert($0, into: &writer) }
        }
        #expect(error.errorClass == .transient)
        #expect(writer.rows == 0)
    }
}
