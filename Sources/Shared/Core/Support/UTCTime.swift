package import Foundation

/// Every timestamp Huskimo writes as text, in one place: staged files and SQL (`YYYY-MM-DD HH:MM:SS`), Singular's
/// `when_retrieved` (with milliseconds), messages (ISO 8601 with milliseconds) and object keys (compact).
package enum UTCTime {
    /// `YYYY-MM-DD HH:MM:SS` for a Unix time in whole seconds (UTC).
    package static func sql(seconds: Int) -> String {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let rest = seconds - days * 86_400
        let (y, m, d) = Day.daysToCivil(days)
        return String(format: "%04d-%02d-%02d %02d:%02d:%02d", y, m, d, rest / 3600, rest / 60 % 60, rest % 60)
    }

    /// `YYYY-MM-DD HH:MM:SS` (the staged-file timestamp format).
    package static func sql(_ date: Date) -> String { sql(seconds: wholeSeconds(date)) }

    /// `YYYY-MM-DD HH:MM:SS.mmm`: the staged-file timestamp with milliseconds (Singular's `when_retrieved`).
    package static func sqlMillis(_ date: Date) -> String { sql(date) + String(format: ".%03d", millis(date)) }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`: sorts as text, keeps milliseconds so extractions in one second differ.
    package static func iso(_ date: Date) -> String {
        sql(date).replacingOccurrences(of: " ", with: "T") + String(format: ".%03dZ", millis(date))
    }

    /// `YYYYMMDDTHHMMSSmmmZ`, for object keys and run ids.
    package static func compact(_ date: Date) -> String {
        iso(date).replacingOccurrences(of: "-", with: "").replacingOccurrences(of: ":", with: "").replacingOccurrences(of: ".", with: "")
    }

    /// Whether `text` has the shape ``iso(_:)`` writes (`YYYY-MM-DDTHH:MM:SS`, optional fraction, `Z`), a day that exists
    /// and a time of day in range.
    package static func isISO(_ text: String) -> Bool {
        let b = Array(text.utf8)
        guard b.count >= 20, b.count <= 30, b.last == UInt8(ascii: "Z"), b[10] == UInt8(ascii: "T"), b[13] == UInt8(ascii: ":"),
            b[16] == UInt8(ascii: ":"), Day(String(decoding: b[0..<10], as: UTF8.self)) != nil
        else { return false }
        func number(_ r: Range<Int>) -> Int? { b[r].allSatisfy { $0 >= 48 && $0 <= 57 } ? Int(String(decoding: b[r], as: UTF8.self)) : nil }
        guard let h = number(11..<13), let m = number(14..<16), let sec = number(17..<19), h < 24, m < 60, sec < 61 else { return false }
        if b.count == 20 { return true }
        return b[19] == UInt8(ascii: ".") && b.count > 21 && number(20..<(b.count - 1)) != nil
    }

    /// The instant of an ``iso(_:)`` text (nil: not that shape).
    package static func date(iso text: String) -> Date? {
        guard isISO(text) else { return nil }
        let b = Array(text.utf8)
        func number(_ r: Range<Int>) -> Int { Int(String(decoding: b[r], as: UTF8.self)) ?? 0 }
        guard let day = Day(String(decoding: b[0..<10], as: UTF8.self)) else { return nil }
        let seconds = day.ordinal * 86_400 + number(11..<13) * 3600 + number(14..<16) * 60 + number(17..<19)
        return Date(timeIntervalSince1970: Double(seconds))
    }

    /// The instant of a ``compact(_:)`` text (`YYYYMMDDTHHMMSSmmmZ`; nil: not that shape).
    package static func date(compact text: String) -> Date? {
        let b = Array(text.utf8)
        guard b.count == 19, b[8] == UInt8(ascii: "T"), b[18] == UInt8(ascii: "Z"),
            b[0..<8].allSatisfy({ $0 >= 48 && $0 <= 57 }), b[9..<18].allSatisfy({ $0 >= 48 && $0 <= 57 })
        else { return nil }
        let s = String(decoding: b, as: UTF8.self)
        func part(_ from: Int, _ length: Int) -> Substring { s.dropFirst(from).prefix(length) }
        return date(iso: "\(part(0, 4))-\(part(4, 2))-\(part(6, 2))T\(part(9, 2)):\(part(11, 2)):\(part(13, 2)).\(part(15, 3))Z")
    }

    private static func wholeSeconds(_ date: Date) -> Int { Int(date.timeIntervalSince1970.rounded(.down)) }
    private static func millis(_ date: Date) -> Int {
        min(999, Int((date.timeIntervalSince1970 - Double(wholeSeconds(date))) * 1000))
    }
}
