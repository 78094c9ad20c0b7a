import HuskimoCore

/// Writes rows in the staged-file format that both Redshift `COPY … DELIMITER '\t' ESCAPE` and PostgreSQL
/// `COPY … FROM STDIN (FORMAT text)` load byte-exact (`docs/copy-formats.md` §4):
///
/// - UTF-8, no header; fields separated by TAB; every row ends with LF.
/// - In text values `\` → `\\`, TAB → `\`TAB, LF → `\`LF, CR → `\`CR (a backslash and the *raw* byte: Redshift
///   reads `\t` as the letter t); nothing else is escaped, quotes included.
/// - NULL → `\N`; the empty string is an empty field.
/// - U+0000 cannot be loaded by either warehouse: it becomes U+FFFD and is counted in ``replacedNULs``.
/// - The 2-character text `\N` is written `\\N` (PostgreSQL loads `\N`, Redshift loads NULL): counted in
///   ``backslashNValues``.
///
/// Not thread-safe, and not to be copied while in use (copies share one allocation). Rows accumulate in raw
/// storage (no per-append uniqueness or bounds bookkeeping of an Array); the owner drains it (into gzip) as it
/// grows, through ``withUnsafeBytes(_:)`` and ``reset()``.
package struct TSVWriter {
    /// Owns the allocation (frees it); the writer keeps the pointer, count and capacity as plain values.
    private final class Storage {
        var pointer: UnsafeMutableRawPointer
        init(capacity: Int) { pointer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16) }
        deinit { pointer.deallocate() }
    }

    private var storage: Storage
    private var base: UnsafeMutableRawPointer
    private var capacity: Int
    /// Bytes written.
    package private(set) var count = 0
    package private(set) var rows = 0
    private(set) var replacedNULs = 0
    private(set) var backslashNValues = 0
    /// Text values whose invalid UTF-8 was replaced by U+FFFD (see ``appendReplacingInvalidUTF8(_:)``).
    private(set) var replacedInvalidUTF8 = 0
    private var fieldsInRow = 0

    package init(capacity: Int = 1 << 20) {
        let size = max(capacity, 64)
        storage = Storage(capacity: size)
        base = storage.pointer
        self.capacity = size
    }

    /// A copy of the bytes written (tests, small values).
    package var buffer: [UInt8] { withUnsafeBytes { Array($0) } }
    package var isEmpty: Bool { count == 0 }

    package func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// Forgets everything written (the capacity stays).
    package mutating func reset() {
        count = 0
        rows = 0
        fieldsInRow = 0
    }

    /// Forgets what was written after `mark` bytes and `rows` rows (a page that failed half-way).
    package mutating func truncate(to mark: Int, rows: Int) {
        count = min(mark, count)
        self.rows = rows
        fieldsInRow = 0
    }

    @inline(__always) private mutating func reserve(_ extra: Int) {
        if count + extra > capacity { grow(extra) }
    }

    @inline(never) private mutating func grow(_ extra: Int) {
        // A copy of a writer shares its storage: growing one would free the other's bytes. Trap instead.
        precondition(isKnownUniquelyReferenced(&storage) && storage.pointer == base, "a TSVWriter was copied while in use")
        let size = max(capacity * 2, count + extra)
        let fresh = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        fresh.copyMemory(from: base, byteCount: count)
        storage.pointer.deallocate()
        storage.pointer = fresh
        base = fresh
        capacity = size
    }

    @inline(__always) private mutating func byte(_ b: UInt8) {
        reserve(1)
        base.storeBytes(of: b, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    @inline(__always) private mutating func separator() {
        if fieldsInRow > 0 { byte(0x09) }
        fieldsInRow += 1
    }

    /// NULL.
    package mutating func null() {
        separator()
        reserve(2)
        base.storeBytes(of: 0x4E5C, toByteOffset: count, as: UInt16.self)  // "\N"
        count += 2
    }

    /// A text value given as UTF-8 bytes (already decoded).
    package mutating func text(_ bytes: UnsafeRawBufferPointer) {
        separator()
        if bytes.count == 2, bytes[0] == 0x5C, bytes[1] == 0x4E { backslashNValues += 1 }
        reserve(bytes.count * 2)
        for byte in bytes { appendEscaped(byte) }
    }

    package mutating func text(_ value: String?) {
        guard let value else { return null() }
        var copy = value
        copy.withUTF8 { text(UnsafeRawBufferPointer($0)) }
    }

    /// ASCII that needs no escaping (numbers, timestamps, booleans), appended as is.
    package mutating func plain(_ bytes: UnsafeRawBufferPointer) {
        separator()
        appendVerbatim(bytes)
    }

    package mutating func plain(_ value: String) {
        var copy = value
        copy.withUTF8 { plain(UnsafeRawBufferPointer($0)) }
    }

    /// A decimal integer.
    package mutating func integer(_ value: Int) {
        separator()
        reserve(21)
        if value == 0 {
            byte(0x30)
            return
        }
        var v = value.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        var n = 0
        withUnsafeMutableBytes(of: &digits) { d in
            while v > 0 {
                d[n] = UInt8(v % 10) + 0x30
                v /= 10
                n += 1
            }
            if value < 0 { byte(0x2D) }
            for i in stride(from: n - 1, through: 0, by: -1) { byte(d[i]) }
        }
    }

    /// Starts a field whose escaped bytes the caller appends with ``appendEscaped(_:)``.
    mutating func beginField() { separator() }

    /// Appends one byte of a text value, escaping it.
    @inline(__always) mutating func appendEscaped(_ b: UInt8) {
        switch b {
        case 0x5C, 0x09, 0x0A, 0x0D:
            reserve(2)
            base.storeBytes(of: 0x5C, toByteOffset: count, as: UInt8.self)
            base.storeBytes(of: b, toByteOffset: count + 1, as: UInt8.self)
            count += 2
        case 0x00:
            replacedNULs += 1
            reserve(3)
            base.storeBytes(of: 0xEF, toByteOffset: count, as: UInt8.self)
            base.storeBytes(of: 0xBF, toByteOffset: count + 1, as: UInt8.self)
            base.storeBytes(of: 0xBD, toByteOffset: count + 2, as: UInt8.self)
            count += 3
        default:
            byte(b)
        }
    }

    mutating func noteBackslashN() { backslashNValues += 1 }

    /// Appends a text value's bytes, escaped, with every invalid UTF-8 sequence replaced by U+FFFD (neither
    /// warehouse loads invalid UTF-8: Redshift refuses the COPY, PostgreSQL the row), and counts the value.
    mutating func appendReplacingInvalidUTF8(_ bytes: UnsafeRawBufferPointer) {
        replacedInvalidUTF8 += 1
        for b in String(decoding: bytes, as: UTF8.self).utf8 { appendEscaped(b) }
    }

    /// Appends bytes already known to need no escaping (no TAB, LF, CR, backslash or NUL), in one copy.
    @inline(__always) mutating func appendVerbatim(_ bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        guard n > 0 else { return }
        reserve(n)
        let from = bytes.baseAddress!
        let to = base + count
        if n <= 32 {
            // Short values (most of them): word copies, no call into libc.
            var i = 0
            while i + 8 <= n {
                to.storeBytes(of: from.loadUnaligned(fromByteOffset: i, as: UInt64.self), toByteOffset: i, as: UInt64.self)
                i += 8
            }
            while i < n {
                to.storeBytes(of: from.load(fromByteOffset: i, as: UInt8.self), toByteOffset: i, as: UInt8.self)
                i += 1
            }
        } else {
            to.copyMemory(from: from, byteCount: n)
        }
        count += n
    }

    /// Appends `length` bytes that `fill` writes at the pointer it is given (exactly `length` of them).
    @inline(__always) mutating func appendRaw(length: Int, _ fill: (UnsafeMutableRawPointer) -> Void) {
        reserve(length)
        fill(base + count)
        count += length
    }

    /// Ends the row.
    mutating func endRow() {
        byte(0x0A)
        fieldsInRow = 0
        rows += 1
    }
}
