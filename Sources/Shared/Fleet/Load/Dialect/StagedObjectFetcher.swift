import Foundation
import HuskimoConnectors
import HuskimoCore

/// Reads a table batch's staged objects for its COPY, one ahead: while one object streams into the COPY, the next
/// is fetched into memory on another thread (an object up to `maxPrefetchBytes`, its size bounded by what its load
/// message says; a larger one streams from S3 when its turn comes). At most two are held: the one streaming and the
/// next (up to 2 × `maxPrefetchBytes`); a prefetch still running when the COPY fails finishes and is dropped.
final class StagedObjectFetcher: @unchecked Sendable {  // `fetches` is used by the COPY's thread only
    private let s3: S3Client
    private let objects: [StagedObject]
    private let maxPrefetchBytes: Int
    private var fetches: [Int: Fetch] = [:]

    private final class Fetch: @unchecked Sendable {  // `result` is written before `done` is signalled, read after
        let done = DispatchSemaphore(value: 0)
        var result: Result<[UInt8], any Error> = .success([])
    }

    init(s3: S3Client, objects: [StagedObject], maxPrefetchBytes: Int = 32 << 20) {
        self.s3 = s3
        self.objects = objects
        self.maxPrefetchBytes = maxPrefetchBytes
    }

    /// Starts fetching object `index` (when it exists, is small enough and is not already on its way).
    func prefetch(_ index: Int) {
        guard index < objects.count, objects[index].bytes <= maxPrefetchBytes, fetches[index] == nil else { return }
        let fetch = Fetch()
        fetches[index] = fetch
        let (s3, key, bytes) = (s3, objects[index].key, objects[index].bytes)
        DispatchQueue.global().async {
            fetch.result = Result { try s3.get(key, maxBytes: bytes) }
            fetch.done.signal()
        }
    }

    /// Hands object `index`'s bytes to `body`, and starts fetching the next one.
    func read(_ index: Int, _ body: @escaping (UnsafeRawBufferPointer) throws -> Void) throws {
        prefetch(index)
        let fetch = fetches.removeValue(forKey: index)
        prefetch(index + 1)
        if let fetch {
            fetch.done.wait()
            try fetch.result.get().withUnsafeBytes { try body($0) }
        } else {
            try s3.get(objects[index].key, onChunk: body)
        }
    }
}

/// Counts the rows of COPY text as it streams by: its newlines, except those escaped by a backslash (a value's own
/// newline is written `\` + newline, which both warehouses read as data).
final class RowCounter: @unchecked Sendable {  // one COPY, one thread
    private(set) var rows = 0
    /// Whether the text so far is whole rows (nothing, or a last byte that ends a row).
    private(set) var endsWithRow = true
    /// Whether the backslashes ending the bytes so far are an odd run (the next byte is escaped).
    private var escaping = false

    func count(_ chunk: UnsafeRawBufferPointer) {
        guard let base = chunk.baseAddress, !chunk.isEmpty else { return }
        var at = 0
        while let hit = memchr(base + at, 0x0A, chunk.count - at) {
            let newline = base.distance(to: UnsafeRawPointer(hit))
            let ends = !escaped(chunk, newline)
            if ends { rows += 1 }
            endsWithRow = ends && newline == chunk.count - 1
            at = newline + 1
        }
        if chunk[chunk.count - 1] != 0x0A { endsWithRow = false }
        var run = 0
        while run < chunk.count, chunk[chunk.count - 1 - run] == 0x5C { run += 1 }
        escaping = run == chunk.count ? (escaping != (run % 2 == 1)) : run % 2 == 1
    }

    /// Whether the byte at `index` follows an odd run of backslashes (this chunk's, and the one before's).
    private func escaped(_ chunk: UnsafeRawBufferPointer, _ index: Int) -> Bool {
        var run = 0
        while run < index, chunk[index - 1 - run] == 0x5C { run += 1 }
        return run == index ? (escaping != (run % 2 == 1)) : run % 2 == 1
    }
}
