package import HuskimoCore

/// What one page gave.
package struct PageResult: Sendable {
    package var records: Int
    /// `next_page_uri` (2010 API) or `meta.next_page_url` (Pricing), nil on the last page.
    var nextPage: String?
}

/// Converts one page of a Twilio 2010 list response into staged rows, straight from the response bytes:
/// no intermediate objects, one pass over the page. A page either converts whole or not at all (the writer
/// is rolled back to where the page began), so a truncated body can be fetched again without duplicates.
package final class TwilioPageConverter {
    package let table: TwilioTable
    private let keys: [[UInt8]]
    /// For each column, the index of its key in `keys` (-1: no key).
    private let columnKey: [Int]
    /// What each column is, without payloads (the hot loop copies no strings).
    private enum Kind { case channelName, whenRetrieved, text, date, day, integer, boolean, utf16Length }
    private let plan: [Kind]
    /// Per column: the most bytes a value may have (`varchar(n)`: n, counted in bytes as Redshift counts them, the
    /// stricter rule, since one staged file serves every target; 0: unbounded) and whether NULL is refused.
    private let maxBytes: [Int]
    private let notNull: [Bool]
    /// The channel name, already TSV-escaped.
    private let channelName: [UInt8]
    private let whenRetrieved: [UInt8]
    private let recordsKey: [UInt8]
    private let sidKey: Int
    private let partitionKey: Int
    /// The job's day: a record whose partition column is on another day, or null, fails the page, named.
    package let day: Day?

    package init(table: TwilioTable, channelName: String, whenRetrieved: String, day: Day?) {
        self.table = table
        var keys: [[UInt8]] = []
        var columnKey: [Int] = []
        for (_, source) in table.columns {
            if let key = source.jsonKey {
                let bytes = Array(key.utf8)
                if let existing = keys.firstIndex(of: bytes) {
                    columnKey.append(existing)
                } else {
                    keys.append(bytes)
                    columnKey.append(keys.count - 1)
                }
            } else {
                columnKey.append(-1)
            }
        }
        if !keys.contains(Array("sid".utf8)) { keys.append(Array("sid".utf8)) }
        self.keys = keys
        self.columnKey = columnKey
        self.plan = table.columns.map { column -> Kind in
            switch column.source {
            case .channelName: return .channelName
            case .whenRetrieved: return .whenRetrieved
            case .text: return .text
            case .date: return .date
            case .day: return .day
            case .integer: return .integer
            case .boolean: return .boolean
            case .utf16Length: return .utf16Length
            }
        }
        let schema = WarehouseSchema.table(table.name)
        let declared = table.columns.map { column in schema?.columns.first { $0.name == column.name } }
        self.maxBytes = declared.map { $0.flatMap { WarehouseSchema.byteLimit($0.type) } ?? 0 }
        self.notNull = declared.map { $0?.notNull ?? false }
        self.sidKey = keys.firstIndex(of: Array("sid".utf8))!
        self.partitionKey =
            table.partitionColumn.flatMap { column in
                table.columns.first { $0.name == column }?.source.jsonKey.flatMap { keys.firstIndex(of: Array($0.utf8)) }
            } ?? -1
        var escaped = TSVWriter(capacity: 64)
        escaped.beginField()
        for b in channelName.utf8 { escaped.appendEscaped(b) }
        self.channelName = escaped.buffer
        self.whenRetrieved = Array(whenRetrieved.utf8)
        self.recordsKey = Array(table.recordsKey.utf8)
        self.day = day
    }

    /// Appends the page's rows to `writer`. - Throws: ``JSONError`` (truncated: transient) or ``ConversionError``.
    package func convert(page: UnsafeRawBufferPointer, into writer: inout TSVWriter) throws -> PageResult {
        let mark = writer.count
        let rowsBefore = writer.rows
        do {
            var progress = PageProgress()
            _ = try convert(partial: page, progress: &progress, into: &writer, final: true)
            return PageResult(records: progress.records, nextPage: progress.nextPage)
        } catch {
            writer.truncate(to: mark, rows: rowsBefore)
            throw error
        }
    }

    /// How far a page streamed in has been converted (see ``convert(partial:progress:into:final:)``).
    package struct PageProgress: Sendable {
        fileprivate enum Phase: Sendable { case begin, member(first: Bool), listStart, element, afterElement, done, line }
        fileprivate var phase = Phase.begin
        fileprivate(set) var nextPage: String?
        package fileprivate(set) var records = 0
        fileprivate var sawRecords = false

        /// - Parameter lines: the bytes are JSON lines (one record per line, Bulk Export's files), not a list page.
        package init(lines: Bool = false) {
            if lines { phase = .line }
        }
    }

    /// Converts the page's bytes as they arrive, without a second pass over them: `bytes` continue the page where
    /// the last call's consumed bytes ended, and every top-level member and every record they hold whole is
    /// converted (records to `writer`, `next_page_uri` into `progress`). - Returns: the bytes consumed; the caller
    /// keeps the rest and hands it on again, followed by more. With `final`, `bytes` are all that is left of the page:
    /// what is unfinished is an error (a truncated page: transient). A record is written only once it is whole, so a
    /// call that stops inside one has written none of it. - Throws: ``JSONError`` or ``ConversionError``.
    package func convert(
        partial bytes: UnsafeRawBufferPointer, progress: inout PageProgress, into writer: inout TSVWriter,
        final: Bool
    ) throws -> Int {
        var scanner = JSONScanner(bytes)
        var consumed = 0
        let slots = UnsafeMutableBufferPointer<JSONSlice>.allocate(capacity: keys.count)
        defer { slots.deallocate() }
        // Twilio writes every record's keys in the same order: the n-th key of a record is predicted to be the
        // n-th key of the record before (a key we need, or one we skip), so matching costs one comparison. The
        // predictions point into `bytes`: learnt afresh by each call.
        var predicted: [(key: Int, start: Int, count: Int)] = []
        var dates = RFC2822.Cache()
        do {
            while true {
                switch progress.phase {
                case .begin:
                    if !final, scanner.atEndSkippingWhitespace { return consumed }
                    try scanner.expect(0x7B)
                    progress.phase = .member(first: true)
                case .member(let first):
                    if try scanner.peek() == 0x7D {
                        scanner.position += 1
                        progress.phase = .done
                        break
                    }
                    if !first { try scanner.expect(0x2C) }
                    guard try scanner.peek() == 0x22 else { throw scanner.fail("expected a key") }
                    let key = try scanner.readString()
                    try scanner.expect(0x3A)
                    if scanner.key(key, is: recordsKey), try scanner.peek() == 0x5B {
                        scanner.position += 1
                        progress.sawRecords = true
                        progress.phase = .listStart
                        break
                    }
                    let value = try scanner.readValue()
                    // A value is whole once what follows it has arrived (a number or literal may go on).
                    if !final { _ = try scanner.peek() }
                    if scanner.key(key, is: Self.nextKey) {
                        progress.nextPage = value.kind == .string && value.count > 0 ? try scanner.string(value) : nil
                    } else if scanner.key(key, is: recordsKey) {
                        // Not a list (null, a string…): the page cannot be read.
                        throw JSONError(offset: value.start, reason: "\"\(table.recordsKey)\" is not a list", truncated: false)
                    }
                    progress.phase = .member(first: false)
                case .listStart:
                    if try scanner.peek() == 0x5D {
                        scanner.position += 1
                        progress.phase = .member(first: false)
                    } else {
                        progress.phase = .element
                        continue  // nothing consumed yet: the record is read next
                    }
                case .element:
                    try readRecord(&scanner, slots, &predicted)
                    // The record is whole: what its values' decoding throws is never "not arrived yet".
                    try writeRow(UnsafeBufferPointer(slots), scanner: scanner, into: &writer, dates: &dates)
                    progress.records += 1
                    progress.phase = .afterElement
                case .afterElement:
                    let next = try scanner.peek()
                    scanner.position += 1
                    if next == 0x5D {
                        progress.phase = .member(first: false)
                    } else {
                        guard next == 0x2C else { throw scanner.fail("expected ',' or ']'") }
                        progress.phase = .element
                    }
                case .line:
                    // JSON lines: records separated by newlines (whitespace to the scanner), no envelope.
                    if scanner.atEndSkippingWhitespace { return scanner.position }
                    try readRecord(&scanner, slots, &predicted)
                    try writeRow(UnsafeBufferPointer(slots), scanner: scanner, into: &writer, dates: &dates)
                    progress.records += 1
                case .done:
                    scanner.skipWhitespace()
                    guard scanner.position == bytes.count else { throw scanner.fail("data after the page") }
                    guard progress.sawRecords || !final else {
                        throw JSONError(offset: 0, reason: "the response has no \"\(table.recordsKey)\" list", truncated: false)
                    }
                    return bytes.count
                }
                consumed = scanner.position
            }
        } catch let error as JSONError where error.truncated && !final {
            // The rest of this member or record has not arrived yet. Whitespace before it is consumed: every phase
            // begins by skipping it.
            scanner.position = consumed
            scanner.skipWhitespace()
            return scanner.position
        }
    }

    private static let nextKey = Array("next_page_uri".utf8)

    /// Reads the record at the scanner's position into `slots`.
    @inline(__always) private func readRecord(
        _ scanner: inout JSONScanner, _ slots: UnsafeMutableBufferPointer<JSONSlice>,
        _ predicted: inout [(key: Int, start: Int, count: Int)]
    ) throws {
        slots.initialize(repeating: .absent)
        try scanner.expect(0x7B)
        if try scanner.peek() == 0x7D {
            scanner.position += 1
            return
        }
        var ordinal = 0
        while true {
            guard try scanner.peek() == 0x22 else { throw scanner.fail("expected a key") }
            let field: JSONSlice
            if ordinal < predicted.count, let known = scanner.knownString(at: predicted[ordinal].start, count: predicted[ordinal].count) {
                // The predicted key, recognised without scanning it.
                field = known
            } else {
                field = try scanner.readString()
            }
            try scanner.expect(0x3A)
            let index: Int
            if ordinal < predicted.count, predicted[ordinal].count == field.count, !field.escaped,
                scanner.sameBytes(field.start, predicted[ordinal].start, field.count)
            {
                index = predicted[ordinal].key
            } else {
                index = self.index(of: field, in: scanner) ?? -1
                let guess = (key: index, start: field.start, count: field.escaped ? -1 : field.count)
                if ordinal < predicted.count { predicted[ordinal] = guess } else { predicted.append(guess) }
            }
            let value = try scanner.readValue()
            if index >= 0 { slots[index] = value }
            ordinal += 1
            let next = try scanner.peek()
            scanner.position += 1
            if next == 0x7D { return }
            guard next == 0x2C else { throw scanner.fail("expected ',' or '}'") }
        }
    }

    @inline(__always) private func index(of field: JSONSlice, in scanner: JSONScanner) -> Int? {
        for (i, key) in keys.enumerated() where scanner.key(field, is: key) { return i }
        return nil
    }

    private func writeRow(
        _ slots: UnsafeBufferPointer<JSONSlice>, scanner: JSONScanner, into writer: inout TSVWriter,
        dates: inout RFC2822.Cache
    ) throws {
        let bytes = scanner.bytes
        for column in 0..<plan.count {
            let slot = columnKey[column] >= 0 ? slots[columnKey[column]] : .absent
            switch plan[column] {
            case .channelName:
                writer.beginField()
                channelName.withUnsafeBytes { writer.appendVerbatim($0) }
            case .whenRetrieved:
                whenRetrieved.withUnsafeBytes { writer.plain($0) }
            case .text:
                switch slot.kind {
                case .absent, .null:
                    if notNull[column] { throw failure(table.columns[column].name, slots, scanner, "null in a NOT NULL column") }
                    writer.null()
                case .string where !slot.escaped:
                    // JSON forbids raw control characters in strings and escapes every backslash, so an
                    // unescaped JSON string holds no byte the TSV format escapes: one copy.
                    let raw = UnsafeRawBufferPointer(rebasing: bytes[slot.start..<slot.end])
                    writer.beginField()
                    if UTF8Check.isValid(raw) {
                        if maxBytes[column] > 0, slot.count > maxBytes[column] { throw tooLong(column, slot.count, slots, scanner) }
                        writer.appendVerbatim(raw)
                    } else {
                        let replaced = String(decoding: raw, as: UTF8.self)
                        if maxBytes[column] > 0, replaced.utf8.count > maxBytes[column] {
                            throw tooLong(column, replaced.utf8.count, slots, scanner)
                        }
                        writer.appendReplacingInvalidUTF8(raw)
                    }
                case .string:
                    writer.beginField()
                    if slot.count == 3, bytes[slot.start] == 0x5C, bytes[slot.start + 1] == 0x5C, bytes[slot.start + 2] == 0x4E {
                        writer.noteBackslashN()
                    }
                    let raw = UnsafeRawBufferPointer(rebasing: bytes[slot.start..<slot.end])
                    if UTF8Check.isValid(raw) {
                        var decoded = 0
                        try scanner.decode(slot) {
                            decoded += 1
                            writer.appendEscaped($0)
                        }
                        // The page is rolled back as a whole when this throws (see convert).
                        if maxBytes[column] > 0, decoded > maxBytes[column] { throw tooLong(column, decoded, slots, scanner) }
                    } else {
                        let text = try scanner.string(slot)
                        if maxBytes[column] > 0, text.utf8.count > maxBytes[column] {
                            throw tooLong(column, text.utf8.count, slots, scanner)
                        }
                        Array(text.utf8).withUnsafeBytes { writer.appendReplacingInvalidUTF8($0) }
                    }
                case .number, .bool:
                    writer.plain(UnsafeRawBufferPointer(rebasing: bytes[slot.start..<slot.end]))
                case .object, .array:
                    throw failure(table.columns[column].name, slots, scanner, "expected a string, got a JSON \(slot.kind)")
                }
            case .date:
                switch slot.kind {
                case .absent, .null: writer.null()
                case .string where slot.count == 0: writer.null()
                case .string:
                    guard !slot.escaped,
                        let seconds = RFC2822.seconds(bytes, slot.start, slot.end, cache: &dates)
                            ?? ISO8601Time.seconds(bytes, slot.start, slot.end)
                    else {
                        throw failure(
                            table.columns[column].name, slots, scanner,
                            "neither an RFC 2822 date nor an ISO-8601 time: \(try scanner.string(slot).prefix(40))")
                    }
                    writer.beginField()
                    RFC2822.write(seconds, into: &writer, cache: &dates)
                default:
                    throw failure(table.columns[column].name, slots, scanner, "expected a date string")
                }
            case .day:
                switch slot.kind {
                case .absent, .null: writer.null()
                case .string where slot.count == 0: writer.null()
                case .string where !slot.escaped && ISO8601Time.day(bytes, slot.start, slot.end) != nil:
                    writer.plain(UnsafeRawBufferPointer(rebasing: bytes[slot.start..<slot.end]))
                default:
                    throw failure(table.columns[column].name, slots, scanner, "expected a day (YYYY-MM-DD)")
                }
            case .integer:
                switch slot.kind {
                case .absent, .null: writer.null()
                case .string where slot.count == 0: writer.null()
                case .string, .number:
                    var valid = slot.count > 0
                    for i in slot.start..<slot.end where !(bytes[i] >= 0x30 && bytes[i] <= 0x39) && !(i == slot.start && bytes[i] == 0x2D) {
                        valid = false
                    }
                    guard valid, slot.count <= 18 else {
                        throw failure(table.columns[column].name, slots, scanner, "not an integer: \(try scanner.string(slot).prefix(40))")
                    }
                    writer.plain(UnsafeRawBufferPointer(rebasing: bytes[slot.start..<slot.end]))
                default:
                    throw failure(table.columns[column].name, slots, scanner, "expected an integer")
                }
            case .boolean:
                switch slot.kind {
                case .absent, .null: writer.null()
                case .bool: writer.plain(slot.boolValue ? "true" : "false")
                case .string where ["true", "false"].contains(try scanner.string(slot)):
                    writer.plain(try scanner.string(slot))
                default:
                    throw failure(table.columns[column].name, slots, scanner, "expected true or false")
                }
            case .utf16Length:
                switch slot.kind {
                case .absent, .null: writer.null()
                case .string: writer.integer(scanner.utf16Length(slot))
                default: throw failure(table.columns[column].name, slots, scanner, "expected a string")
                }
            }
        }
        writer.endRow()
        if let day, partitionKey >= 0 {
            // A partition holds exactly its day: it is replaced by its day's range, so a row outside it would
            // survive the next reload and be loaded twice. Such a record fails the job, named, instead.
            let slot = slots[partitionKey]
            let seconds =
                slot.kind == .string
                ? RFC2822.seconds(bytes, slot.start, slot.end, cache: &dates) ?? ISO8601Time.seconds(bytes, slot.start, slot.end)
                    ?? ISO8601Time.day(bytes, slot.start, slot.end).map { $0 * 86_400 } : nil
            let recordDay = seconds.map { Day(ordinal: $0 >= 0 ? $0 / 86_400 : ($0 - 86_399) / 86_400) }
            if recordDay != day {
                let column = table.partitionColumn ?? "partition"
                throw failure(
                    column, slots, scanner,
                    recordDay.map {
                        "its \(column) is on \($0) (UTC), outside the job's day \(day): a partition holds only its own day"
                    } ?? "its \(column) is null: no day partition can hold it")
            }
        }
    }

    private func tooLong(_ column: Int, _ bytes: Int, _ slots: UnsafeBufferPointer<JSONSlice>, _ scanner: JSONScanner) -> ConversionError {
        failure(
            table.columns[column].name, slots, scanner,
            "a value of \(bytes) bytes; the column holds \(maxBytes[column]) (VARCHAR counted in bytes, as Redshift counts it)")
    }

    private func failure(
        _ column: String, _ slots: UnsafeBufferPointer<JSONSlice>, _ scanner: JSONScanner, _ reason: String
    ) -> ConversionError {
        let sid = slots[sidKey].kind == .string ? try? scanner.string(slots[sidKey]) : nil
        return ConversionError(table: table.name, field: column, recordSID: sid, reason: reason)
    }
}
