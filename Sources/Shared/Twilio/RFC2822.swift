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
        guard let month = months[m] else { return nil }
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

    private static let months: [UInt32: Int] = {
        var table: [UInt32: Int] = [:]
        for (index, name) in ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"].enumerated() {
            let b = Array(name.utf8)
            table[UInt32(b[0]) << 16 | UInt32(b[1]) << 8 | UInt32(b[2])] = index + 1
        }
        return table
    }()

    /// Writes `YYYY-MM-DD HH:MM:SS` for UTC `seconds`.
    public static func write(_ seconds: Int, into buffer: inout [UInt8]) {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let rest = seconds - days * 86_400
        let (y, m, d) = Day.daysToCivil(days)
        func two(_ v: Int) {
            buffer.append(UInt8(0x30 + v / 10))
            buffer.append(UInt8(0x30 + v % 10))
        }
        two(y / 100)
        two(y % 100)
        buffer.append(0x2D)
        two(m)
        buffer.append(0x2D)
        two(d)
        buffer.append(0x20)
        two(rest / 3600)
        buffer.append(0x3A)
        two(rest / 60 % 60)
        buffer.append(0x3A)
        two(rest % 60)
    }

    public static func format(_ seconds: Int) -> String {
        var buffer: [UInt8] = []
        write(seconds, into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }
}
