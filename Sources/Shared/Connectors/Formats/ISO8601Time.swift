import HuskimoCore

/// Parses the ISO-8601 times of Twilio's newer APIs (Bulk Export's `2019-03-21T15:39:25Z`, usage records'
/// `2026-12-05T20:00:00+00:00`, fractions allowed) and plain days (`2026-12-05`), straight from bytes.
package enum ISO8601Time {
    /// UTC seconds since 1970 of `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM|±HHMM)` (a space allowed for `T`), or nil.
    package static func seconds(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Int? {
        guard end - start >= 20, let days = day(p, start, start + 10),
            p[start + 10] == 0x54 || p[start + 10] == 0x20, p[start + 13] == 0x3A, p[start + 16] == 0x3A,
            let hour = digits(p, start + 11, 2), hour < 24, let minute = digits(p, start + 14, 2), minute < 60,
            let second = digits(p, start + 17, 2), second < 61
        else { return nil }
        var i = start + 19
        if i < end, p[i] == 0x2E {  // a fraction: dropped (the warehouse column holds seconds)
            i += 1
            let digitsStart = i
            while i < end, i - digitsStart < 9, p[i] >= 0x30, p[i] <= 0x39 { i += 1 }
            guard i > digitsStart else { return nil }
        }
        guard i < end else { return nil }
        var offset = 0
        switch p[i] {
        case 0x5A where i + 1 == end: offset = 0
        case 0x2B, 0x2D:
            let sign = p[i] == 0x2D ? -1 : 1
            let rest = end - i - 1
            guard let h = digits(p, i + 1, 2), h < 24 else { return nil }
            let m: Int?
            switch rest {
            case 5 where p[i + 3] == 0x3A: m = digits(p, i + 4, 2)
            case 4: m = digits(p, i + 3, 2)
            case 2: m = 0
            default: m = nil
            }
            guard let m, m < 60 else { return nil }
            offset = sign * (h * 3600 + m * 60)
        default: return nil
        }
        return days * 86_400 + hour * 3600 + minute * 60 + min(second, 59) - offset
    }

    /// Days since 1970 of a calendar day `YYYY-MM-DD` spanning exactly `start..<end`, or nil.
    package static func day(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Int? {
        guard end - start == 10, p[start + 4] == 0x2D, p[start + 7] == 0x2D, let y = digits(p, start, 4), y > 0,
            let m = digits(p, start + 5, 2), (1...12).contains(m), let d = digits(p, start + 8, 2), d >= 1,
            d <= Day.daysIn(month: m, year: y)
        else { return nil }
        return Day.civilToDays(y, m, d)
    }

    @inline(__always) private static func digits(_ p: UnsafeRawBufferPointer, _ at: Int, _ count: Int) -> Int? {
        var value = 0
        for i in at..<(at + count) {
            let d = p[i] &- 0x30
            guard d < 10 else { return nil }
            value = value * 10 + Int(d)
        }
        return value
    }
}
