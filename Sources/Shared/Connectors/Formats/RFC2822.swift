import HuskimoCore

/// Parses Twilio's RFC 2822 dates (`Tue, 31 Aug 2010 20:36:28 +0000`, day possibly unpadded, any numeric
/// offset) to UTC and writes them as `YYYY-MM-DD HH:MM:SS`, straight from and to bytes.
package enum RFC2822 {
    /// The last day parsed and the last day written: the dates of one page mostly share a day, so the calendar
    /// arithmetic runs once per day rather than once per date.
    package struct Cache {
        var parsedKey: (UInt64, UInt32) = (0, 0)
        var parsedDays = Int.min
        var writtenDays = Int.min
        var writtenDate: UInt64 = 0
        var writtenDateTail: UInt16 = 0
        package init() {}
    }

    /// UTC seconds since 1970, or nil when the text is not an RFC 2822 date. Twilio's own shape
    /// (`Fri, 20 Nov 2026 12:34:56 +0000`) takes a fixed-offset path with `cache`; anything else the general one.
    package static func seconds(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int, cache: inout Cache) -> Int? {
        guard end - start == 31, p[start] >= 0x41, p[start + 3] == 0x2C, p[start + 4] == 0x20, p[start + 7] == 0x20, p[start + 11] == 0x20,
            p[start + 16] == 0x20, p[start + 19] == 0x3A, p[start + 22] == 0x3A, p[start + 25] == 0x20, p[start + 26] == 0x2B,
            p.loadUnaligned(fromByteOffset: start + 27, as: UInt32.self) == 0x3030_3030  // "0000"
        else { return seconds(p, start, end) }
        @inline(__always) func digits2(_ at: Int) -> Int? {
            let a = p[at] &- 0x30, b = p[at + 1] &- 0x30
            return a < 10 && b < 10 ? Int(a) * 10 + Int(b) : nil
        }
        let key = (
            p.loadUnaligned(fromByteOffset: start + 5, as: UInt64.self), p.loadUnaligned(fromByteOffset: start + 12, as: UInt32.self)
        )
        let days: Int
        if key == cache.parsedKey, cache.parsedDays != Int.min {
            days = cache.parsedDays
        } else {
            let m = (UInt32(p[start + 8] | 0x20) << 16) | (UInt32(p[start + 9] | 0x20) << 8) | UInt32(p[start + 10] | 0x20)
            guard let day = digits2(start + 5), let month = month(m), let c = digits2(start + 12), let y = digits2(start + 14),
                c + y > 0, (1...31).contains(day), day <= Day.daysIn(month: month, year: c * 100 + y)
            else { return seconds(p, start, end) }
            days = Day.civilToDays(c * 100 + y, month, day)
            cache.parsedKey = key
            cache.parsedDays = days
        }
        guard let hour = digits2(start + 17), hour < 24, let minute = digits2(start + 20), minute < 60,
            let second = digits2(start + 23), second < 61
        else { return seconds(p, start, end) }
        return days * 86_400 + hour * 3600 + minute * 60 + min(second, 59)
    }

    /// UTC seconds since 1970, or nil when the text is not an RFC 2822 date.
    package static func seconds(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Int? {
        var i = start
        func skipSpaces() { while i < end, p[i] == 0x20 { i += 1 } }
        func number(max: Int) -> Int? {
            var value = 0, digits = 0
            while i < end, digits < max, p[i] >= 0x30, p[i] <= 0x39 {
                value = value * 10 + Int(p[i] - 0x30)
                i += 1
                digits += 1
            }
            return digits == 0 ? nil : value
        }
        skipSpaces()
        // Optional "Tue," day-of-week.
        if i + 3 < end, p[i] >= 0x41, p[i + 3] == 0x2C { i += 4 }
        skipSpaces()
        guard let day = number(max: 2) else { return nil }
        skipSpaces()
        guard i + 3 <= end else { return nil }
        let m = (UInt32(p[i] | 0x20) << 16) | (UInt32(p[i + 1] | 0x20) << 8) | UInt32(p[i + 2] | 0x20)
        guard let month = month(m) else { return nil }
        i += 3
        skipSpaces()
        guard let year = number(max: 4) else { return nil }
        skipSpaces()
        guard let hour = number(max: 2), i < end, p[i] == 0x3A else { return nil }
        i += 1
        guard let minute = number(max: 2) else { return nil }
        var second = 0
        if i < end, p[i] == 0x3A {
            i += 1
            guard let s = number(max: 2) else { return nil }
            second = s
        }
        skipSpaces()
        var offset = 0
        if i < end, p[i] == 0x2B || p[i] == 0x2D {
            let sign = p[i] == 0x2D ? -1 : 1
            i += 1
            let digitsStart = i
            guard let hhmm = number(max: 4), i - digitsStart == 4 else { return nil }
            offset = sign * ((hhmm / 100) * 3600 + (hhmm % 100) * 60)
        } else {
            // "GMT", "UT" or "Z" mean UTC; nothing at all is taken as UTC too.
            for zone in [[0x47, 0x4D, 0x54], [0x55, 0x54], [0x5A]] as [[UInt8]] where end - i >= zone.count {
                if (0..<zone.count).allSatisfy({ p[i + $0] == zone[$0] }) {
                    i += zone.count
                    break
                }
            }
        }
        skipSpaces()
        guard i == end, (1...31).contains(day), day <= Day.daysIn(month: month, year: year), hour < 24, minute < 60,
            second < 61
        else { return nil }
        let days = Day.civilToDays(year, month, day)
        let utc = days * 86_400 + hour * 3600 + minute * 60 + min(second, 59) - offset
        // A year the warehouse's timestamp type and the `YYYY-` text both hold: 0001-01-01 to 9999-12-31 in UTC (year
        // 0000, or 9999 pushed into 10000 by its offset, would stage a timestamp no COPY reads as written).
        return (Self.earliest...Self.latest).contains(utc) ? utc : nil
    }

    /// The first and last second a staged timestamp can name.
    package static let earliest = Day.civilToDays(1, 1, 1) * 86_400
    package static let latest = Day.civilToDays(9999, 12, 31) * 86_400 + 86_399

    @inline(__always) private static func month(_ lowercased: UInt32) -> Int? {
        switch lowercased {
        case 0x6A_616E: return 1  // jan
        case 0x66_6562: return 2  // feb
        case 0x6D_6172: return 3  // mar
        case 0x61_7072: return 4  // apr
        case 0x6D_6179: return 5  // may
        case 0x6A_756E: return 6  // jun
        case 0x6A_756C: return 7  // jul
        case 0x61_7567: return 8  // aug
        case 0x73_6570: return 9  // sep
        case 0x6F_6374: return 10  // oct
        case 0x6E_6F76: return 11  // nov
        case 0x64_6563: return 12  // dec
        default: return nil
        }
    }

    /// Writes `YYYY-MM-DD HH:MM:SS` for UTC `seconds` into the writer's current field, in place.
    package static func write(_ seconds: Int, into writer: inout TSVWriter, cache: inout Cache) {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let rest = seconds - days * 86_400
        if days != cache.writtenDays {
            let (y, m, d) = Day.daysToCivil(days)
            var date: (UInt64, UInt16) = (0, 0)
            withUnsafeMutableBytes(of: &date) { t in
                two(t, 0, y / 100 % 100)
                two(t, 2, y % 100)
                t[4] = 0x2D
                two(t, 5, m)
                t[7] = 0x2D
                two(t, 8, d)
            }
            cache.writtenDays = days
            cache.writtenDate = date.0
            cache.writtenDateTail = date.1
        }
        let date = cache.writtenDate, tail = cache.writtenDateTail
        writer.appendRaw(length: 19) { t in
            t.storeBytes(of: date, toByteOffset: 0, as: UInt64.self)
            t.storeBytes(of: tail, toByteOffset: 8, as: UInt16.self)
            t.storeBytes(of: 0x20, toByteOffset: 10, as: UInt8.self)
            two(t, 11, rest / 3600)
            t.storeBytes(of: 0x3A, toByteOffset: 13, as: UInt8.self)
            two(t, 14, rest / 60 % 60)
            t.storeBytes(of: 0x3A, toByteOffset: 16, as: UInt8.self)
            two(t, 17, rest % 60)
        }
    }

    @inline(__always) private static func two(_ t: UnsafeMutableRawPointer, _ at: Int, _ v: Int) {
        t.storeBytes(of: UInt8(truncatingIfNeeded: 0x30 + v / 10), toByteOffset: at, as: UInt8.self)
        t.storeBytes(of: UInt8(truncatingIfNeeded: 0x30 + v % 10), toByteOffset: at + 1, as: UInt8.self)
    }

    @inline(__always) private static func two(_ t: UnsafeMutableRawBufferPointer, _ at: Int, _ v: Int) {
        two(t.baseAddress!, at, v)
    }
}
