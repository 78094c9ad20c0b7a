import Foundation
import HuskimoCore
import Synchronization

/// A sandbox account: a Twilio Account SID with its token, and how busy it is.
package struct SandboxAccount: Sendable, Hashable {
    package var sid: String
    package var token: String
    /// The account's API key (a Standard key): `SK` + the SID's 32 hex digits, and its secret. It authenticates for
    /// the account's own resources, not for listing subaccounts.
    package var apiKeySID: String { "SK" + sid.dropFirst(2) }
    package var apiKeySecret: String { "key-secret-" + sid.suffix(6) }
    /// The account's OAuth client (client credentials grant).
    package var oauthClientID: String { "OQ" + sid.dropFirst(2) }
    package var oauthClientSecret: String { "oauth-secret-" + sid.suffix(6) }
    /// The parent account's SID for a subaccount.
    package var parent: String?
    package var friendlyName: String
    /// `active`, `suspended` or `closed`, as the Accounts list reports it.
    package var status = "active"
    /// Average records per day for calls, messages and recordings (each day varies ±50 %, some days empty).
    package var recordsPerDay: Int
    package var phoneNumbers: Int
    /// Exact records per day by resource (benchmarks): every day has exactly this many, none is empty.
    package var fixedPerDay: [String: Int]?
    /// Records of Twilio's real size: every documented field, the full `subresource_uris`, realistic texts
    /// (about 1.4 KB of JSON per call) instead of the compact records the tests read.
    package var realistic: Bool

    package init(
        sid: String, token: String, parent: String? = nil, friendlyName: String, recordsPerDay: Int, phoneNumbers: Int = 25,
        fixedPerDay: [String: Int]? = nil, realistic: Bool = false
    ) {
        self.sid = sid
        self.token = token
        self.parent = parent
        self.friendlyName = friendlyName
        self.recordsPerDay = recordsPerDay
        self.phoneNumbers = phoneNumbers
        self.fixedPerDay = fixedPerDay
        self.realistic = realistic
    }

    package static func sid(_ n: Int) -> String { "AC" + String(format: "%032x", n) }

    /// Three top-level accounts; the first has two active subaccounts and a suspended one.
    package static let defaults: [SandboxAccount] = [
        SandboxAccount(sid: sid(1), token: "sandbox-token-1", friendlyName: "Acme US", recordsPerDay: 240),
        SandboxAccount(sid: sid(2), token: "sandbox-token-2", friendlyName: "Acme EU", recordsPerDay: 180),
        SandboxAccount(sid: sid(3), token: "sandbox-token-3", friendlyName: "Ácme «Ásia» 株式会社", recordsPerDay: 60),
        SandboxAccount(sid: sid(0x11), token: "sandbox-token-11", parent: sid(1), friendlyName: "Acme US support", recordsPerDay: 90),
        SandboxAccount(sid: sid(0x12), token: "sandbox-token-12", parent: sid(1), friendlyName: "Acme US sales", recordsPerDay: 45),
        {
            var archive = SandboxAccount(
                sid: sid(0x13), token: "sandbox-token-13", parent: sid(1), friendlyName: "Acme US archive", recordsPerDay: 30)
            archive.status = "suspended"
            return archive
        }(),
        // A busy account for size tests.
        SandboxAccount(sid: sid(4), token: "sandbox-token-4", friendlyName: "Bulk", recordsPerDay: 6000),
        // Years of history in few records (Bulk Export backfills).
        SandboxAccount(sid: sid(5), token: "sandbox-token-5", friendlyName: "History", recordsPerDay: 4),
    ]

    /// The benchmark's realistic mix (`huskimo-sandbox --mix`): five accounts (AC…21 to AC…25, tokens mix-token-N),
    /// each day exactly 4,000 calls, 6,000 messages and 1,000 recordings of real size, 20 phone numbers.
    package static let mix: [SandboxAccount] = (1...5).map { n in
        SandboxAccount(
            sid: sid(0x20 + n), token: "mix-token-\(n)", friendlyName: "Mix \(n)", recordsPerDay: 4000, phoneNumbers: 20,
            fixedPerDay: ["calls": 4000, "messages": 6000, "recordings": 1000], realistic: true)
    }

    /// Many small accounts (`huskimo-sandbox --small-accounts N`): AC…100000 + i, token small-token-i, each day
    /// exactly `records` calls, messages and recordings of real size, 3 phone numbers.
    package static func small(_ count: Int, records: Int = 3) -> [SandboxAccount] {
        (0..<count).map { i in
            SandboxAccount(
                sid: sid(0x10_0000 + i), token: "small-token-\(i)", friendlyName: "Small \(i)", recordsPerDay: records,
                phoneNumbers: 3, fixedPerDay: ["calls": records, "messages": records, "recordings": records], realistic: true)
        }
    }
}

/// Deterministic data: every (account, resource, day) always yields the same records, so tests can ask the
/// sandbox what a correct extraction contains.
package enum SandboxData {
    package static let resources = ["calls", "messages", "recordings"]

    /// SplitMix64 over a string key: stable across runs and platforms.
    package static func hash(_ parts: String...) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for part in parts {
            for b in part.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
            h = (h ^ 0xff) &* 0x100_0000_01b3
        }
        return mix(h)
    }

    package static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// How many records (account, resource, day) has: 0 on about one day in ten. From revision 1 on, a day with
    /// messages has one more: a message queued for hours that was sent late.
    package static func count(_ account: SandboxAccount, _ resource: String, _ day: Int, revision: Int = 0) -> Int {
        if let fixed = account.fixedPerDay?[resource] { return fixed }
        let h = hash(account.sid, resource, String(day))
        if h % 10 == 0 { return 0 }
        let base = resource == "recordings" ? account.recordsPerDay / 2 : account.recordsPerDay
        return max(1, Int(Double(base) * (0.5 + Double(h >> 11 % 1000) / 1000))) + (revision >= 1 && resource == "messages" ? 1 : 0)
    }

    /// Texts that break naive TSV writers.
    package static let hardTexts: [String?] = [
        "tab\there", "line\nbreak", "carriage\rreturn", "crlf\r\nend", "back\\slash", "\"quoted\" and 'single'",
        "emoji 😀👍🏽 👩‍👩‍👧", "中文字符 日本語 한국어", "مرحبا بالعالم עברית", "", nil, "\\N", "trailing backslash \\",
        "mixed\t\"\\\n😀", "   ", "plain text",
    ]

    /// One generated record: its SID, its filter time (seconds since 1970) and its JSON object.
    package struct Record: Sendable {
        package var sid: String
        package var time: Int
        package var json: [UInt8]
    }

    /// The last days generated, so paging through a large day does not regenerate it for every page.
    private static let cache = Mutex<[(key: String, records: [Record])]>([])

    /// The records of (account, resource, day), newest first (Twilio's order).
    package static func records(_ account: SandboxAccount, _ resource: String, day: Int, revision: Int = 0) -> [Record] {
        let key = "\(account.sid)|\(account.recordsPerDay)|\(account.realistic)|\(resource)|\(day)|\(min(revision, 1))"
        if let hit = cache.withLock({ $0.first { $0.key == key }?.records }) { return hit }
        let generated = generate(account, resource, day: day, revision: revision)
        // Up to 512 MiB of recent days (a benchmark's mix is 45 days of 4,000–6,000 records), at least the last two.
        cache.withLock { entries in
            entries.insert((key, generated), at: 0)
            var bytes = 0
            var keep = 0
            for entry in entries {
                bytes += entry.records.reduce(0) { $0 + $1.json.count + 64 }
                if keep >= 2 && bytes > 512 << 20 { break }
                keep += 1
            }
            entries.removeLast(entries.count - keep)
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

    /// The month names of Twilio's RFC 2822 times.
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// Seconds since 1970 as Twilio's list API writes times: "Fri, 20 Nov 2026 00:00:01 +0000".
    package static func rfc2822(_ seconds: Int) -> String {
        let days = seconds / 86_400
        let rest = seconds % 86_400
        let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][((days % 7) + 7) % 7]
        let (y, m, d) = Day(ordinal: days).components
        let month = months[m - 1]
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
        if account.realistic {
            return realisticRecord(account, resource, index: i, h: h, time: time, created: created, settled: settled, hardText: text)
        }
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

    /// Texts of real messages and caller names (a hard one in eight records, as a reminder that real text is hostile).
    static let realTexts = [
        "Your verification code is 482913. It expires in 10 minutes. Do not share this code with anyone.",
        "Hi Sam, your order #A-20931 has shipped and will arrive Thursday. Track it at https://example.com/t/Zx81Kq",
        "Reminder: your appointment with Dr. Patel is tomorrow at 9:30 AM. Reply C to confirm or R to reschedule.",
        "Thanks for contacting Acme support! An agent will be with you shortly. Reply STOP to unsubscribe.",
        "Your ride is arriving in 3 minutes: grey Toyota Prius, plate 7XKJ291.",
        "Payment of $42.17 received. Thank you! Questions? Call (415) 555-0199.",
    ]

    /// One record of Twilio's real shape and size: every documented field, in the order Twilio sends them.
    static func realisticRecord(
        _ account: SandboxAccount, _ resource: String, index i: Int, h: UInt64, time: Int, created: Int,
        settled: Bool, hardText: String?
    ) -> Record {
        let base = "/2010-04-01/Accounts/\(account.sid)"
        let text: String? = h % 8 == 0 ? hardText : realTexts[Int(h >> 9 % UInt64(realTexts.count))]
        var o = JSONObject()
        switch resource {
        case "calls":
            let sid = makeSID("CA", h, i)
            let inProgress = h % 13 == 0 && !settled
            let number = String(format: "%04d", h % 10000)
            o.string("date_updated", rfc2822(time + (settled && h % 13 == 0 ? 3_600 : 60)))
            o.string("price_unit", "USD")
            o.string("parent_call_sid", h % 5 == 0 ? makeSID("CA", h &+ 1, i) : nil)
            o.string("caller_name", h % 3 == 0 ? text : nil)
            o.string("duration", inProgress ? nil : String(h % 600))
            o.string("from", h % 7 == 0 ? "client:agent\(h % 50)" : "+1501712\(number)")
            o.string("to", "+1415555\(number)")
            o.string("annotation", nil)
            o.string("answered_by", h % 4 == 0 ? "human" : nil)
            o.string("sid", sid)
            o.raw("queue_time", "\"\(h % 2000)\"")
            o.string("price", inProgress ? nil : String(format: "-%.5f", Double(h % 300) / 10000))
            o.string("api_version", "2010-04-01")
            o.string("status", inProgress ? "in-progress" : ["completed", "completed", "completed", "busy", "no-answer"][Int(h % 5)])
            o.string("direction", ["inbound", "outbound-api", "outbound-dial"][Int(h % 3)])
            o.string("start_time", rfc2822(time))
            o.string("date_created", rfc2822(created))
            o.string("from_formatted", h % 7 == 0 ? "client:agent\(h % 50)" : "(501) 712-\(number)")
            o.string("group_sid", nil)
            o.string("trunk_sid", h % 11 == 0 ? "TK" + String(format: "%032x", h % 7) : nil)
            o.string("forwarded_from", h % 9 == 0 ? "+15555550100" : nil)
            o.string("uri", "\(base)/Calls/\(sid).json")
            o.string("account_sid", account.sid)
            o.string("end_time", inProgress ? nil : rfc2822(time + Int(h % 600)))
            o.string("to_formatted", "(415) 555-\(number)")
            o.string("phone_number_sid", "PN" + String(format: "%032x", h % 97))
            // The subresources of a captured response (about 1.4 KB per call in all; the OpenAPI example lists nine).
            var uris = JSONObject()
            for (key, path) in [("feedback", "Feedback"), ("notifications", "Notifications"), ("recordings", "Recordings")] {
                uris.string(key, "\(base)/Calls/\(sid)/\(path).json")
            }
            uris.string("feedback_summaries", "\(base)/Calls/FeedbackSummary.json")
            o.raw("subresource_uris", String(decoding: uris.finish(), as: UTF8.self))
            return Record(sid: sid, time: time, json: o.finish())
        case "messages":
            let sid = makeSID(h % 11 == 0 ? "MM" : "SM", h, i)
            o.string("body", h % 11 == 0 ? "" : text)
            o.string("num_segments", String(1 + h % 3))
            o.string("direction", h % 6 == 0 ? "inbound" : "outbound-api")
            o.string("from", h % 6 == 0 ? "+1415555\(String(format: "%04d", h % 10000))" : "+15017122661")
            o.string("to", h % 6 == 0 ? "+15017122661" : "+1415555\(String(format: "%04d", h % 10000))")
            o.string("date_updated", rfc2822(time + (settled && h % 8 == 0 ? 7_200 : 2)))
            o.string("price", h % 8 == 0 ? (settled ? "-0.00790" : nil) : "-0.00750")
            o.string("error_message", h % 17 == 0 ? "Unreachable destination handset" : nil)
            o.string("uri", "\(base)/Messages/\(sid).json")
            o.string("account_sid", account.sid)
            o.string("num_media", String(h % 11 == 0 ? 1 : 0))
            o.string("status", h % 17 == 0 ? "undelivered" : "delivered")
            o.string("messaging_service_sid", h % 2 == 0 ? "MG" + String(format: "%032x", h % 5) : nil)
            o.string("sid", sid)
            o.string("date_sent", rfc2822(time))
            o.string("date_created", rfc2822(created))
            o.raw("error_code", h % 17 == 0 ? "30003" : "null")
            o.string("price_unit", "USD")
            o.string("api_version", "2010-04-01")
            o.raw(
                "subresource_uris",
                "{\"media\": \"\(base)/Messages/\(sid)/Media.json\", \"feedback\": \"\(base)/Messages/\(sid)/Feedback.json\"}")
            return Record(sid: sid, time: time, json: o.finish())
        default:  // recordings
            let sid = makeSID("RE", h, i)
            o.string("account_sid", account.sid)
            o.string("api_version", "2010-04-01")
            o.string("call_sid", makeSID("CA", h &+ 7, i))
            o.string("conference_sid", h % 6 == 0 ? "CF" + String(format: "%032x", h % 1000) : nil)
            o.string("date_created", rfc2822(time))
            o.string("date_updated", rfc2822(time + 5))
            o.string("start_time", rfc2822(time - Int(h % 120)))
            o.string("duration", h % 19 == 0 ? nil : String(h % 120))
            o.string("sid", sid)
            o.string("price", h % 3 == 0 ? nil : "-0.00250")
            o.string("price_unit", "USD")
            o.string("status", h % 19 == 0 ? "absent" : "completed")
            o.raw("channels", h % 4 == 0 ? "2" : "1")
            o.string("source", ["RecordVerb", "DialVerb", "OutboundAPI", "StartCallRecordingAPI"][Int(h % 4)])
            o.raw("error_code", h % 19 == 0 ? "13617" : "null")
            o.string("uri", "\(base)/Recordings/\(sid).json")
            o.raw(
                "encryption_details",
                h % 10 == 0
                    ? "{\"type\": \"rsa-aes\", \"public_key_sid\": \"CR\(String(format: "%032x", h % 3))\", \"encrypted_cek\": \"OV4h6zrsxMIW7h0Zfqwfn6TI2GCNl54KALlh8sWP8OiXjxu8rpkXrCf2EGdtLk0yz+FFgL7WeM/5QQZbigeDu6uWEKj+sAT7dBEn4grFhv3EM7sVVK3gsJqlcPv8w2dv4m/SbsZaMk3DPoqCJIK88BpX0a3XzCTQxgH+w0kOoDwMEVfIMUtj42ZshEKjUoGnP2xP6y92M4PIC8Ny/RFBxbA+gcuv4QoTk+gCq3tWy2zXD2hE4uLrDzLs6+UKwcFdz6ZtwqbMuxJzqY3+0ESMmCjdA2uF0CVXO9Hqq1y0UtlFgk27+jhLLxDv2hj6jKMlvNJTrCw2Kc9p+vLsoRP3jw==\", \"iv\": \"8I2hhNIYNTrwxfHk\"}"
                    : "null")
            o.raw(
                "subresource_uris",
                "{\"add_on_results\": \"\(base)/Recordings/\(sid)/AddOnResults.json\", \"transcriptions\": \"\(base)/Recordings/\(sid)/Transcriptions.json\"}"
            )
            o.string("media_url", "https://api.twilio.com\(base)/Recordings/\(sid)")
            return Record(sid: sid, time: time, json: o.finish())
        }
    }

    /// The account's phone numbers (a snapshot), newest first.
    package static func phoneNumbers(_ account: SandboxAccount) -> [Record] {
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
            if account.realistic {
                let base = "/2010-04-01/Accounts/\(account.sid)/IncomingPhoneNumbers/\(sid)"
                o.string("identity_sid", nil)
                o.string("address_sid", h % 2 == 0 ? "AD" + String(format: "%032x", h % 9) : nil)
                o.string("bundle_sid", nil)
                o.string("emergency_status", "Inactive")
                o.string("emergency_address_sid", nil)
                o.string("emergency_address_status", "unregistered")
                o.string("voice_receive_mode", "voice")
                o.string("sms_status_callback", "")
                o.raw("subresource_uris", "{\"assigned_add_ons\": \"\(base)/AssignedAddOns.json\"}")
            }
            return Record(sid: sid, time: 0, json: o.finish())
        }
    }

    /// Pricing countries: real-looking names (non-ASCII, commas, 44 characters) and synthetic ones, some
    /// with no prices.
    package static let countries: [(iso: String, name: String)] = {
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

    package static func prices(iso: String) -> [(type: String, base: String, current: String)] {
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
