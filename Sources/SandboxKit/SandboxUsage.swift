import Foundation
import HuskimoCore
import Synchronization

/// Twilio's daily usage records (`/2010-04-01/Accounts/{AC}/Usage/Records/Daily.json`), made from the sandbox's own
/// calls and messages so they agree with the lists: `calls` counts the completed calls, `sms` and `mms` the
/// messages sent, delivered, undelivered, received or read. Like Twilio: `IncludeSubaccounts` defaults to true (a
/// parent's figures then hold its subaccounts'), a page over 100 answers 500, and a day without usage answers 404.
enum SandboxUsage {
    /// The statuses whose calls and messages are billed (what Huskimo's reconciliation counts).
    static let billedCalls: Set<String> = ["completed"]
    static let billedMessages: Set<String> = ["sent", "delivered", "undelivered", "received", "read"]

    /// The day's usage records of `accounts` (one, or a parent and its subaccounts), summed per category.
    static func records(_ accounts: [SandboxAccount], owner: SandboxAccount, day: Int, revision: Int) -> [SandboxData.Record] {
        var calls = 0, minutes = 0, sms = 0, mms = 0, segments = 0
        for account in accounts {
            for record in SandboxData.records(account, "calls", day: day, revision: revision) {
                guard let status = field(record.json, "status"), billedCalls.contains(status) else { continue }
                calls += 1
                minutes += ((Int(field(record.json, "duration") ?? "") ?? 0) + 59) / 60
            }
            for record in SandboxData.records(account, "messages", day: day, revision: revision) {
                guard let status = field(record.json, "status"), billedMessages.contains(status) else { continue }
                if record.sid.hasPrefix("MM") { mms += 1 } else { sms += 1 }
                segments += Int(field(record.json, "num_segments") ?? "") ?? 1
            }
        }
        guard calls + sms + mms > 0 else { return [] }
        let date = Day(ordinal: day).description
        let rows: [(String, String, Int, String, Int, String)] = [
            ("calls", "Voice Minutes", calls, "calls", minutes, "minutes"),
            ("calls-inbound", "Inbound Voice Minutes", calls / 3, "calls", minutes / 3, "minutes"),
            ("calls-outbound", "Outbound Voice Minutes", calls - calls / 3, "calls", minutes - minutes / 3, "minutes"),
            ("mms", "MMS", mms, "messages", mms, "messages"),
            ("sms", "SMS", sms, "messages", segments, "segments"),
            ("sms-outbound", "Outbound SMS", sms, "messages", segments, "segments"),
        ]
        return rows.map { category, description, count, countUnit, usage, usageUnit in
            var o = JSONObject()
            o.string("account_sid", owner.sid)
            o.string("api_version", "2010-04-01")
            o.string("as_of", "\(Day(ordinal: day + 1))T03:00:00+00:00")
            o.string("category", category)
            o.string("count", String(count))
            o.string("count_unit", countUnit)
            o.string("description", description)
            o.string("end_date", date)
            o.string("price", String(format: "%.4f", Double(usage) * 0.0085))
            o.string("price_unit", "usd")
            o.string("start_date", date)
            o.raw(
                "subresource_uris", "{\"all_time\": \"/2010-04-01/Accounts/\(owner.sid)/Usage/Records/AllTime.json?Category=\(category)\"}")
            o.string(
                "uri", "/2010-04-01/Accounts/\(owner.sid)/Usage/Records/Daily.json?Category=\(category)&StartDate=\(date)&EndDate=\(date)")
            o.string("usage", String(usage))
            o.string("usage_unit", usageUnit)
            return SandboxData.Record(sid: "UR\(owner.sid.dropFirst(2))\(category)", time: day * 86_400, json: o.finish())
        }
    }

    /// A string member's value in a generated record (the sandbox writes `"key": "value"`).
    static func field(_ json: [UInt8], _ key: String) -> String? {
        let needle = Array("\"\(key)\": \"".utf8)
        guard let range = json.firstRange(of: needle) else { return nil }
        let rest = json[range.upperBound...]
        guard let end = rest.firstIndex(of: 0x22) else { return nil }
        return String(decoding: rest[..<end], as: UTF8.self)
    }
}
