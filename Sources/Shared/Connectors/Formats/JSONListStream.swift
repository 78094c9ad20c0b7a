import Foundation

/// Splits a streamed JSON response into batches of whole list elements as the bytes arrive, so a response is never
/// held whole: each batch is handed on as a JSON array of its own (`[e1,e2,…]`) that a converter written for whole
/// arrays converts, and only the unfinished element stays buffered.
///
/// The list is either the top-level array (Singular's day) or the array under `listKey` in a top-level object
/// (Twilio's page: `{"calls": [ … ], "next_page_uri": …}`). What surrounds the list, the *envelope*, is kept with
/// the list emptied (`{"calls":[],"next_page_uri":…}`, bounded by `maxEnvelopeBytes`): the caller converts it
/// after ``finish(_:)`` for the page's links. A top-level object where a top-level array was expected (an API's
/// `{"error": …}` answer) is kept whole, up to `maxEnvelopeBytes`, and handed on at the end.
///
/// It tracks only what decides element boundaries (strings and their escapes, nesting depth, the envelope's keys);
/// the converter validates the JSON itself. String contents are skipped with `memchr`, so the split costs a small
/// part of what converting the bytes costs.
public struct JSONListStream {
    /// nil: the top-level value is the list.
    public let listKey: [UInt8]?
    /// Batches are handed on once their elements reach this many bytes.
    public let batchBytes: Int
    public let maxEnvelopeBytes: Int
    /// The most bytes one list element may have.
    public let maxElementBytes: Int
    /// The response around its list, the list emptied (keyed streams; for the other kind, a top-level object).
    public private(set) var envelope: [UInt8] = []

    /// List bytes after the last separator handed on; `pending[0..<complete]` holds whole elements.
    private var pending: [UInt8] = []
    private var complete = 0
    private var depth = 0
    private var inString = false
    private var escaped = false
    private enum Phase { case start, envelope, list, after }
    private var phase = Phase.start
    /// Keyed streams: where the envelope's current member key starts (-1: not in a key), whether a key is expected
    /// next, and whether the last key was `listKey`.
    private var keyStart = -1
    private var expectKey = false
    private var keyIsList = false
    private var listSeen = false
    /// Bytes fed so far, for error offsets.
    private var consumed = 0

    public init(listKey: String? = nil, batchBytes: Int = 128 << 10, maxEnvelopeBytes: Int = 1 << 20, maxElementBytes: Int = 1 << 20) {
        self.listKey = listKey.map { Array($0.utf8) }
        self.batchBytes = batchBytes
        self.maxEnvelopeBytes = maxEnvelopeBytes
        self.maxElementBytes = maxElementBytes
    }

    /// The list's depth: its elements' separators are at this nesting level.
    private var listDepth: Int { listKey == nil ? 1 : 2 }

    /// Feeds the next bytes; hands on every batch of whole elements that is big enough.
    public mutating func feed(_ chunk: UnsafeRawBufferPointer, _ deliver: ([UInt8]) throws -> Void) throws {
        guard let base = chunk.baseAddress, !chunk.isEmpty else { return }
        let n = chunk.count
        var i = 0
        var run = 0  // chunk[run..<i]: scanned bytes of the current phase not yet copied to its buffer
        func keep(_ phase: Phase, _ from: Int, _ to: Int, _ stream: inout JSONListStream) {
            guard to > from else { return }
            let bytes = UnsafeRawBufferPointer(rebasing: chunk[from..<to])
            switch phase {
            case .list: stream.pending.append(contentsOf: bytes)
            case .envelope: stream.envelope.append(contentsOf: bytes)
            case .start, .after: break
            }
        }
        while i < n {
            if inString {
                if escaped {
                    escaped = false
                    i += 1
                    continue
                }
                // The next quote ends the string unless a backslash comes first.
                let rest = n - i
                let quote = memchr(base + i, 0x22, rest).map { (base + i).distance(to: UnsafeRawPointer($0)) } ?? rest
                if let slash = memchr(base + i, 0x5C, quote) {
                    i += (base + i).distance(to: UnsafeRawPointer(slash)) + 1
                    escaped = true
                    continue
                }
                i += quote
                guard i < n else { break }
                inString = false
                i += 1
                if keyStart >= 0 {  // the end of an envelope key: is it the list's?
                    keep(phase, run, i - 1, &self)
                    run = i - 1
                    keyIsList = listKey.map { envelope.count - keyStart == $0.count && envelope[keyStart...].elementsEqual($0) } ?? false
                    keyStart = -1
                }
                continue
            }
            let byte = chunk[i]
            switch byte {
            case 0x20, 0x09, 0x0A, 0x0D:
                break
            case 0x22:
                if phase == .start || phase == .after {
                    throw misplaced(at: consumed + i)
                }
                inString = true
                if phase == .envelope, depth == 1, expectKey, listKey != nil {
                    keep(phase, run, i + 1, &self)
                    run = i + 1
                    keyStart = envelope.count
                }
            case 0x5B, 0x7B:
                switch phase {
                case .start:
                    if byte == 0x5B, listKey == nil {
                        phase = .list
                        run = i + 1  // the array's own '[' is added back per batch
                    } else if byte == 0x7B {
                        phase = .envelope
                        expectKey = true
                        run = i
                    } else {
                        throw JSONError(offset: consumed + i, reason: "expected a JSON object with a \"\(String(decoding: listKey!, as: UTF8.self))\" list",
                                        truncated: false)
                    }
                    depth = 1
                    i += 1
                    continue
                case .envelope where depth == 1 && byte == 0x5B && keyIsList && !listSeen:
                    // The list begins: the envelope keeps it as `[]`, its elements go to `pending`.
                    keep(.envelope, run, i + 1, &self)
                    envelope.append(0x5D)
                    (phase, listSeen, keyIsList, complete) = (.list, true, false, 0)
                    pending.removeAll(keepingCapacity: true)
                    depth = 2
                    run = i + 1
                    i += 1
                    continue
                case .after:
                    throw misplaced(at: consumed + i)
                default:
                    depth += 1
                    if phase == .envelope, depth == 2 { keyIsList = false }
                }
            case 0x5D, 0x7D:
                guard phase != .after, phase != .start else {
                    throw misplaced(at: consumed + i)
                }
                depth -= 1
                if phase == .list, depth == listDepth - 1 {
                    // The list's closing ']': what precedes it (after the last separator) is the last element.
                    keep(.list, run, i, &self)
                    if pending[complete...].contains(where: { !Self.isSpace($0) }) { complete = pending.count }
                    try flush(deliver)
                    pending = []
                    phase = listKey == nil ? .after : .envelope
                    run = i + 1
                    i += 1
                    continue
                }
                if phase == .envelope, depth == 0 {
                    keep(.envelope, run, i + 1, &self)
                    phase = .after
                    run = i + 1
                }
            case 0x2C:
                if phase == .list, depth == listDepth {
                    complete = pending.count + (i - run)
                } else if phase == .envelope, depth == 1 {
                    (expectKey, keyIsList) = (true, false)
                }
            case 0x3A:
                if phase == .envelope, depth == 1 { expectKey = false }
            default:
                if phase == .start || phase == .after {
                    throw misplaced(at: consumed + i)
                }
            }
            i += 1
        }
        keep(phase, run, n, &self)
        consumed += n
        if envelope.count > maxEnvelopeBytes {
            throw JSONError(offset: consumed, reason: listKey == nil
                                ? "a top-level object over \(maxEnvelopeBytes) bytes"
                                : "over \(maxEnvelopeBytes) bytes around the \"\(String(decoding: listKey!, as: UTF8.self))\" list", truncated: false)
        }
        if phase == .list {
            if pending.count - complete > maxElementBytes, depth == listDepth, !inString {
                // Whitespace between elements is no element: dropped, not counted.
                pending.removeSubrange(((pending.lastIndex { !Self.isSpace($0) } ?? -1) + 1)...)
            }
            if pending.count - complete > maxElementBytes {
                throw JSONError(offset: consumed, reason: "a list element over \(maxElementBytes) bytes", truncated: false)
            }
            if complete >= batchBytes { try flush(deliver) }
        }
    }

    /// Hands on what is left (for the other kind of stream, a top-level object as the last batch). - Throws:
    /// ``JSONError`` (truncated) when the response ended before its top-level value did.
    public mutating func finish(_ deliver: ([UInt8]) throws -> Void) throws {
        switch phase {
        case .start:
            throw JSONError(offset: consumed, reason: "empty response", truncated: true)
        case .list:
            throw JSONError(offset: consumed, reason: "the response's array never ended", truncated: true)
        case .envelope:
            throw JSONError(offset: consumed, reason: "the response's object never ended", truncated: true)
        case .after:
            if listKey == nil, !envelope.isEmpty { try deliver(envelope) }
        }
    }

    private mutating func flush(_ deliver: ([UInt8]) throws -> Void) throws {
        guard complete > 0 else { return }
        var batch = [UInt8]()
        batch.reserveCapacity(complete + 2)
        batch.append(0x5B)
        batch.append(contentsOf: pending[0..<complete])
        batch.append(0x5D)
        // Drop the elements and the separator after them.
        pending.removeFirst(min(complete + 1, pending.count))
        complete = 0
        try deliver(batch)
    }

    /// A byte outside the top-level value.
    private func misplaced(at offset: Int) -> JSONError {
        JSONError(offset: offset, reason: phase == .after ? "data after the top-level value" : "expected a JSON array or object", truncated: false)
    }

    private static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }
}
