/// Parses Twilio's RFC 2822 dates (`Tue, 31 Aug 2010 20:36:28 +0000`, day possibly unpadded, any numeric
/// offset) to UTC and writes them as `YYYY-MM-DD HH:MM:SS`, straight from and to bytes.
public enum RFC2822 {
    /// UTC seconds since 1970, or nil when the text is not an RFC 2822 date.
    public static func seconds(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Int? {
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
        return days * 86_400 + hour * 3600 + minute * 60 + min(second, 59) - offset
    }

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

    /// Writes `YYYY-MM-DD HH:MM:SS` for UTC `seconds`: composed on the stack, appended in one copy.
    public static func write(_ seconds: Int, into buffer: inout [UInt8]) {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let rest = seconds - days * 86_400
        let (y, m, d) = Day.daysToCivil(days)
        var text: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &text) { t in
            func two(_ at: Int, _ v: Int) {
                t[at] = UInt8(truncatingIfNeeded: 0x30 + v / 10)
                t[at + 1] = UInt8(truncatingIfNeeded: 0x30 + v % 10)
            }
            two(0, y / 100 % 100)
            two(2, y % 100)
            t[4] = 0x2D
            two(5, m)
            t[7] = 0x2D
            two(8, d)
            t[10] = 0x20
            two(11, rest / 3600)
            t[13] = 0x3A
            two(14, rest / 60 % 60)
            t[16] = 0x3A
            two(17, rest % 60)
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: t[0..<19]))
        }
    }

    public static func format(_ seconds: Int) -> String {
        var buffer: [UInt8] = []
        write(seconds, into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }
}
