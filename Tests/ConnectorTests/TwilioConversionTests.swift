import Foundation
import HuskimoTesting
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore

@Suite struct TwilioConversionTests {
    static func convert(_ table: TwilioTable, _ json: String, day: Day? = nil) throws -> ([[String?]], PageResult) {
        let converter = TwilioPageConverter(table: table, channelName: "acme\tus", whenRetrieved: "2026-11-29 04:30:00", day: day)
        var writer = TSVWriter()
        let bytes = Array(json.utf8)
        let result = try bytes.withUnsafeBytes { try converter.convert(page: $0, into: &writer) }
        #expect(writer.rows == result.records)
        return (TSVReader.rows(writer.buffer), result)
    }

    @Test func callsKeepTheColumnOrderOf03AndConvertEachField() throws {
        let json = """
            {"first_page_uri": "/x", "end": 1, "calls": [
              {"sid": "CA1", "date_created": "Tue, 31 Aug 2010 23:59:58 +0000", "date_updated": "Wed, 1 Sep 2010 00:01:00 +0100",
               "parent_call_sid": null, "account_sid": "AC1", "to": "+14155551212", "from": "sip:a\\tb@x", "phone_number_sid": "PN1",
               "status": "completed", "start_time": "Wed, 01 Sep 2010 00:00:01 +0000", "end_time": null, "duration": "15",
               "price": "-0.03000", "price_unit": "USD", "direction": "inbound", "answered_by": null, "api_version": "2010-04-01",
               "forwarded_from": "", "caller_name": "Zoë \\"Z\\" \\\\ 😀", "subresource_uris": {"notifications": "/n"}, "group_sid": null}
            ], "next_page_uri": "/2010-04-01/Accounts/AC1/Calls.json?Page=1&PageToken=PACA1", "page": 0}
            """
        let (rows, result) = try Self.convert(.calls, json, day: Day("2010-09-01"))
        #expect(result.records == 1)
        #expect(result.nextPage == "/2010-04-01/Accounts/AC1/Calls.json?Page=1&PageToken=PACA1")
        #expect(
            TwilioTable.calls.columnNames == [
                "channel_name", "when_retrieved", "sid", "account_sid", "api_version", "date_created", "date_updated",
                "parent_call_sid", "to", "from", "phone_number_sid", "status", "start_time", "end_time", "duration", "price",
                "direction", "answered_by", "forwarded_from", "caller_name",
            ])
        #expect(
            rows == [
                [
                    "acme\tus", "2026-11-29 04:30:00", "CA1", "AC1", "2010-04-01", "2010-08-31 23:59:58", "2010-08-31 23:01:00",
                    nil, "+14155551212", "sip:a\tb@x", "PN1", "completed", "2010-09-01 00:00:01", nil, "15", "-0.03000", "inbound",
                    nil, "", "Zoë \"Z\" \\ 😀",
                ]
            ])
    }

    @Test func aRecordOutsideTheJobsDayFailsThePageNamingIt() throws {
        let json = """
            {"calls": [
              {"sid": "CA1", "account_sid": "AC1", "start_time": "Fri, 20 Nov 2026 23:59:59 +0000"},
              {"sid": "CA2", "account_sid": "AC1", "start_time": "Sat, 21 Nov 2026 00:00:00 +0000"}
            ], "next_page_uri": null}
            """
        let error = #expect(throws: ConversionError.self) { try Self.convert(.calls, json, day: Day("2026-11-20")) }
        #expect(error?.recordSID == "CA2" && error?.field == "start_time" && error?.reason.contains("on 2026-11-21") == true)
        #expect(error?.errorClass == .permanent)
    }

    @Test func messagesCountBodyInUTF16AndNeverStoreIt() throws {
        let json = """
            {"messages": [
              {"sid": "SM1", "account_sid": "AC1", "api_version": "2010-04-01", "body": "héllo 😀 \\ud83d\\ude00 \\n",
               "date_created": "Mon, 16 Aug 2010 03:45:01 +0000", "date_updated": "Mon, 16 Aug 2010 03:45:03 +0000",
               "date_sent": "Mon, 16 Aug 2010 03:45:03 +0000", "to": "+1", "from": "+2", "status": "sent", "price": null,
               "price_unit": "USD", "num_media": "0", "num_segments": "1", "direction": "outbound-api", "error_message": null,
               "error_code": null},
              {"sid": "SM2", "account_sid": "AC1", "api_version": "2010-04-01", "body": null, "date_created": null,
               "date_updated": "", "date_sent": null, "num_media": "", "num_segments": 3, "error_message": "\\\\N"}
            ], "next_page_uri": null}
            """
        let (rows, result) = try Self.convert(.messages, json)
        #expect(result.nextPage == nil)
        // In a job for 2010-08-16, SM2 (never sent: date_sent null) fails the page, named: no day partition holds it.
        let unsent = #expect(throws: ConversionError.self) { try Self.convert(.messages, json, day: Day("2010-08-16")) }
        #expect(unsent?.recordSID == "SM2" && unsent?.field == "date_sent" && unsent?.reason.contains("is null") == true)
        // "héllo 😀 😀 \n": h é l l o space (6) + 😀 (2) + space + 😀 (2) + space + \n = 13 UTF-16 units.
        #expect("héllo 😀 😀 \n".utf16.count == 13)
        #expect(rows[0][10] == "13")
        #expect(!rows[0].contains { $0?.contains("héllo") == true })
        #expect(rows[0][14] == "0" && rows[0][15] == "1")
        #expect(rows[1][5] == nil && rows[1][6] == nil && rows[1][7] == nil)  // a missing date is NULL, never "now"
        #expect(rows[1][10] == nil)  // null body → NULL length
        #expect(rows[1][14] == nil && rows[1][15] == "3")
        #expect(rows[1][17] == "\\N")  // the text \N survives as text
        #expect(rows.allSatisfy { $0.count == 18 })
    }

    @Test func incomingPhoneNumbersMapTheMisnamedColumnAndBooleans() throws {
        let json = """
            {"incoming_phone_numbers": [{"sid": "PN1", "account_sid": "AC1", "api_version": "2010-04-01",
              "date_created": "Thu, 30 Jul 2015 20:00:00 +0000", "date_updated": "Thu, 30 Jul 2015 20:00:00 +0000",
              "friendly_name": "(808) 925-5327", "phone_number": "+18089255327", "voice_application_sid": "",
              "sms_application_sid": null, "voice_url": null, "voice_method": "POST", "voice_fallback_url": null,
              "voice_fallback_method": "POST", "status_callback": "", "status_callback_method": "GET",
              "voice_caller_id_lookup": false, "sms_url": "", "sms_method": "POST", "sms_fallback_url": "",
              "sms_fallback_method": "POST", "sms_status_callback": null, "address_requirements": "none",
              "capabilities": {"voice": true, "sms": false}, "beta": false}], "next_page_uri": null}
            """
        let (rows, _) = try Self.convert(.incomingPhoneNumbers, json)
        let row = try #require(rows.first)
        #expect(row.count == 24)
        #expect(TwilioTable.incomingPhoneNumbers.columnNames[16] == "status_fallback_method")
        #expect(row[16] == "GET")
        #expect(row[17] == "false")
        #expect(row[9] == "" && row[10] == nil)  // "" and null stay distinct
    }

    /// Keys are matched by name whatever their order: the converter predicts each record's key order from the one
    /// before, and a record with keys moved, missing, added or escaped must still land in the right columns.
    @Test func keysInAnyOrderLandInTheirColumns() throws {
        let json = """
            {"recordings": [
              {"sid": "RE1", "account_sid": "AC1", "api_version": "v", "date_created": null, "date_updated": null, "call_sid": "CA1", "duration": "5"},
              {"sid": "RE2", "account_sid": "AC1", "api_version": "v", "date_created": null, "date_updated": null, "call_sid": "CA2", "duration": "6"},
              {"duration": "7", "call_sid": "CA3", "extra": {"a": 1}, "sid": "RE3", "account_sid": "AC2"},
              {"sid": "RE4", "account_sid": "AC1", "api_version": "v", "date_created": null, "date_updated": null, "call_sid": "CA4", "duration": "8"},
              {"sid": "RE5", "account_sid": "AC1", "call_sid": "CA5", "duration": "9", "api_v\\u0065rsion": "v2"},
              {"sid": "RE6", "account_sid": "AC1", "api_version": "v", "date_created": null, "date_updated": null, "call_sid": "CA6", "duration": "10"}
            ], "next_page_uri": null}
            """
        let (rows, result) = try Self.convert(.recordings, json)
        #expect(result.records == 6)
        let picked = rows.map { [$0[2], $0[3], $0[4], $0[7], $0[8]] }
        #expect(
            picked == [
                ["RE1", "AC1", "v", "CA1", "5"], ["RE2", "AC1", "v", "CA2", "6"], ["RE3", "AC2", nil, "CA3", "7"],
                ["RE4", "AC1", "v", "CA4", "8"],
                // An escaped key is never taken for a field name (Twilio's keys have no escapes): api_version stays NULL.
                ["RE5", "AC1", nil, "CA5", "9"], ["RE6", "AC1", "v", "CA6", "10"],
            ])
    }

    @Test func badDataIsAPermanentErrorNamingTheField() throws {
        let json =
            #"{"recordings": [{"sid": "RE9", "account_sid": "AC1", "date_created": "yesterday-ish", "duration": "4"}], "next_page_uri": null}"#
        let error = #expect(throws: ConversionError.self) { try Self.convert(.recordings, json) }
        #expect(error?.field == "date_created")
        #expect(error?.recordSID == "RE9")
        #expect(error?.errorClass == .permanent)
        let notInt = #"{"recordings": [{"sid": "RE8", "duration": "4.5"}], "next_page_uri": null}"#
        #expect(throws: ConversionError.self) { try Self.convert(.recordings, notInt) }
    }

    @Test func badValuesFailAtExtractTimeWithTheFieldNamed() throws {
        func page(_ fields: String) -> String {
            #"{"recordings": [{"sid": "RE7", "account_sid": "AC1", "# + fields + #"}], "next_page_uri": null}"#
        }
        // NULL in a NOT NULL column.
        let noAccount = #"{"recordings": [{"sid": "RE6", "account_sid": null}], "next_page_uri": null}"#
        let null = try #require(throws: ConversionError.self) { try Self.convert(.recordings, noAccount) }
        #expect(null.field == "account_sid" && null.reason.contains("NOT NULL") && null.recordSID == "RE6")
        // Longer than its column in bytes (as Redshift counts): 12 CJK characters are 36 bytes in a varchar(34).
        let wide = try #require(throws: ConversionError.self) { try Self.convert(.recordings, page(#""call_sid": "日本語日本語日本語日本語""#)) }
        #expect(wide.field == "call_sid" && wide.reason.contains("36 bytes; the column holds 34"), "\(wide.reason)")
        // The same through the escaped path (a \u escape in the value).
        let escaped = try #require(throws: ConversionError.self) {
            try Self.convert(.recordings, page(#""call_sid": "\u65e5本語日本語日本語日本語""#))
        }
        #expect(escaped.field == "call_sid" && escaped.reason.contains("36 bytes"))
        // 34 ASCII bytes fit exactly.
        #expect(try Self.convert(.recordings, page(#""call_sid": "CA\#(String(repeating: "0", count: 32))""#)).0.count == 1)
        // Integers that are not integers.
        let notInt = try #require(throws: ConversionError.self) { try Self.convert(.recordings, page(#""duration": "12e3""#)) }
        #expect(notInt.field == "duration" && notInt.reason.contains("not an integer"))
    }

    @Test func invalidUTF8IsReplacedAndCountedNeverStaged() throws {
        let converter = TwilioPageConverter(table: .recordings, channelName: "c", whenRetrieved: "2026-01-01 00:00:00", day: nil)
        var writer = TSVWriter()
        // 0xC3 0x28 is an invalid 2-byte sequence; 0xED 0xA0 0x80 a surrogate; a valid "é" stays as it is.
        let page =
            Array(#"{"recordings": [{"sid": "REé1", "account_sid": "AC1", "call_sid": "a"#.utf8) + [0xC3, 0x28]
            + Array(#"b", "api_version": "x"#.utf8) + [0xED, 0xA0, 0x80] + Array(#"\ty"}], "next_page_uri": null}"#.utf8)
        _ = try page.withUnsafeBytes { try converter.convert(page: $0, into: &writer) }
        #expect(writer.replacedInvalidUTF8 == 2)
        #expect(String(validating: writer.buffer, as: UTF8.self) != nil, "the staged bytes are valid UTF-8")
        let row = TSVReader.rows(writer.buffer)[0]
        #expect(row.contains("a\u{FFFD}(b") && row.contains("REé1"))
        #expect(row.contains { $0?.hasPrefix("x\u{FFFD}") == true && $0?.hasSuffix("\ty") == true }, "\(row)")
        for bad: [UInt8] in [[0xC0, 0x80], [0xE0, 0x80, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xF8], [0xE2, 0x82], [0x80]] {
            #expect(!bad.withUnsafeBytes { UTF8Check.isValid($0) }, "\(bad)")
        }
        for good in ["", "ascii only, longer than eight bytes", "日本語 שלום 😀 é", String(repeating: "x", count: 17) + "😀"] {
            #expect(Array(good.utf8).withUnsafeBytes { UTF8Check.isValid($0) }, "\(good)")
        }
    }

    @Test func aTruncatedPageIsTransientAndWritesNothing() throws {
        let full =
            #"{"recordings": [{"sid": "RE1", "account_sid": "AC1", "duration": "4"}, {"sid": "RE2", "account_sid": "AC1", "duration": "5"}], "next_page_uri": null}"#
        let converter = TwilioPageConverter(table: .recordings, channelName: "c", whenRetrieved: "2026-01-01 00:00:00", day: nil)
        var writer = TSVWriter()
        let cut = Array(full.utf8.prefix(60))
        let error = #expect(throws: JSONError.self) { try cut.withUnsafeBytes { try converter.convert(page: $0, into: &writer) } }
        #expect(error?.errorClass == .transient)
        #expect(writer.buffer.isEmpty && writer.rows == 0)
        let ok = try Array(full.utf8).withUnsafeBytes { try converter.convert(page: $0, into: &writer) }
        #expect(ok.records == 2 && writer.rows == 2)
        #expect(TSVReader.rows(writer.buffer).map { $0[2] } == ["RE1", "RE2"])
    }

    /// A page streamed through ``PageStream`` in chunks of `size` bytes.
    static func streamed(_ table: TwilioTable, _ json: String, chunk size: Int, day: Day? = nil) throws -> ([[String?]], PageResult) {
        // Converted at every chunk (no gathering): every cut point is a place where conversion stops and resumes.
        let page = PageStream(
            TwilioPageConverter(table: table, channelName: "acme\tus", whenRetrieved: "2026-11-29 04:30:00", day: day),
            minBatchBytes: 0)
        page.begin()
        let bytes = Array(json.utf8)
        for start in stride(from: 0, to: bytes.count, by: size) {
            try bytes[start..<min(start + size, bytes.count)].withUnsafeBytes { try page.feed($0) }
        }
        let result = try page.finish()
        #expect(page.tsv.rows == result.records)
        return (TSVReader.rows(page.tsv.buffer), result)
    }

    @Test func aStreamedPageConvertsAsTheWholePageDoesInAnyChunking() throws {
        // Strings holding brackets, braces, commas, escaped quotes and backslashes, a nested "calls" key, links before
        // and after the list, odd whitespace.
        let records = (0..<30).map { i in
            #"{"sid": "CA\#(i)", "account_sid": "AC1", "to": "+1 ],[ {\"x\"}, \\", "from": "a\\", "status": "completed", "start_time": "Wed, 01 Sep 2010 00:00:\#(String(format: "%02d", i)) +0000", "caller_name": "Zoë 😀 中 \\\"", "parent_call_sid": null, "end_time": null, "duration": "\#(i)", "subresource_uris": {"calls": [1, true, false, null, {"b": "]"}]}}"#
        }
        for json in [
            #"{"first_page_uri": "/x", "calls": [ "# + records.joined(separator: " ,\n ")
                + #" ], "next_page_uri": "/2010-04-01/Accounts/AC1/Calls.json?Page=1", "page": 0}"#,
            #" {"next_page_uri": "/n?\"]", "page": {"calls": []},"calls":["# + records.joined(separator: ",") + "]}\n",
        ] {
            let (whole, page) = try Self.convert(.calls, json, day: Day("2010-09-01"))
            #expect(whole.count == 30)
            for size in [1, 2, 7, 64, 1000, json.utf8.count] {
                let (rows, result) = try Self.streamed(.calls, json, chunk: size, day: Day("2010-09-01"))
                #expect(rows == whole, "chunks of \(size)")
                #expect(result.records == 30 && result.nextPage == page.nextPage, "chunks of \(size)")
            }
        }
        let (none, last) = try Self.streamed(.calls, #"{"calls": [ ], "next_page_uri": null}"#, chunk: 3)
        #expect(none.isEmpty && last.records == 0 && last.nextPage == nil)
    }

    @Test func aStreamedPageThatBreaksOffOrIsNotAPageFailsNamed() throws {
        let cut = #"{"calls": [{"sid": "CA1", "account_sid": "AC1", "start_time": "Wed, 01 Sep 2010 00:00:01 +0000"}, {"sid": "CA2""#
        let truncated = try #require(throws: JSONError.self) { _ = try Self.streamed(.calls, cut, chunk: 5) }
        #expect(truncated.errorClass == .transient, "\(truncated)")
        let noList = try #require(throws: JSONError.self) { _ = try Self.streamed(.calls, #"{"code": 20003, "message": "x"}"#, chunk: 4) }
        #expect(noList.reason.contains("no \"calls\" list"))
        let array = try #require(throws: JSONError.self) { _ = try Self.streamed(.calls, "[]", chunk: 1) }
        #expect(array.errorClass == .permanent, "\(array)")
        #expect(throws: JSONError.self) { _ = try Self.streamed(.calls, #"{"calls": []} x"#, chunk: 2) }
        #expect(throws: JSONError.self) { _ = try Self.streamed(.calls, "", chunk: 1) }
        // A whole record whose value holds a short \u escape is bad where it stands, even at the end of what has arrived.
        let short = PageStream(
            TwilioPageConverter(table: .calls, channelName: "c", whenRetrieved: "2026-11-29 04:30:00", day: nil),
            minBatchBytes: 0)
        short.begin()
        let escape = try #require(throws: JSONError.self) {
            try Array(#"{"calls": [{"sid": "CA1", "account_sid": "AC1", "caller_name": "\u1"}"#.utf8).withUnsafeBytes { try short.feed($0) }
        }
        #expect(escape.errorClass == .permanent && escape.reason.contains("\\u escape"), "\(escape)")
        // Bounded: one record, or one member around the list, as it streams in; whitespace between them is neither.
        func feed(_ parts: [String], limit: Int = 100) throws -> PageResult {
            let page = PageStream(
                TwilioPageConverter(table: .calls, channelName: "c", whenRetrieved: "2026-11-29 04:30:00", day: nil),
                maxPendingBytes: limit)
            page.begin()
            for part in parts {
                let bytes = Array(part.utf8)
                for start in stride(from: 0, to: bytes.count, by: 50) {
                    try bytes[start..<min(start + 50, bytes.count)].withUnsafeBytes { try page.feed($0) }
                }
            }
            return try page.finish()
        }
        let pad = String(repeating: "x", count: 1 << 16)  // beyond the batch size, so conversion runs before the end
        let record = try #require(throws: JSONError.self) { _ = try feed(["{\"calls\": [{\"sid\": \"\(pad)\"}]}"]) }
        #expect(record.reason.contains("over 100 bytes") && record.errorClass == .permanent)
        #expect(throws: JSONError.self) { _ = try feed(["{\"uri\": \"\(pad)\", \"calls\": []}"]) }
        let spaced = try feed([
            "{\"calls\": [", String(repeating: " ", count: 1 << 17), "{\"sid\": \"CA1\", \"account_sid\": \"AC1\"}",
            String(repeating: "\n", count: 1 << 17), "], \"next_page_uri\": null}",
        ])
        #expect(spaced.records == 1)
    }

    @Test func rfc2822ParsesTwilioDatesToUTC() {
        func parse(_ s: String) -> String? {
            let b = Array(s.utf8)
            return b.withUnsafeBytes { RFC2822.seconds($0, 0, b.count) }.map { UTCTime.sql(seconds: $0) }
        }
        #expect(parse("Tue, 31 Aug 2010 20:36:28 +0000") == "2010-08-31 20:36:28")
        #expect(parse("Wed, 1 Sep 2010 00:00:00 +0200") == "2010-08-31 22:00:00")
        #expect(parse("Fri, 01 Jan 2016 23:59:59 -0800") == "2016-01-02 07:59:59")
        #expect(parse("29 Feb 2024 12:00:00 GMT") == "2024-02-29 12:00:00")
        #expect(parse("30 Feb 2024 12:00:00 +0000") == nil)
        #expect(parse("2024-02-01T00:00:00Z") == nil)
        #expect(parse("Tue, 31 Aug 2010 20:36:28 +0000 junk") == nil)
        // Years a timestamp column holds, in UTC: 0001 to 9999, whatever the offset did.
        #expect(parse("Mon, 01 Jan 0001 00:00:00 +0000") == "0001-01-01 00:00:00")
        #expect(parse("Fri, 31 Dec 9999 23:59:59 +0000") == "9999-12-31 23:59:59")
        #expect(parse("Sat, 01 Jan 0000 12:00:00 +0000") == nil)
        #expect(parse("Mon, 01 Jan 0001 00:30:00 +0100") == nil, "an offset pushing 0001 into year 0")
        #expect(parse("Fri, 31 Dec 9999 23:30:00 -0100") == nil, "an offset pushing 9999 into 10000")
        var cache = RFC2822.Cache()
        Array("Sat, 01 Jan 0000 12:00:00 +0000".utf8).withUnsafeBytes { p in
            #expect(RFC2822.seconds(p, 0, p.count, cache: &cache) == nil, "the fast path refuses year 0 too")
        }
    }

    /// The cached fixed-offset path for Twilio's own date shape agrees with the general parser, date after date
    /// (days alternating, so a stale cache would show), and refuses what the general parser refuses.
    @Test func theFastDatePathAgreesWithTheGeneralOne() {
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        var cache = RFC2822.Cache()
        var written = RFC2822.Cache()
        var seed: UInt64 = 99
        for n in 0..<5000 {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            let seconds = n % 2 == 0 ? 1_700_000_000 + Int(seed >> 40) : Int(seed >> 31 % 4_000_000_000)
            let days = seconds / 86_400, rest = seconds % 86_400
            let (y, m, d) = Day.daysToCivil(days)
            let text = String(format: "Fri, %02d %@ %04d %02d:%02d:%02d +0000", d, months[m - 1], y, rest / 3600, rest / 60 % 60, rest % 60)
            let bytes = Array(text.utf8)
            bytes.withUnsafeBytes { p in
                #expect(RFC2822.seconds(p, 0, p.count, cache: &cache) == seconds, "\(text)")
                #expect(RFC2822.seconds(p, 0, p.count) == seconds)
            }
            var out = TSVWriter(capacity: 64)
            out.beginField()
            RFC2822.write(seconds, into: &out, cache: &written)
            #expect(String(decoding: out.buffer, as: UTF8.self) == UTCTime.sql(seconds: seconds))
        }
        for bad in [
            "Fri, 31 Feb 2026 12:00:00 +0000", "Fri, 20 Nov 2026 24:00:00 +0000", "Fri, 20 Nov 2026 12:60:00 +0000",
            "Fri, 2x Nov 2026 12:00:00 +0000", "Fri, 20 Nox 2026 12:00:00 +0000", "Fri, 00 Nov 2026 12:00:00 +0000",
        ] {
            Array(bad.utf8).withUnsafeBytes { p in
                #expect(RFC2822.seconds(p, 0, p.count, cache: &cache) == nil, "\(bad)")
            }
        }
        // A shape the fast path does not take is handed to the general parser, never refused by it alone.
        Array("Fri,  5 Nov 2026 12:34:56 +0000".utf8).withUnsafeBytes { p in
            #expect(RFC2822.seconds(p, 0, p.count, cache: &cache) == Day("2026-11-05")!.ordinal * 86_400 + 12 * 3600 + 34 * 60 + 56)
        }
        Array("123, 20 Nov 2026 12:00:00 +0000".utf8).withUnsafeBytes { p in
            #expect(RFC2822.seconds(p, 0, p.count, cache: &cache) == nil)
            #expect(RFC2822.seconds(p, 0, p.count) == nil)
        }
        // Another offset is not the fast path's: the general parser applies it.
        Array("Fri, 20 Nov 2026 12:00:00 +0100".utf8).withUnsafeBytes { p in
            #expect(RFC2822.seconds(p, 0, p.count, cache: &cache) == Day("2026-11-20")!.ordinal * 86_400 + 11 * 3600)
        }
    }

    /// The writer's raw storage grows from a tiny capacity through every kind of append, truncates back to a
    /// mark, and reads back exactly what was written.
    @Test func tsvStorageGrowsAndTruncatesExactly() {
        var writer = TSVWriter(capacity: 1)
        var expected: [[String?]] = []
        for i in 0..<3000 {
            let text = String(repeating: "ab\t\\😀", count: i % 40)
            writer.text(text)
            writer.integer(i * (i % 2 == 0 ? 1 : -1))
            writer.null()
            writer.plain("2026-11-20 00:00:0\(i % 10)")
            "x\(i)".utf8.withContiguousStorageIfAvailable { writer.plain(UnsafeRawBufferPointer($0)) }
            writer.endRow()
            expected.append([text, String(i * (i % 2 == 0 ? 1 : -1)), nil, "2026-11-20 00:00:0\(i % 10)", "x\(i)"])
        }
        #expect(writer.rows == 3000)
        #expect(TSVReader.rows(writer.buffer) == expected)
        let mark = writer.count
        writer.text("gone")
        writer.endRow()
        writer.truncate(to: mark, rows: 3000)
        #expect(writer.count == mark && writer.rows == 3000 && TSVReader.rows(writer.buffer) == expected)
        writer.reset()
        #expect(writer.isEmpty && writer.rows == 0)
    }

    @Test func tsvEscapesTheRawBytesBothWarehousesRead() {
        var writer = TSVWriter()
        writer.integer(1)
        writer.text("a\tb\nc\rd\\e\"f😀")
        writer.text("")
        writer.text(nil as String?)
        writer.text("\\N")
        writer.text("nul\u{0}here")
        writer.endRow()
        let expected: [UInt8] = Array("1\ta\\\tb\\\nc\\\rd\\\\e\"f😀\t\t\\N\t\\\\N\tnul\u{FFFD}here\n".utf8)
        #expect(writer.buffer == expected)
        #expect(writer.backslashNValues == 1 && writer.replacedNULs == 1)
        #expect(TSVReader.rows(writer.buffer) == [["1", "a\tb\nc\rd\\e\"f😀", "", nil, "\\N", "nul\u{FFFD}here"]])
    }
}

/// Bulk Export's day files (JSON lines, ISO-8601 times) and usage records (a plain day, an ISO time with an offset).
@Suite struct TwilioExportConversionTests {
    @Test func iso8601TimesAndDaysParseToUTCAndRefuseWhatIsNot() {
        func seconds(_ text: String) -> Int? { Array(text.utf8).withUnsafeBytes { ISO8601Time.seconds($0, 0, $0.count) } }
        func day(_ text: String) -> Int? { Array(text.utf8).withUnsafeBytes { ISO8601Time.day($0, 0, $0.count) } }
        let base = Day("2019-03-21")!.ordinal * 86_400 + 15 * 3600 + 39 * 60 + 25
        #expect(seconds("2019-03-21T15:39:25Z") == base)
        #expect(seconds("2019-03-21T15:39:25.123456Z") == base)
        #expect(seconds("2019-03-21T17:39:25+02:00") == base)
        #expect(seconds("2019-03-21T12:39:25-0300") == base)
        #expect(seconds("2019-03-21 15:39:25Z") == base)
        for bad in [
            "2019-03-21T15:39:25", "2019-02-30T15:39:25Z", "2019-03-21T25:39:25Z", "2019-03-21T15:39:25Zx", "2019-03-21T15:39:25.Z", "x",
        ] {
            #expect(seconds(bad) == nil, "\(bad)")
        }
        #expect(day("2026-12-05") == Day("2026-12-05")!.ordinal)
        #expect(day("2026-13-05") == nil && day("2026-2-05") == nil && day("2024-02-29") != nil && day("2025-02-29") == nil)
    }

    @Test func jsonLinesConvertInAnyChunkingIntoTheListsColumns() throws {
        let lines =
            (0..<20).map { i in
                #"{"account_sid": "AC1", "body": "hé\n\"\#(i)\"", "date_created": "2023-04-01T00:00:0\#(i % 10)Z", "date_sent": "2023-04-01T10:00:\#(String(format: "%02d", i))Z", "direction": "outbound-api", "from": "+1", "num_media": 0, "num_segments": \#(1 + i % 3), "price": null, "sid": "SM\#(i)", "status": "delivered", "to": "+2"}"#
            }.joined(separator: "\n") + "\n"
        var results: [[[String?]]] = []
        for size in [1, 7, 64, 100_000] {
            let page = PageStream(
                TwilioPageConverter(table: .messages, channelName: "c", whenRetrieved: "2026-12-06 00:00:00", day: Day("2023-04-01")),
                lines: true, minBatchBytes: 0)
            page.begin()
            let bytes = Array(lines.utf8)
            for start in stride(from: 0, to: bytes.count, by: size) {
                try bytes[start..<min(start + size, bytes.count)].withUnsafeBytes { try page.feed($0) }
            }
            #expect(try page.finish().records == 20)
            results.append(TSVReader.rows(page.tsv.buffer))
        }
        #expect(results.allSatisfy { $0 == results[0] })
        let row = results[0][4]
        let columns = TwilioTable.messages.columnNames
        #expect(row[columns.firstIndex(of: "date_sent")!] == "2023-04-01 10:00:04")
        #expect(row[columns.firstIndex(of: "api_version")!] == nil, "not in an export: NULL")
        #expect(row[columns.firstIndex(of: "body_length")!] == "6")
        #expect(row[columns.firstIndex(of: "num_segments")!] == "2")

        // A record of another day fails the file, named; a line cut short is an error, not a row.
        for (bad, reason) in [
            (#"{"sid": "SM9", "account_sid": "AC1", "date_sent": "2023-04-02T00:00:00Z"}"#, "outside the job's day"),
            (#"{"sid": "SM9", "account_sid": "AC1", "date_sent": "2023-04-01T00:00"#, "truncated"),
        ] {
            let page = PageStream(
                TwilioPageConverter(table: .messages, channelName: "c", whenRetrieved: "2026-12-06 00:00:00", day: Day("2023-04-01")),
                lines: true)
            page.begin()
            #expect(throws: (any Error).self, "\(reason)") {
                try Array(bad.utf8).withUnsafeBytes { try page.feed($0) }
                _ = try page.finish()
            }
        }
    }

    @Test func usageRecordsKeepTheirDayAndCounts() throws {
        let json = #"""
            {"usage_records": [{"account_sid": "AC1", "as_of": "2026-12-06T03:00:00+00:00", "category": "calls", "count": "12", "count_unit": "calls", "description": "Voice Minutes", "end_date": "2026-12-05", "price": "1.2300", "price_unit": "usd", "start_date": "2026-12-05", "usage": "34", "usage_unit": "minutes"}], "next_page_uri": null}
            """#
        let (rows, result) = try TwilioConversionTests.convert(.usageRecords, json, day: Day("2026-12-05"))
        #expect(result.records == 1)
        #expect(
            rows[0] == [
                "acme\tus", "2026-11-29 04:30:00", "AC1", "2026-12-05", "calls", "Voice Minutes", "12", "calls", "34", "minutes", "1.2300",
                "usd", "2026-12-06 03:00:00",
            ])
        let other = json.replacingOccurrences(of: "\"start_date\": \"2026-12-05\"", with: "\"start_date\": \"2026-12-04\"")
        #expect(throws: ConversionError.self) { try TwilioConversionTests.convert(.usageRecords, other, day: Day("2026-12-05")) }
    }
}
