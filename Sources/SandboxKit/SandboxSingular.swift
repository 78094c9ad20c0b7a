import Foundation
import HuskimoCore

/// The sandbox Singular reporting API: `/api/{key}/adv/{stats|creative_stats}/{start}/{end}`, deterministic
/// per (key, resource, day, revision). The revision stands for Singular restating spend: raising it changes
/// every metric (impressions, clicks, installs, cost, revenue, last modified) but no record's identity.
package enum SandboxSingular {
    /// A Singular API key the sandbox accepts.
    package struct Key: Sendable, Hashable {
        package var key: String
        /// Average records per day and resource (each day varies; about one day in eight is empty).
        package var recordsPerDay: Int
    }

    package static let keys: [Key] = [
        Key(key: "sg-alpha-7d1f0c9e4b2a86f3", recordsPerDay: 12),
        Key(key: "sg-beta-e05b3a91c6d8f274", recordsPerDay: 7),
    ]

    /// One record: its JSON and the warehouse values a correct load holds, in the table's column order after
    /// `channel_name` and `when_retrieved` (decimals in plain notation, NULL as nil).
    package struct Record: Sendable {
        package var json: [UInt8]
        package var expected: [String?]
        /// The record's fields in order: 0.3's key, the value as JSON wrote it (nil: null), whether it was a JSON string.
        package var fields: [(key: String, value: String?, string: Bool)] = []
    }

    /// Costs as a JSON literal and its exact plain value: the scientific forms 0.3 wrote or misread included.
    static let costLiterals: [(json: String, plain: String)] = [
        ("1.0E-4", "0.0001"), ("2.5e-05", "0.000025"), ("1.2345678E7", "12345678"), ("0", "0"), ("0.0", "0"),
        ("1e2", "100"), ("99999999.99", "99999999.99"), ("0.5", "0.5"),
    ]

    /// Records per day of every key instead of its own (`huskimo-sandbox --singular-records N`, for benchmarks: every
    /// day then has exactly N). Set once at startup, before the server answers.
    nonisolated(unsafe) package static var benchRecordsPerDay: Int?

    package static func records(key: Key, resource: String, day: Int, revision: Int) -> [Record] {
        let h = SandboxData.hash(key.key, resource, String(day))
        let count = benchRecordsPerDay ?? (h % 8 == 0 ? 0 : 1 + Int(h >> 9 % UInt64(key.recordsPerDay * 2)))
        return (0..<count).map { record(key: key, resource: resource, day: day, index: $0, revision: revision) }
    }

    static func record(key: Key, resource: String, day: Int, index i: Int, revision: Int) -> Record {
        let id = SandboxData.hash(key.key, resource, String(day), String(i))  // identity: stable across revisions
        let m = SandboxData.hash(key.key, resource, String(day), String(i), "r\(revision)")  // metrics: per revision
        let texts = SandboxData.hardTexts
        let networks = ["AdWords", "Facebook", "Twitter", "Unity Ads", "ironSource «Ads»", "Apple Search Ads"]
        let date = Day(ordinal: day).description
        let modifiedSeconds = day * 86_400 + 86_400 + Int(m % 86_400) + revision * 3_600
        let modified = UTCTime.sql(seconds: modifiedSeconds).replacingOccurrences(of: " ", with: "T")
        var o = JSONObject()
        var expected: [String?] = []
        var fields: [(key: String, value: String?, string: Bool)] = []
        func text(_ k: String, _ value: String?) {
            o.string(k, value)
            expected.append(value)
            fields.append((k, value, true))
        }
        func raw(_ k: String, _ literal: String) {
            o.raw(k, literal)
            fields.append((k, literal == "null" ? nil : literal, false))
        }
        func number(_ k: String, _ value: Int?) {
            raw(k, value.map(String.init) ?? "null")
            expected.append(value.map(String.init))
        }
        func decimal(_ k: String, _ salt: UInt64) {
            let pick = SandboxData.mix(m &+ salt)
            if pick % 9 == 0 {
                raw(k, "null")
                expected.append(nil)
            } else if pick % 9 == 1 {
                let literal = costLiterals[Int(pick >> 8 % UInt64(costLiterals.count))]
                raw(k, literal.json)
                expected.append(literal.plain)
            } else {
                let cents = Int(pick >> 12 % 5_000_000)
                let value = "\(cents / 100).\(String(format: "%02d", cents % 100))"
                raw(k, value)
                expected.append(value)
            }
        }
        let network = networks[Int(id % UInt64(networks.count))]
        let campaign = i % 5 == 3 ? texts[Int(id >> 5 % UInt64(texts.count))] ?? "campaign \(i)" : "Campaign \(i) \(id % 1000)"
        let networkID: String? = id % 4 == 0 ? nil : String(id % 1_000_000_007)
        text("ad_network", network)
        if resource == "creative_stats" {
            text("creative_name", id % 5 == 0 ? nil : "Creative \(i) ✨")
            text("creative_text", texts[Int(id >> 13 % UInt64(texts.count))])
            text("image", "https://cdn.example.com/creatives/\(id % 100_000).png?w=300&h=250")
            text("image_hash", String(format: "%016llx", id))
            // Width and height are text columns; Singular sends numbers (or nothing).
            let size = [(300, 250), (320, 50), (728, 90)][Int(id >> 3 % 3)]
            number("width", id % 7 == 0 ? nil : size.0)
            number("height", id % 7 == 0 ? nil : size.1)
            raw("is_video", id % 3 == 0 ? "true" : "false")
            expected.append(id % 3 == 0 ? "true" : "false")
        }
        text("campaign_name", campaign)
        text("campaign_type", ["UA", "Retargeting", "Brand"][Int(id >> 17 % 3)])
        text("campaign_url", id % 6 == 0 ? nil : "https://track.example.com/c?id=\(id % 9999)&src=\(key.key.prefix(2))")
        text("subcampaign_name", id % 4 == 1 ? texts[Int(id >> 21 % UInt64(texts.count))] : "sub \(i)")
        text("app_id", id % 8 == 0 ? nil : "com.example.app\(id % 3)")
        if networkID == nil || id % 2 == 0 {
            text("campaign_network_id", networkID)
        } else {
            // Some networks' ids arrive as JSON numbers.
            raw("campaign_network_id", networkID!)
            expected.append(networkID)
        }
        if resource == "stats" { text("country", id % 5 == 0 ? nil : ["US", "GB", "DE", "JP", "BR"][Int(id >> 27 % 5)]) }
        o.string("date", date)
        fields.append(("date", date, true))
        expected.append("\(date) 00:00:00")
        number("impressions", m % 6 == 0 ? nil : Int(m >> 3 % 1_000_000))
        number("clicks", m % 6 == 0 ? nil : Int(m >> 23 % 10_000))
        number("installs", m % 7 == 0 ? nil : Int(m >> 33 % 500))
        decimal("cost", 1)
        if resource == "stats" { decimal("revenue", 2) }
        o.string(resource == "stats" ? "last_modified" : "modified_at", modified)
        fields.append((resource == "stats" ? "last_modified" : "modified_at", modified, true))
        expected.append(modified.replacingOccurrences(of: "T", with: " "))
        return Record(json: o.finish(), expected: expected, fields: fields)
    }

    /// The records of a broken day: a valid first record, then one whose modification time is not a time
    /// (Singular has sent such records; a correct extractor parks the day with a permanent error).
    static func broken(_ records: [Record], day: Int) -> [UInt8] {
        var body = Array("[".utf8)
        if let first = records.first { body += first.json + Array(", ".utf8) }
        body += Array(
            #"{"ad_network": "AdWords", "campaign_name": "broken", "campaign_type": "UA", "date": "\#(Day(ordinal: day))", "last_modified": "yesterday", "modified_at": "yesterday", "image": "x", "image_hash": "x", "is_video": false}"#
                .utf8)
        body += Array("]".utf8)
        return body
    }
}
