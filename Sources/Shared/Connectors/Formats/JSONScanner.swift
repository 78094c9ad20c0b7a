#if canImport(Glibc)
import Glibc  // memcmp
package import HuskimoCore
#endif

/// A JSON value located in a byte buffer, without copying: strings are the bytes between the quotes
/// (`escaped` tells whether they hold backslash escapes); objects and arrays cover their whole text.
package struct JSONSlice: Sendable {
    package enum Kind: Sendable { case absent, null, string, number, bool, object, array }
    package var kind: Kind
    package var start: Int
    package var end: Int
    package var escaped: Bool
    var boolValue: Bool

    package static let absent = JSONSlice(kind: .absent, start: 0, end: 0, escaped: false, boolValue: false)
    var isNullOrAbsent: Bool { kind == .null || kind == .absent }
    package var count: Int { end - start }
}

/// Errors from malformed or truncated JSON: transient when the body ended early (a dropped connection
/// looks like that), permanent otherwise.
package struct JSONError: ClassifiedError, Sendable {
    package let offset: Int
    package let reason: String
    package let truncated: Bool
    package var errorClass: ErrorClass { truncated ? .transient : .permanent }
    package var description: String { "JSONError at byte \(offset): \(reason)" }
}

/// A forward-only scanner over UTF-8 JSON bytes. It validates structure as it goes and never allocates
/// on the hot path; callers pull members and elements and decide what to parse and what to skip.
package struct JSONScanner {
    package let bytes: UnsafeRawBufferPointer
    package var position = 0

    package init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    @inline(__always) mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    /// Whether only whitespace is left.
    var atEndSkippingWhitespace: Bool {
        mutating get {
            skipWhitespace()
            return position >= bytes.count
        }
    }

    func fail(_ reason: String) -> JSONError {
        JSONError(offset: position, reason: reason, truncated: position >= bytes.count)
    }

    @inline(__always) mutating func peek() throws -> UInt8 {
        skipWhitespace()
        guard position < bytes.count else { throw fail("unexpected end of input") }
        return bytes[position]
    }

    mutating func expect(_ byte: UInt8) throws {
        guard try peek() == byte else { throw fail("expected '\(Character(UnicodeScalar(byte)))'") }
        position += 1
    }

    /// Reads a string whose opening quote is at `position`. Plain runs are skipped eight bytes at a time: a word
    /// with no quote, backslash or control byte (SWAR tests) is passed over whole; otherwise the scan jumps to the
    /// first such byte (the lowest flagged byte of these tests is always a real hit).
    mutating func readString() throws -> JSONSlice {
        position += 1  // opening quote
        let start = position
        var escaped = false
        let count = bytes.count
        let base = bytes.baseAddress!
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        @inline(__always) func special(_ word: UInt64) -> UInt64 {
            let quote = word ^ 0x2222_2222_2222_2222
            let slash = word ^ 0x5C5C_5C5C_5C5C_5C5C
            return (((quote &- ones) & ~quote) | ((slash &- ones) & ~slash) | ((word &- 0x2020_2020_2020_2020) & ~word)) & highs
        }
        while true {
            // Two words per step while 16 bytes remain (long values: URIs, bodies), then one.
            while position + 16 <= count {
                let a = special(base.loadUnaligned(fromByteOffset: position, as: UInt64.self))
                let b = special(base.loadUnaligned(fromByteOffset: position + 8, as: UInt64.self))
                if a | b != 0 {
                    position +=
                        a != 0 ? UInt64(littleEndian: a).trailingZeroBitCount >> 3 : 8 + UInt64(littleEndian: b).trailingZeroBitCount >> 3
                    break
                }
                position += 16
            }
            while position + 8 <= count {
                let hit = special(base.loadUnaligned(fromByteOffset: position, as: UInt64.self))
                if hit != 0 {
                    position += UInt64(littleEndian: hit).trailingZeroBitCount >> 3
                    break
                }
                position += 8
            }
            guard position < count else { throw fail("unterminated string") }
            let byte = base.load(fromByteOffset: position, as: UInt8.self)
            if byte == 0x22 {
                let slice = JSONSlice(kind: .string, start: start, end: position, escaped: escaped, boolValue: false)
                position += 1
                return slice
            }
            if byte == 0x5C {
                escaped = true
                position += 2
                continue
            }
            if byte < 0x20 { throw fail("control character in string") }
            position += 1
        }
    }

    /// Reads any value; objects and arrays are skipped over (their slice covers them).
    package mutating func readValue() throws -> JSONSlice {
        let byte = try peek()
        switch byte {
        case 0x22: return try readString()
        case 0x7B, 0x5B:
            let start = position
            try skipContainer()
            return JSONSlice(kind: byte == 0x7B ? .object : .array, start: start, end: position, escaped: false, boolValue: false)
        case 0x74: return try literal("true", .bool, true)
        case 0x66: return try literal("false", .bool, false)
        case 0x6E: return try literal("null", .null, false)
        default:
            let start = position
            while position < bytes.count {
                let b = bytes[position]
                guard (b >= 0x30 && b <= 0x39) || b == 0x2D || b == 0x2B || b == 0x2E || b == 0x65 || b == 0x45 else { break }
                position += 1
            }
            guard position > start else { throw fail("unexpected character") }
            guard position < bytes.count else { throw fail("number at end of input") }
            return JSONSlice(kind: .number, start: start, end: position, escaped: false, boolValue: false)
        }
    }

    private mutating func literal(_ text: StaticString, _ kind: JSONSlice.Kind, _ value: Bool) throws -> JSONSlice {
        let length = text.utf8CodeUnitCount
        guard position + length <= bytes.count else {
            // Cut short by the end of the bytes (a page still arriving): truncated, if what is there begins it.
            for i in 0..<(bytes.count - position) where bytes[position + i] != text.utf8Start[i] { throw fail("bad literal") }
            throw JSONError(offset: position, reason: "truncated literal", truncated: true)
        }
        let start = position
        for i in 0..<length where bytes[position + i] != text.utf8Start[i] { throw fail("bad literal") }
        position += length
        return JSONSlice(kind: kind, start: start, end: position, escaped: false, boolValue: value)
    }

    private mutating func skipContainer() throws {
        var depth = 0
        while position < bytes.count {
            let byte = bytes[position]
            switch byte {
            case 0x22:
                _ = try readString()
                continue
            case 0x7B, 0x5B: depth += 1
            case 0x7D, 0x5D:
                depth -= 1
                if depth == 0 {
                    position += 1
                    return
                }
            default: break
            }
            position += 1
        }
        throw fail("unterminated object or array")
    }

    /// Iterates the members of the object at `position`: `body` gets the key's slice and must consume the
    /// value (``readValue()`` or a nested iteration).
    mutating func forEachMember(_ body: (inout JSONScanner, JSONSlice) throws -> Void) throws {
        try expect(0x7B)
        if try peek() == 0x7D {
            position += 1
            return
        }
        while true {
            guard try peek() == 0x22 else { throw fail("expected a key") }
            let key = try readString()
            try expect(0x3A)
            try body(&self, key)
            let next = try peek()
            position += 1
            if next == 0x7D { return }
            guard next == 0x2C else { throw fail("expected ',' or '}'") }
        }
    }

    /// Iterates the elements of the array at `position`; `body` must consume each element.
    mutating func forEachElement(_ body: (inout JSONScanner) throws -> Void) throws {
        try expect(0x5B)
        if try peek() == 0x5D {
            position += 1
            return
        }
        while true {
            try body(&self)
            let next = try peek()
            position += 1
            if next == 0x5D { return }
            guard next == 0x2C else { throw fail("expected ',' or ']'") }
        }
    }

    /// If the string at `position` (its opening quote) is exactly the `count` unescaped bytes at `offset` (an
    /// earlier string of the input), consumes it and returns its slice; otherwise leaves `position` as it was.
    /// The earlier bytes hold no quote or backslash, so equal bytes followed by a quote are that whole string.
    @inline(__always) mutating func knownString(at offset: Int, count: Int) -> JSONSlice? {
        let start = position + 1
        guard count >= 0, start + count < bytes.count, bytes[start + count] == 0x22, sameBytes(start, offset, count) else { return nil }
        position = start + count + 1
        return JSONSlice(kind: .string, start: start, end: start + count, escaped: false, boolValue: false)
    }

    /// Whether `count` bytes at offsets `a` and `b` of the input are equal (short runs: no libc call).
    @inline(__always) func sameBytes(_ a: Int, _ b: Int, _ count: Int) -> Bool {
        let base = bytes.baseAddress!
        var i = 0
        while i + 8 <= count {
            if base.loadUnaligned(fromByteOffset: a + i, as: UInt64.self) != base.loadUnaligned(fromByteOffset: b + i, as: UInt64.self) {
                return false
            }
            i += 8
        }
        while i < count {
            if base.load(fromByteOffset: a + i, as: UInt8.self) != base.load(fromByteOffset: b + i, as: UInt8.self) { return false }
            i += 1
        }
        return true
    }

    /// Whether the key slice equals `name` (keys with escapes never match: Twilio's keys have none).
    @inline(__always) package func key(_ slice: JSONSlice, is name: [UInt8]) -> Bool {
        guard slice.count == name.count, !slice.escaped else { return false }
        return name.withUnsafeBytes { memcmp(bytes.baseAddress! + slice.start, $0.baseAddress!, name.count) == 0 }
    }

    /// The decoded UTF-8 bytes of a string slice, handed one at a time to `sink`.
    @inline(__always) package func decode(_ slice: JSONSlice, _ sink: (UInt8) -> Void) throws {
        guard slice.escaped else {
            for i in slice.start..<slice.end { sink(bytes[i]) }
            return
        }
        var i = slice.start
        while i < slice.end {
            let byte = bytes[i]
            guard byte == 0x5C else {
                sink(byte)
                i += 1
                continue
            }
            let kind = bytes[i + 1]
            i += 2
            switch kind {
            case 0x22, 0x5C, 0x2F: sink(kind)
            case 0x62: sink(0x08)
            case 0x66: sink(0x0C)
            case 0x6E: sink(0x0A)
            case 0x72: sink(0x0D)
            case 0x74: sink(0x09)
            case 0x75:
                var scalar = try hex4(at: i, end: slice.end)
                i += 4
                if scalar >= 0xD800 && scalar < 0xDC00, i + 6 <= slice.end, bytes[i] == 0x5C, bytes[i + 1] == 0x75 {
                    let low = try hex4(at: i + 2, end: slice.end)
                    if low >= 0xDC00 && low < 0xE000 {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        i += 6
                    }
                }
                if scalar >= 0xD800 && scalar < 0xE000 { scalar = 0xFFFD }  // lone surrogate
                for b in UTF8.encode(UnicodeScalar(scalar)!)! { sink(b) }
            default:
                throw JSONError(offset: i - 1, reason: "bad escape", truncated: false)
            }
        }
    }

    /// The four hex digits at `i`, inside a string that ends at `end` (a whole string: too few digits are bad, never
    /// "not arrived yet").
    private func hex4(at i: Int, end: Int) throws -> UInt32 {
        guard i + 4 <= end else { throw JSONError(offset: i, reason: "short \\u escape", truncated: false) }
        var value: UInt32 = 0
        for k in 0..<4 {
            let c = bytes[i + k]
            let digit: UInt32
            switch c {
            case 0x30...0x39: digit = UInt32(c - 0x30)
            case 0x41...0x46: digit = UInt32(c - 0x41 + 10)
            case 0x61...0x66: digit = UInt32(c - 0x61 + 10)
            default: throw JSONError(offset: i + k, reason: "bad \\u escape", truncated: false)
            }
            value = value << 4 | digit
        }
        return value
    }

    /// The decoded string (allocates: for URIs and error messages, not for row values).
    package func string(_ slice: JSONSlice) throws -> String {
        var out: [UInt8] = []
        out.reserveCapacity(slice.count)
        try decode(slice) { out.append($0) }
        return String(decoding: out, as: UTF8.self)
    }

    /// UTF-16 code units of a string slice (what 0.3 stored as `body_length`, and what SMS segmenting counts):
    /// one per UTF-8 lead byte, two for 4-byte sequences; `\uXXXX` escapes count one each (a surrogate pair,
    /// written as two escapes, counts two).
    func utf16Length(_ slice: JSONSlice) -> Int {
        var count = 0
        var i = slice.start
        while i < slice.end {
            let byte = bytes[i]
            if byte == 0x5C {
                count += 1
                i += bytes[i + 1] == 0x75 ? 6 : 2
                continue
            }
            if byte & 0xC0 != 0x80 { count += 1 }
            if byte >= 0xF0 { count += 1 }
            i += 1
        }
        return count
    }
}
