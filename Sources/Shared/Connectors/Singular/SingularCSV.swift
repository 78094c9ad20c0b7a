import Foundation
import HuskimoCore

/// Turns a v2.0 report's CSV download into JSON arrays of records under the 0.3 keys, batch by batch as the bytes
/// arrive, so ``SingularConverter`` converts them exactly as it converts a 0.3 answer (types, NOT NULL, byte limits,
/// the reporting day). Nothing is held whole but the unfinished record.
///
/// CSV as RFC 4180 writes it: a header row naming the report's columns, then one record per line (`\n` or `\r\n`);
/// a field with a comma, quote or line break is quoted, a quote inside doubled. An unquoted empty field is null,
/// a quoted empty one (`""`) the empty string. Columns are found by their header name (order free, extra columns
/// ignored); a report without one of the asked-for columns, a record with another number of fields than the header,
/// or a field over ``maxFieldBytes`` fails, named.
struct SingularCSVStream {
    let spec: SingularReportSpec
    /// The 0.3 keys whose values are JSON booleans (`creative_is_video`: Singular writes True/False or 1/0).
    let booleanKeys: Set<String>
    let batchBytes: Int
    let maxFieldBytes: Int
    let table: String

    /// Per header column: the 0.3 key it fills, already written as JSON (`"key":`), and whether its value is a boolean
    /// (nil: not asked for, ignored). Nil until the header has been read. Worked out once, not per record.
    private var keyOfColumn: [(json: [UInt8], boolean: Bool)?]?
    private var field: [UInt8] = []
    private var fieldQuoted = false
    private var inQuotes = false
    /// A quote just closed a quoted stretch (the next byte decides: another quote is a literal one).
    private var quoteClosed = false
    private var previousCR = false
    private var fields: [(bytes: [UInt8], quoted: Bool)] = []
    private var batch: [UInt8] = [UInt8(ascii: "[")]
    private var records = 0
    private var started = false

    init(
        spec: SingularReportSpec, table: String, booleanKeys: Set<String> = ["is_video"], batchBytes: Int = 1 << 20,
        maxFieldBytes: Int = 1 << 20
    ) {
        self.spec = spec
        self.table = table
        self.booleanKeys = booleanKeys
        self.batchBytes = batchBytes
        self.maxFieldBytes = maxFieldBytes
    }

    private func failure(_ reason: String) -> ConversionError {
        ConversionError(table: table, field: "(report CSV)", recordSID: records > 0 ? "#\(records) of the report" : nil, reason: reason)
    }

    /// Feeds the next bytes; hands on every batch of whole records that is big enough.
    mutating func feed(_ chunk: UnsafeRawBufferPointer, _ deliver: ([UInt8]) throws -> Void) throws {
        var bytes = chunk[...]
        if !started {
            started = true
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes = bytes.dropFirst(3) }  // a UTF-8 byte order mark
        }
        for byte in bytes {
            if inQuotes {
                if byte == 0x22 {
                    inQuotes = false
                    quoteClosed = true
                } else {
                    try append(byte)
                }
                continue
            }
            if quoteClosed {
                quoteClosed = false
                if byte == 0x22 {  // "" inside a quoted field
                    inQuotes = true
                    try append(byte)
                    continue
                }
            }
            switch byte {
            case 0x22:
                guard field.isEmpty, !fieldQuoted else { throw failure("a quote inside an unquoted field") }
                inQuotes = true
                fieldQuoted = true
            case 0x2C:
                endField()
            case 0x0A:
                if previousCR {
                    previousCR = false
                    continue
                }
                try endRecord(deliver)
            case 0x0D:
                try endRecord(deliver)
                previousCR = true
                continue
            default:
                try append(byte)
            }
            previousCR = false
        }
    }

    /// Hands on what is left. - Throws: when the download ends inside a quoted field, or has no header row.
    mutating func finish(_ deliver: ([UInt8]) throws -> Void) throws {
        guard !inQuotes else { throw JSONError(offset: 0, reason: "the report's CSV ends inside a quoted field", truncated: true) }
        if !field.isEmpty || fieldQuoted || !fields.isEmpty { try endRecord(deliver) }
        guard keyOfColumn != nil else { throw failure("the report's CSV is empty: no header row") }
        try flush(deliver)
    }

    private mutating func append(_ byte: UInt8) throws {
        guard field.count < maxFieldBytes else { throw failure("a field over \(maxFieldBytes) bytes") }
        field.append(byte)
    }

    private mutating func endField() {
        fields.append((field, fieldQuoted))
        field.removeAll(keepingCapacity: true)
        fieldQuoted = false
    }

    private mutating func endRecord(_ deliver: ([UInt8]) throws -> Void) throws {
        endField()
        defer { fields.removeAll(keepingCapacity: true) }
        guard let keys = keyOfColumn else {
            try readHeader()
            return
        }
        if fields.count == 1, fields[0].bytes.isEmpty, !fields[0].quoted { return }  // a blank line
        guard fields.count == keys.count else {
            throw failure("a record of \(fields.count) fields under a header of \(keys.count)")
        }
        if batch.count > 1 { batch.append(UInt8(ascii: ",")) }
        batch.append(UInt8(ascii: "{"))
        var first = true
        for (key, value) in zip(keys, fields) {
            guard let key else { continue }
            if !first { batch.append(UInt8(ascii: ",")) }
            first = false
            batch += key.json
            if value.bytes.isEmpty && !value.quoted {
                batch += Self.null
            } else if key.boolean, let flag = Self.boolean(value.bytes) {
                batch += flag ? Self.true : Self.false
            } else {
                JSONText.appendString(value.bytes, to: &batch)
            }
        }
        batch.append(UInt8(ascii: "}"))
        records += 1
        if batch.count >= batchBytes { try flush(deliver) }
    }

    private mutating func flush(_ deliver: ([UInt8]) throws -> Void) throws {
        guard batch.count > 1 else { return }
        batch.append(UInt8(ascii: "]"))
        try deliver(batch)
        batch.removeAll(keepingCapacity: true)
        batch.append(UInt8(ascii: "["))
    }

    private mutating func readHeader() throws {
        let names = fields.map { String(decoding: $0.bytes, as: UTF8.self).trimmingCharacters(in: .whitespaces) }
        let keyOf = Dictionary(spec.columns.map { ($0.name, $0.key) }, uniquingKeysWith: { first, _ in first })
        let missing = spec.columns.map(\.name).filter { !names.contains($0) }
        guard missing.isEmpty else {
            throw failure(
                "the report has no column \(missing.joined(separator: ", ")) (its header: \(names.joined(separator: ",").printable(limit: 200)))"
            )
        }
        var seen = Set<String>()
        keyOfColumn = names.map { name in
            guard seen.insert(name).inserted, let key = keyOf[name] else { return nil }
            var json: [UInt8] = []
            JSONText.appendString(key, to: &json)
            return (json + [UInt8(ascii: ":")], booleanKeys.contains(key))
        }
    }

    private static let null = Array("null".utf8), `true` = Array("true".utf8), `false` = Array("false".utf8)

    /// `true`/`false` in any case, or `1`/`0`; nil for anything else (the converter names it).
    static func boolean(_ bytes: [UInt8]) -> Bool? {
        switch String(decoding: bytes, as: UTF8.self).lowercased() {
        case "true", "1": return true
        case "false", "0": return false
        default: return nil
        }
    }
}

/// JSON string literals written into a byte buffer.
enum JSONText {
    static func appendString(_ text: String, to out: inout [UInt8]) { appendString(Array(text.utf8), to: &out) }

    /// `"…"` with `"`, `\` and control characters escaped; other bytes as they are (invalid UTF-8 is the converter's
    /// to replace).
    static func appendString(_ bytes: [UInt8], to out: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for byte in bytes {
            switch byte {
            case 0x22: out += [0x5C, 0x22]
            case 0x5C: out += [0x5C, 0x5C]
            case 0x0A: out += [0x5C, UInt8(ascii: "n")]
            case 0x0D: out += [0x5C, UInt8(ascii: "r")]
            case 0x09: out += [0x5C, UInt8(ascii: "t")]
            case 0..<0x20: out += [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 15)]]
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
