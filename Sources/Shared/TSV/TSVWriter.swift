/// Writes rows in the staged-file format that both Redshift `COPY … DELIMITER '\t' ESCAPE` and PostgreSQL
/// `COPY … FROM STDIN (FORMAT text)` load byte-exact (`../shared/reference/copy-formats.md` §4):
///
/// - UTF-8, no header; fields separated by TAB; every row ends with LF.
/// - In text values `\` → `\\`, TAB → `\`TAB, LF → `\`LF, CR → `\`CR (a backslash and the *raw* byte: Redshift
///   reads `\t` as the letter t); nothing else is escaped, quotes included.
/// - NULL → `\N`; the empty string is an empty field.
/// - U+0000 cannot be loaded by either warehouse: it becomes U+FFFD and is counted in ``replacedNULs``.
/// - The 2-character text `\N` is written `\\N` (PostgreSQL loads `\N`, Redshift loads NULL): counted in
///   ``backslashNValues``.
///
/// Not thread-safe. Rows accumulate in ``buffer``; the owner drains it (into gzip) as it grows.
public struct TSVWriter {
    public var buffer: [UInt8] = []
    public private(set) var rows = 0
    public private(set) var replacedNULs = 0
    public private(set) var backslashNValues = 0
    private var fieldsInRow = 0

    public init(capacity: Int = 1 << 20) { buffer.reserveCapacity(capacity) }

    @inline(__always) private mutating func separator() {
        if fieldsInRow > 0 { buffer.append(0x09) }
        fieldsInRow += 1
    }

    /// NULL.
    public mutating func null() {
        separator()
        buffer.append(0x5C)
        buffer.append(0x4E)
    }

    /// A text value given as UTF-8 bytes (already decoded).
    public mutating func text(_ bytes: UnsafeRawBufferPointer) {
        separator()
        if bytes.count == 2, bytes[0] == 0x5C, bytes[1] == 0x4E { backslashNValues += 1 }
        for byte in bytes { appendEscaped(byte) }
    }

    public mutating func text(_ value: String?) {
        guard let value else { return null() }
        var copy = value
        copy.withUTF8 { text(UnsafeRawBufferPointer($0)) }
    }

    /// ASCII that needs no escaping (numbers, timestamps, booleans), appended as is.
    public mutating func plain(_ bytes: UnsafeRawBufferPointer) {
        separator()
        buffer.append(contentsOf: bytes)
    }

    public mutating func plain(_ value: String) {
        var copy = value
        copy.withUTF8 { plain(UnsafeRawBufferPointer($0)) }
    }

    /// A decimal integer.
    public mutating func integer(_ value: Int) {
        separator()
        if value == 0 {
            buffer.append(0x30)
            return
        }
        var v = value.magnitude
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { d in
            while v > 0 {
                d[count] = UInt8(v % 10) + 0x30
                v /= 10
                count += 1
            }
            if value < 0 { buffer.append(0x2D) }
            for i in stride(from: count - 1, through: 0, by: -1) { buffer.append(d[i]) }
        }
    }

    /// Starts a field whose escaped bytes the caller appends with ``appendEscaped(_:)``.
    public mutating func beginField() { separator() }

    /// Appends one byte of a text value, escaping it.
    @inline(__always) public mutating func appendEscaped(_ byte: UInt8) {
        switch byte {
        case 0x5C, 0x09, 0x0A, 0x0D:
            buffer.append(0x5C)
            buffer.append(byte)
        case 0x00:
            replacedNULs += 1
            buffer.append(contentsOf: [0xEF, 0xBF, 0xBD] as [UInt8])
        default:
            buffer.append(byte)
        }
    }

    public mutating func noteBackslashN() { backslashNValues += 1 }

    /// Appends bytes already known to need no escaping (no TAB, LF, CR, backslash or NUL), in one copy.
    @inline(__always) public mutating func appendVerbatim(_ bytes: UnsafeRawBufferPointer) {
        buffer.append(contentsOf: bytes)
    }

    mutating func setRows(_ count: Int) {
        rows = count
        fieldsInRow = 0
    }

    /// Ends the row.
    public mutating func endRow() {
        buffer.append(0x0A)
        fieldsInRow = 0
        rows += 1
    }
}

/// Reads the staged format back (tests, checks, the PostgreSQL loader's optional rewrite): rows of fields,
/// `nil` for `\N`.
public enum TSVReader {
    public static func rows(_ bytes: [UInt8]) -> [[String?]] {
        var rows: [[String?]] = []
        var row: [String?] = []
        var field: [UInt8] = []
        var isNull = false
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == 0x5C, i + 1 < bytes.count {
                let next = bytes[i + 1]
                if next == 0x4E, field.isEmpty, i + 2 == bytes.count || bytes[i + 2] == 0x09 || bytes[i + 2] == 0x0A {
                    isNull = true
                } else {
                    field.append(next)
                }
                i += 2
                continue
            }
            if b == 0x09 || b == 0x0A {
                row.append(isNull ? nil : String(decoding: field, as: UTF8.self))
                field.removeAll(keepingCapacity: true)
                isNull = false
                if b == 0x0A {
                    rows.append(row)
                    row = []
                }
            } else {
                field.append(b)
            }
            i += 1
        }
        return rows
    }
}
