/// Splits a streamed JSON response whose top level is an array into batches of whole elements, as the bytes
/// arrive: each batch is handed on as a JSON array of its own (`[e1,e2,…]`), so a converter written for whole
/// responses converts it, and only the unfinished element stays buffered. A top-level object (an API's
/// `{"error": …}` answer) is kept whole, up to `maxObjectBytes`, and handed on at the end.
///
/// It tracks only what decides element boundaries (strings and their escapes, nesting depth); the converter
/// validates the JSON itself.
package struct JSONArrayStream {
    /// Batches are handed on once their elements reach this many bytes.
    package let batchBytes: Int
    package let maxObjectBytes: Int
    private var buffer: [UInt8] = []
    /// Where the scan goes on from, and the end of the last complete element (a `,` at depth 1, or the `]`).
    private var scanned = 0
    private var complete = 0
    private var depth = 0
    private var inString = false
    private var escaped = false
    private enum Shape { case unknown, array, object, done }
    private var shape = Shape.unknown
    /// Bytes handed on so far, for errors.
    private var consumed = 0

    package init(batchBytes: Int = 1 << 20, maxObjectBytes: Int = 1 << 20) {
        self.batchBytes = batchBytes
        self.maxObjectBytes = maxObjectBytes
    }

    /// Feeds the next bytes; hands on every batch of whole elements that is big enough.
    package mutating func feed(_ chunk: UnsafeRawBufferPointer, _ deliver: ([UInt8]) throws -> Void) throws {
        buffer.append(contentsOf: chunk)
        try scan()
        if shape == .object, buffer.count > maxObjectBytes {
            throw JSONError(offset: consumed + buffer.count, reason: "a top-level object over \(maxObjectBytes) bytes", truncated: false)
        }
        if shape == .array, complete >= batchBytes { try flush(deliver) }
    }

    /// Hands on what is left. - Throws: ``JSONError`` (truncated) when the array or object never ended.
    package mutating func finish(_ deliver: ([UInt8]) throws -> Void) throws {
        try scan()
        switch shape {
        case .object:
            try deliver(buffer)
            buffer = []
        case .done, .array:
            try flush(deliver)
            guard shape == .done else {
                throw JSONError(offset: consumed + buffer.count, reason: "the response's array never ended", truncated: true)
            }
            // After the array, only whitespace.
            if buffer.contains(where: { !Self.isSpace($0) }) {
                throw JSONError(offset: consumed, reason: "data after the top-level array", truncated: false)
            }
        case .unknown:
            throw JSONError(offset: consumed, reason: "empty response", truncated: true)
        }
    }

    private mutating func flush(_ deliver: ([UInt8]) throws -> Void) throws {
        guard complete > 0 else { return }
        // buffer[0..<complete] holds whole elements separated by commas (the last one's comma or ']' excluded).
        var batch = [UInt8]()
        batch.reserveCapacity(complete + 2)
        batch.append(0x5B)
        batch.append(contentsOf: buffer[0..<complete])
        batch.append(0x5D)
        // Drop the elements and the separator after them.
        let drop = min(complete + 1, buffer.count)
        buffer.removeFirst(drop)
        consumed += drop
        scanned -= drop
        complete = 0
        if batch.count > 2 { try deliver(batch) }
    }

    private static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }

    private mutating func scan() throws {
        var i = scanned
        while i < buffer.count {  // leading whitespace is removed as it is met: the count moves
            let b = buffer[i]
            switch shape {
            case .unknown:
                if Self.isSpace(b) {
                    buffer.remove(at: i)  // leading whitespace: not part of any element
                    continue
                }
                if b == 0x5B {
                    shape = .array
                    depth = 1
                    buffer.remove(at: i)  // the array's own '[' is added back per batch
                    scanned = 0
                    return try scan()
                } else if b == 0x7B {
                    shape = .object
                    scanned = buffer.count
                    return
                } else {
                    throw JSONError(offset: consumed + i, reason: "expected a JSON array or object", truncated: false)
                }
            case .object, .done:
                scanned = buffer.count
                return
            case .array:
                if inString {
                    if escaped {
                        escaped = false
                    } else if b == 0x5C {
                        escaped = true
                    } else if b == 0x22 {
                        inString = false
                    }
                } else {
                    switch b {
                    case 0x22: inString = true
                    case 0x5B, 0x7B: depth += 1
                    case 0x5D, 0x7D:
                        depth -= 1
                        if depth == 0 {
                            // The array's closing ']': what precedes it (after the last comma) is the last element,
                            // and the flush drops the ']' with it; an empty array leaves nothing to hand on.
                            shape = .done
                            if buffer[0..<i].contains(where: { !Self.isSpace($0) }) {
                                complete = i
                                scanned = i + 1
                            } else {
                                buffer.removeFirst(i + 1)
                                consumed += i + 1
                                (scanned, complete) = (0, 0)
                            }
                            return
                        }
                    case 0x2C where depth == 1: complete = i
                    default: break
                    }
                }
            }
            i += 1
        }
        scanned = i
    }
}
