package import HuskimoCore

/// Converts one Singular reporting response (a JSON array of records) into staged rows in the 0.3 column
/// order. A response converts whole or not at all: on an error the writer is rolled back.
package struct SingularConverter {
    package let table: SingularTable
    private let keys: [[UInt8]]
    private let columnKey: [Int]
    private let channelName: String
    private let whenRetrieved: String
    /// The job's day: a record of another reporting day fails the conversion, named.
    package let day: Day?
    /// Per column: the most bytes a text value may have (`varchar(n)`, in bytes as Redshift counts; 0: unbounded).
    private let maxBytes: [Int]

    package struct Result: Sendable {
        package var records = 0
    }

    package init(table: SingularTable, channelName: String, whenRetrieved: String, day: Day?) {
        self.table = table
        var keys: [[UInt8]] = []
        var columnKey: [Int] = []
        for column in table.columns {
            if let key = column.source.jsonKey {
                keys.append(Array(key.utf8))
                columnKey.append(keys.count - 1)
            } else {
                columnKey.append(-1)
            }
        }
        self.keys = keys
        self.columnKey = columnKey
        self.channelName = channelName
        self.whenRetrieved = whenRetrieved
        self.day = day
        let schema = WarehouseSchema.table(table.name)
        self.maxBytes = table.columns.map { column in
            schema?.columns.first { $0.name == column.name }.flatMap { WarehouseSchema.byteLimit($0.type) } ?? 0
        }
    }

    /// Appends the response's rows. - Throws: ``JSONError`` (truncated: transient), ``ConversionError``
    /// (permanent, naming the field and the record), or an ``APIError`` for a `{"error": …}` answer.
    package func convert(_ body: UnsafeRawBufferPointer, into writer: inout TSVWriter) throws -> Result {
        let mark = writer.count
        let rowsBefore = writer.rows
        do {
            return try convertUnchecked(body, into: &writer)
        } catch {
            writer.truncate(to: mark, rows: rowsBefore)
            throw error
        }
    }

    private func convertUnchecked(_ body: UnsafeRawBufferPointer, into writer: inout TSVWriter) throws -> Result {
        var scanner = JSONScanner(body)
        scanner.skipWhitespace()
        guard scanner.position < body.count else {
            throw JSONError(offset: 0, reason: "empty response", truncated: true)
        }
        if body[scanner.position] == UInt8(ascii: "{") {
            // Singular answers some failures with 200 and {"error": "..."}.
            var message: String?
            let errorKey = Array("error".utf8)
            try scanner.forEachMember { scanner, key in
                let value = try scanner.readValue()
                if scanner.key(key, is: errorKey) { message = value.kind == .string ? try scanner.string(value) : "(not a string)" }
            }
            throw ConversionError(
                table: table.name, field: "(response)", recordSID: nil,
                reason: message.map { "Singular answered with an error: \($0)" } ?? "expected a JSON array of records, got an object")
        }
        var result = Result()
        var slots = [JSONSlice](repeating: .absent, count: keys.count)
        var index = 0
        try scanner.forEachElement { scanner in
            for i in 0..<slots.count { slots[i] = .absent }
            try scanner.forEachMember { scanner, field in
                let value = try scanner.readValue()
                for (i, key) in keys.enumerated() where scanner.key(field, is: key) {
                    slots[i] = value
                    break
                }
            }
            try writeRow(slots, index: index, scanner: scanner, into: &writer, result: &result)
            index += 1
        }
        return result
    }

    private func writeRow(
        _ slots: [JSONSlice], index: Int, scanner: JSONScanner, into writer: inout TSVWriter,
        result: inout Result
    ) throws {
        let bytes = scanner.bytes
        func failure(_ column: String, _ reason: String) -> ConversionError {
            ConversionError(table: table.name, field: column, recordSID: "#\(index) of the response", reason: reason)
        }
        func raw(_ slot: JSONSlice) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: bytes[slot.start..<slot.end]) }
        for (column, (name, source, required)) in table.columns.enumerated() {
            let slot = columnKey[column] >= 0 ? slots[columnKey[column]] : .absent
            if slot.isNullOrAbsent, columnKey[column] >= 0 {
                guard !required else {
                    throw failure(name, "\(slot.kind == .null ? "null" : "missing"), but the column is NOT NULL (0.3 contract)")
                }
                writer.null()
                continue
            }
            switch source {
            case .channelName:
                writer.text(channelName)
            case .whenRetrieved:
                writer.plain(whenRetrieved)
            case .text:
                switch slot.kind {
                case .string:
                    writer.beginField()
                    var decoded = 0
                    if UTF8Check.isValid(raw(slot)) {
                        try scanner.decode(slot) {
                            decoded += 1
                            writer.appendEscaped($0)
                        }
                    } else {
                        let text = Array(try scanner.string(slot).utf8)  // invalid sequences → U+FFFD
                        decoded = text.count
                        text.withUnsafeBytes { writer.appendReplacingInvalidUTF8($0) }
                    }
                    if maxBytes[column] > 0, decoded > maxBytes[column] {
                        throw failure(
                            name,
                            "a value of \(decoded) bytes; the column holds \(maxBytes[column]) (VARCHAR counted in bytes, as Redshift counts it)"
                        )
                    }
                    if slot.count == 3, bytes[slot.start] == 0x5C, bytes[slot.start + 1] == 0x5C, bytes[slot.start + 2] == 0x4E {
                        writer.noteBackslashN()
                    }
                case .number, .bool:
                    writer.plain(raw(slot))
                default:
                    throw failure(name, "expected a string, got a JSON \(slot.kind)")
                }
            case .integer, .decimal:
                guard slot.kind == .number || slot.kind == .string else {
                    throw failure(name, "expected a number, got a JSON \(slot.kind)")
                }
                let text = slot.kind == .string ? Array(try scanner.string(slot).utf8) : Array(raw(slot))
                if slot.kind == .string && text.isEmpty {
                    guard !required else { throw failure(name, "empty, but the column is NOT NULL") }
                    writer.null()
                    continue
                }
                guard let plain = PlainDecimal.format(text) else {
                    throw failure(name, "not a number: \(String(decoding: text.prefix(40), as: UTF8.self))")
                }
                if case .integer = source, plain.contains(".") { throw failure(name, "not an integer: \(plain.prefix(40))") }
                if let limit = table.maxIntegerDigits[column],
                    plain.prefix(while: { $0 != "." }).filter(\.isNumber).count > limit
                {
                    throw failure(name, "\(plain.prefix(40)) is out of range for the column (at most \(limit) integer digits)")
                }
                writer.plain(plain)
            case .boolean:
                if slot.kind == .bool {
                    writer.plain(slot.boolValue ? "true" : "false")
                } else if slot.kind == .string, let text = try? scanner.string(slot), text == "true" || text == "false" {
                    writer.plain(text)
                } else {
                    throw failure(name, "expected true or false")
                }
            case .date:
                guard slot.kind == .string, let text = try? scanner.string(slot), let day = Day(text) else {
                    throw failure(name, "expected a day YYYY-MM-DD, got \(describe(slot, scanner))")
                }
                writer.plain("\(day) 00:00:00")
                if let expected = self.day, day != expected {
                    // Appended retrievals are read per reporting day: a stray day would become that day's "latest".
                    throw failure(name, "reporting day \(day) in the response for \(expected): a job holds only its own day")
                }
            case .timestamp:
                guard slot.kind == .string, let text = try? scanner.string(slot), let value = SingularConverter.timestamp(text) else {
                    throw failure(name, "expected YYYY-MM-DDTHH:MM:SS (UTC), got \(describe(slot, scanner))")
                }
                writer.plain(value)
            }
        }
        writer.endRow()
        result.records += 1
    }

    private func describe(_ slot: JSONSlice, _ scanner: JSONScanner) -> String {
        guard slot.kind == .string, let text = try? scanner.string(slot) else { return "a JSON \(slot.kind)" }
        return "\"\(text.prefix(40))\""
    }

    /// `YYYY-MM-DDTHH:MM:SS` with an optional fraction and an optional `Z` / `+00:00` → `YYYY-MM-DD HH:MM:SS`
    /// (plus the fraction); nil when it is not that, names an impossible time, or has a non-UTC offset.
    static func timestamp(_ text: String) -> String? {
        var rest = Substring(text)
        if rest.hasSuffix("Z") { rest = rest.dropLast() } else if rest.hasSuffix("+00:00") { rest = rest.dropLast(6) }
        let utf8 = Array(rest.utf8)
        guard utf8.count >= 19, utf8[10] == UInt8(ascii: "T") || utf8[10] == UInt8(ascii: " "),
            Day(String(decoding: utf8[0..<10], as: UTF8.self)) != nil, utf8[13] == UInt8(ascii: ":"), utf8[16] == UInt8(ascii: ":")
        else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for b in utf8[range] {
                guard b >= 0x30 && b <= 0x39 else { return nil }
                value = value * 10 + Int(b - 0x30)
            }
            return value
        }
        guard let h = number(11..<13), h < 24, let m = number(14..<16), m < 60, let s = number(17..<19), s < 60 else { return nil }
        var fraction = ""
        if utf8.count > 19 {
            guard utf8[19] == UInt8(ascii: "."), utf8.count > 20, number(20..<utf8.count) != nil else { return nil }
            fraction = String(decoding: utf8[19...], as: UTF8.self)
        }
        return String(decoding: utf8[0..<10], as: UTF8.self) + " " + String(decoding: utf8[11..<19], as: UTF8.self) + fraction
    }
}
