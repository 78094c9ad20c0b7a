public import Foundation

/// Every timestamp Huskimo writes as text, in one place: staged files and SQL (`YYYY-MM-DD HH:MM:SS`), Singular's
/// `when_retrieved` (with milliseconds), messages (ISO 8601 with milliseconds) and object keys (compact).
public enum UTCTime {
    /// `YYYY-MM-DD HH:MM:SS` for a Unix time in whole seconds (UTC).
    public static func sql(seconds: Int) -> String {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let rest = seconds - days * 86_400
        let (y, m, d) = Day.daysToCivil(days)
        return String(format: "%04d-%02d-%02d %02d:%02d:%02d", y, m, d, rest / 3600, rest / 60 % 60, rest % 60)
    }

    /// `YYYY-MM-DD HH:MM:SS` (the staged-file timestamp format).
    public static func sql(_ date: Date) -> String { sql(seconds: wholeSeconds(date)) }

    /// `YYYY-MM-DD HH:MM:SS.mmm`: the staged-file timestamp with milliseconds (Singular's `when_retrieved`).
    public static func sqlMillis(_ date: Date) -> String { sql(date) + String(format: ".%03d", millis(date)) }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`: sorts as text, keeps milliseconds so extractions in one second differ.
    public static func iso(_ date: Date) -> String {
        sql(date).replacingOccurrences(of: " ", with: "T") + String(format: ".%03dZ", millis(date))
    }

    /// `YYYYMMDDTHHMMSSmmmZ`, for object keys and run ids.
    public static func compact(_ date: Date) -> String {
        iso(date).replacingOccurrences(of: "-", with: "").replacingOccurrences(of: ":", with: "").replacingOccurrences(of: ".", with: "")
    }

    private static func wholeSeconds(_ date: Date) -> Int { Int(date.timeIntervalSince1970.rounded(.down)) }
    private static func millis(_ date: Date) -> Int {
        min(999, Int((date.timeIntervalSince1970 - Double(wholeSeconds(date))) * 1000))
    }
}
