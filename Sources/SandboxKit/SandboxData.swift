import Foundation
import HuskimoCore
import Synchronization

/// A sandbox account: a Twilio Account SID with its token, and how busy it is.
public struct SandboxAccount: Sendable, Hashable {
    public var sid: String
    public var token: String
    /// The parent account's SID for a subaccount.
    public var parent: String?
    public var friendlyName: String
    /// Average records per day for calls, messages and recordings (each day varies ±50 %, some days empty).
    public var recordsPerDay: Int
    public var phoneNumbers: Int

    public init(sid: String, token: String, parent: String? = nil, friendlyName: String, recordsPerDay: Int, phoneNumbers: Int = 25) {
        self.sid = sid
        self.token = token
        self.parent = parent
        self.friendlyName = friendlyName
        self.recordsPerDay = recordsPerDay
        self.phoneNumbers = phoneNumbers
    }

    public static func sid(_ n: Int) -> String { "AC" + String(format: "%032x", n) }

    /// Three top-level accounts; the first has two subaccounts.
    public static let defaults: [SandboxAccount] = [
        SandboxAccount(sid: sid(1), token: "sandbox-token-1", friendlyName: "Acme US", recordsPerDay: 240),
        SandboxAccount(sid: sid(2), token: "sandbox-token-2", friendlyName: "Acme EU", recordsPerDay: 180),
        SandboxAccount(sid: sid(3), token: "sandbox-token-3", friendlyName: "Ácme «Ásia» 株式会社", recordsPerDay: 60),
        SandboxAccount(sid: sid(0x11), token: "sandbox-token-11", parent: sid(1), friendlyName: "Acme US support", recordsPerDay: 90),
        SandboxAccount(sid: sid(0x12), token: "sandbox-token-12", parent: sid(1), friendlyName: "Acme US sales", recordsPerDay: 45),
        // A busy account for size tests.
        SandboxAccount(sid: sid(4), token: "sandbox-token-4", friendlyName: "Bulk", recordsPerDay: 6000),
    ]
}

/// Deterministic data: every (account, resource, day) always yields the same records, so tests can ask the
/// sandbox what a correct extraction contains.
public enum SandboxData {
    public static let resources = ["calls", "messages", "recordings"]

    /// SplitMix64 over a string key: stable across runs and platforms.
    public static func hash(_ parts: String...) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for part in parts {
            for b in part.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
            h = (h ^ 0xff) &* 0x100_0000_01b3
        }
        return mix(h)
    }

    public static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// How many records (account, resource, day) has: 0 on about one day in ten. From revision 1 on, a day with
    /// messages has one more: a message queued for hours that was sent late.
    public static func count(_ account: SandboxAccount, _ resource: String, _ day: Int, revision: Int = 0) -> Int {
        let h = hash(account.sid, resource, String(day))
        if h % 10 == 0 { return 0 }
        let base = resource == "recordings" ? account.recordsPerDay / 2 : account.recordsPerDay
        return max(1, Int(Double(base) * (0.5 + Double(h >> 11 % 1000) / 1000))) + (revision >= 1 && resource == "messages" ? 1 : 0)
    }

    /// Texts that break naive TSV writers.
    public static let hardTexts: [String?] = [
        "tab\there", "line\nbreak", "carriage\rreturn", "crlf\r\nend", "back\\slash", "\"quoted\" and 'single'",
        "emoji 😀👍🏽 👩‍👩‍👧", "中文字符 日本語 한국어", "مرحبا بالعالم עברית", "", nil, "\\N", "trailing backslash \\",
        "mixed\t\"\\\n😀", "   ", "plain text",
    ]

    /// One generated record: its SID, its filter time (seconds since 1970) and its JSON object.
    public struct Record: Sendable {
        public var sid: String
        public var time: Int
        public var json: [UInt8]
    }

    /// The last days generated, so paging through a large day does not regenerate it for every page.
    private static let cache = Mutex<[(key: String, records: [Record])]>([])

    /// The records of (account, resource, day), newest first (Twilio's order).
    public static func records(_ account: SandboxAccount, _ resource: String, day: Int, revision: Int = 0) -> [Record] {
        let key = "\(account.sid)|\(account.recordsPerDay)|\(resource)|\(day)|\(min(revision, 1))"
        if let hit = cache.withLock({ $0.first { $0.key == key }?.records }) { return hit }
        let generated = generate(account, resource, day: day, revision: revision)
        cache.withLock { entries in
            entries.insert((key, generated), at: 0)
            if entries.count > 6 { entries.removeLast() }
        }
        return generated
    }

    static func generate(_ account: SandboxAccount, _ resource: String, day: Int, revision: Int = 0) -> [Record] {
        let n = count(account, resource, day, revision: revision)
        var records: [Record] = []
        records.reserveCapacity(n)
        for i in 0..<n { records.append(record(account, resource, day: day, index: i, revision: revision)) }
        records.sort { $0.time != $1.time ? $0.time > $1.time : $0.sid > $1.sid }
        return records
    }

    static func makeSID(_ prefix: String, _ h: UInt64, _ i: Int) -> String {
        prefix + String(format: "%016llx%016llx", h, mix(h &+ UInt64(i)))
    }

    static func rfc2822(_ seconds: Int) -> String {
        let days = seconds / 86_400
        let rest = seconds % 86_400
        let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][((days % 7) + 7) % 7]
        let (y, m, d) = Day(ordinal: days).components
        let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][m - 1]
        return String(format: "%@, %02d %@ %04d %02d:%02d:%02d +0000", weekday, d, month, y, rest / 3600, rest / 60 % 60, rest % 60)
    }

    /// One record; from revision 1 on, settled: calls that were in progress have completed (end time, duration,
    /// price, status), unpriced messages are priced.
    static func record(_ account: SandboxAccount, _ resource: String, day: Int, index i: Int, revision: Int = 0) -> Record {
        let settled = revision >= 1
        let h = hash(account.sid, resource, String(day), String(i))
        let dayStart = day * 86_400
        // Edge times: the first instant of the day, the last, and a record created the day before.
        let offset: Int
        switch i {
        case 0: offset = 0
        case 1: offset = 86_399
        default: offset = Int(h % 86_400)
        }
        let time = dayStart + offset
        let created = i == 2 ? dayStart - 2 : time - Int(h >> 20 % 30)
        let text = hardTexts[Int(h >> 7 % UInt64(hardTexts.count))]
        var o = JSONObject()
        switch resource {
        case "calls":
            let sid = makeSID("CA", h, i)
            o.string("sid", sid)
            o.string("date_created", rfc2822(created))
            o.string("date_updated", rfc2822(time + (settled && h % 13 == 0 ? 3_600 : 60)))  // settling updates it
            o.string("parent_call_sid", h % 5 == 0 ? makeSID("CA", h &+ 1, i) : nil)
            o.string("account_sid", account.sid)
            o.string("to", "+1415555\(String(format: "%04d", h % 10000))")
            o.string("to_formatted", "(415) 555-\(String(format: "%04d", h % 10000))")
            o.string("from", h % 7 == 0 ? "client:agent\(h % 50)" : "+4420794\(String(format: "%05d", h % 100000))")
            o.string("from_formatted", "+44 20 794")
            o.string("phone_number_sid", "PN" + String(format: "%032x", h % 97))
            let inProgress = h % 13 == 0 && !settled
            o.string("status", inProgress ? "in-progress" : "completed")
            o.string("start_time", rfc2822(time))
            o.string("end_time", inProgress ? nil : rfc2822(time + Int(h % 600)))
            o.string("duration", inProgress ? nil : String(h % 600))
            o.string("price", inProgress ? nil : String(format: "-%.5f", Double(h % 300) / 10000))
            o.string("price_unit", "USD")
            o.string("direction", ["inbound", "outbound-api", "outbound-dial"][Int(h % 3)])
            o.string("answered_by", h % 4 == 0 ? "human" : nil)
            o.string("api_version", "2010-04-01")
            o.string("forwarded_from", h % 9 == 0 ? "+15555550100" : nil)
            o.string("caller_name", text)
            o.raw("group_sid", "null")
            o.string("uri", "/2010-04-01/Accounts/\(account.sid)/Calls/\(sid).json")
            o.raw("subresource_uris", "{\"notifications\": \"/n.json\", \"recordings\": \"/r.json\"}")
            return Record(sid: sid, time: time, json: o.finish())
        case "messages":
            let sid = makeSID(h % 11 == 0 ? "MM" : "SM", h, i)
            o.string("sid", sid)
            o.string("date_created", rfc2822(created))
            o.string("date_updated", rfc2822(time + (settled && h % 8 == 0 ? 7_200 : 2)))
            o.string("date_sent", rfc2822(time))
            o.string("account_sid", account.sid)
            o.string("to", "+1415555\(String(format: "%04d", h % 10000))")
            o.string("from", "+15017122661")
            o.string("messaging_service_sid", nil)
            o.string("body", text)
            o.string("status", h % 17 == 0 ? "undelivered" : "delivered")
            o.string("num_segments", String(1 + h % 3))
            o.string("num_media", String(h % 11 == 0 ? 1 : 0))
            o.string("direction", "outbound-api")
            o.string("api_version", "2010-04-01")
            o.string("price", h % 8 == 0 ? (settled ? "-0.00790" : nil) : "-0.00750")
            o.string("price_unit", "USD")
            o.raw("error_code", h % 17 == 0 ? "30003" : "null")
            o.string("error_message", h % 17 == 0 ? "Unreachable destination handset" : nil)
            o.string("uri", "/2010-04-01/Accounts/\(account.sid)/Messages/\(sid).json")
            o.raw("subresource_uris", "{\"media\": \"/m.json\"}")
            return Record(sid: sid, time: time, json: o.finish())
        default:  // recordings
            let sid = makeSID("RE", h, i)
            o.string("account_sid", account.sid)
            o.string("api_version", "2010-04-01")
            o.string("call_sid", makeSID("CA", h &+ 7, i))
            o.string("conference_sid", nil)
            o.string("date_created", rfc2822(time))
            o.string("date_updated", rfc2822(time + 5))
            o.string("start_time", rfc2822(time - Int(h % 120)))
            o.string("duration", h % 19 == 0 ? nil : String(h % 120))
            o.string("sid", sid)
            o.string("price", nil)
            o.string("price_unit", "USD")
            o.string("status", "completed")
            o.raw("channels", "1")
            o.string("source", "RecordVerb")
            o.raw("error_code", "null")
            o.string("uri", "/2010-04-01/Accounts/\(account.sid)/Recordings/\(sid).json")
            o.raw("encryption_details", "null")
            o.raw("subresource_uris", "{\"transcriptions\": \"/t.json\"}")
            o.string("media_url", "https://api.twilio.com/2010-04-01/Accounts/\(account.sid)/Recordings/\(sid)")
            return Record(sid: sid, time: time, json: o.finish())
        }
    }

    /// The account's phone numbers (a snapshot), newest first.
    public static func phoneNumbers(_ account: SandboxAccount) -> [Record] {
        (0..<account.phoneNumbers).map { i in
            let h = hash(account.sid, "incoming_phone_numbers", String(i))
            let sid = makeSID("PN", h, i)
            var o = JSONObject()
            o.string("account_sid", account.sid)
            o.string("address_requirements", ["none", "any", "local", "foreign"][Int(h % 4)])
            o.string("api_version", "2010-04-01")
            o.raw("beta", "false")
            o.raw("capabilities", "{\"voice\": true, \"sms\": \(h % 2 == 0), \"mms\": false, \"fax\": false}")
            o.string("date_created", rfc2822(1_600_000_000 + Int(h % 100_000_000)))
            o.string("date_updated", rfc2822(1_700_000_000 + Int(h % 10_000_000)))
            o.string("friendly_name", i % 5 == 0 ? hardTexts[i % hardTexts.count] : "(415) 555-\(String(format: "%04d", i))")
            o.string("phone_number", "+1415555\(String(format: "%04d", i))")
            o.string("origin", "twilio")
            o.string("sid", sid)
            o.string("sms_application_sid", h % 3 == 0 ? "" : nil)
            o.string("sms_fallback_method", "POST")
            o.string("sms_fallback_url", "")
            o.string("sms_method", "POST")
            o.string("sms_url", h % 2 == 0 ? "https://example.com/sms?x=1&y=\(i)" : "")
            o.string("status_callback", "")
            o.string("status_callback_method", "POST")
            o.string("trunk_sid", nil)
            o.string("uri", "/2010-04-01/Accounts/\(account.sid)/IncomingPhoneNumbers/\(sid).json")
            o.string("voice_application_sid", h % 3 == 1 ? "" : nil)
            o.raw("voice_caller_id_lookup", h % 2 == 0 ? "true" : "false")
            o.string("voice_fallback_method", "POST")
            o.string("voice_fallback_url", nil)
            o.string("voice_method", "POST")
            o.string("voice_url", h % 4 == 0 ? nil : "https://example.com/voice/\(i)")
            o.string("status", "in-use")
            return Record(sid: sid, time: 0, json: o.finish())
        }
    }

    /// Pricing countries: real-looking names (non-ASCII, commas, 44 characters) and synthetic ones, some
    /// with no prices.
    public static let countries: [(iso: String, name: String)] = {
        var list: [(String, String)] = [
            ("US", "United States"), ("EE", "Estonia"), ("CI", "Côte d'Ivoire"), ("KR", "Korea, Republic of"),
            ("GS", "South Georgia and the South Sandwich Islands"), ("AT", "Austria"), ("JP", "Japan"), ("IL", "Israel"),
        ]
        for i in 0..<72 {
            let a = UnicodeScalar(UInt8(0x51 + i / 26 % 10))  // Q, R, S…
            let b = UnicodeScalar(UInt8(0x41 + i % 26))
            list.append(("\(Character(a))\(Character(b))", "Sandboxland \(i + 1)"))
        }
        return list
    }()

    public static func prices(iso: String) -> [(type: String, base: String, current: String)] {
        let h = hash("pricing", iso)
        let types = ["local", "mobile", "national", "toll free", "shared cost"]
        // Some synthetic countries (ISO codes from Q) have no prices; the real-looking ones always have some.
        let n = h % 7 == 0 && iso >= "Q" ? 0 : Int(1 + h % 4)
        return (0..<n).map { k in
            let base = Double((h >> (8 * k)) % 500) / 100 + 0.5
            return (types[k], String(format: "%.2f", base), String(format: "%.2f", h % 3 == 0 ? base * 0.9 : base))
        }
    }
}

/// Builds a JSON object's bytes in key order.
struct JSONObject {
    private var bytes: [UInt8] = [0x7B]
    private var first = true

    private mutating func key(_ k: String) {
        if !first { bytes.append(contentsOf: [0x2C, 0x20]) }
        first = false
        JSONObject.appendString(k, to: &bytes)
        bytes.append(contentsOf: [0x3A, 0x20])
    }

    mutating func string(_ k: String, _ value: String?) {
        key(k)
        if let value { JSONObject.appendString(value, to: &bytes) } else { bytes.append(contentsOf: Array("null".utf8)) }
    }

    mutating func raw(_ k: String, _ json: String) {
        key(k)
        bytes.append(contentsOf: Array(json.utf8))
    }

    mutating func finish() -> [UInt8] {
        bytes.append(0x7D)
        return bytes
    }

    /// JSON string escaping as Twilio's servers do it: control characters escaped, non-ASCII raw except
    /// that every other emoji is written as a \u surrogate pair (both forms occur in the wild).
    static func appendString(_ s: String, to out: inout [UInt8]) {
        out.append(0x22)
        var toggle = false
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out.append(contentsOf: [0x5C, 0x22])
            case "\\": out.append(contentsOf: [0x5C, 0x5C])
            case "\n": out.append(contentsOf: [0x5C, 0x6E])
            case "\r": out.append(contentsOf: [0x5C, 0x72])
            case "\t": out.append(contentsOf: [0x5C, 0x74])
            default:
                if scalar.value < 0x20 {
                    out.append(contentsOf: Array(String(format: "\\u%04x", scalar.value).utf8))
                } else if scalar.value >= 0x10000 && toggle {
                    let v = scalar.value - 0x10000
                    out.append(contentsOf: Array(String(format: "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF)).utf8))
                } else {
                    out.append(contentsOf: Array(String(scalar).utf8))
                }
                if scalar.value >= 0x10000 { toggle.toggle() }
            }
        }
        out.append(0x22)
    }
}
