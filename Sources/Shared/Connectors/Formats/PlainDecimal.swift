import HuskimoCore

/// Decimal numbers in plain notation, exactly: `1.0E-4` → `0.0001`, `1.2345678E7` → `12345678`, `-0.50` →
/// `-0.5`. Works on the digits, never through a binary floating point, so nothing is rounded. (Huskimo 0.3
/// wrote Java's `Double.toString`, whose `1.0E-4` a DECIMAL column may reject — defect D6.)
enum PlainDecimal {
    /// The plain form of a JSON number's text (an optional `+` is accepted too), or nil if it is not one.
    /// Leading zeros of the integer part and trailing zeros of the fraction are dropped; `-0` is `0`.
    package static func format(_ text: some Collection<UInt8>) -> String? {
        var bytes = text[...]
        var negative = false
        if let first = bytes.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
            negative = first == UInt8(ascii: "-")
            bytes = bytes.dropFirst()
        }
        var digits: [UInt8] = []
        var point: Int?
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let b = bytes[i]
            if b >= 0x30 && b <= 0x39 {
                digits.append(b)
            } else if b == UInt8(ascii: "."), point == nil {
                point = digits.count
            } else {
                break
            }
            i = bytes.index(after: i)
        }
        guard !digits.isEmpty, point != digits.count || point == nil else { return nil }
        var exponent = 0
        if i < bytes.endIndex {
            guard bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") else { return nil }
            i = bytes.index(after: i)
            var exponentNegative = false
            if i < bytes.endIndex, bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: "+") {
                exponentNegative = bytes[i] == UInt8(ascii: "-")
                i = bytes.index(after: i)
            }
            var count = 0
            while i < bytes.endIndex, bytes[i] >= 0x30 && bytes[i] <= 0x39 {
                exponent = exponent * 10 + Int(bytes[i] - 0x30)
                count += 1
                guard count <= 4 else { return nil }
                i = bytes.index(after: i)
            }
            guard count > 0, i == bytes.endIndex else { return nil }
            if exponentNegative { exponent = -exponent }
        }
        // The value is digits[0..<integerDigits] . digits[integerDigits...]
        let integerDigits = (point ?? digits.count) + exponent
        guard abs(integerDigits) <= 1000 else { return nil }
        var integer: [UInt8]
        var fraction: [UInt8]
        if integerDigits <= 0 {
            integer = []
            fraction = [UInt8](repeating: 0x30, count: -integerDigits) + digits
        } else if integerDigits >= digits.count {
            integer = digits + [UInt8](repeating: 0x30, count: integerDigits - digits.count)
            fraction = []
        } else {
            integer = Array(digits[..<integerDigits])
            fraction = Array(digits[integerDigits...])
        }
        while let first = integer.first, first == 0x30 { integer.removeFirst() }
        while let last = fraction.last, last == 0x30 { fraction.removeLast() }
        if integer.isEmpty { integer = [0x30] }
        if integer == [0x30] && fraction.isEmpty { negative = false }
        var result = negative ? "-" : ""
        result += String(decoding: integer, as: UTF8.self)
        if !fraction.isEmpty { result += "." + String(decoding: fraction, as: UTF8.self) }
        return result
    }

    package static func format(_ text: String) -> String? { format(Array(text.utf8)) }
}
