internal import CIsal

/// A digest of staged rows that ignores their first two fields (`channel_name`, `when_retrieved`) and their order:
/// two reads of the same records digest the same, so a reload that would change nothing can be skipped. Fed page by
/// page with whole rows; 64 bits of mixed per-row CRC-64 summed, plus the row count.
package struct RowDigest: Sendable, Hashable {
    package private(set) var sum: UInt64 = 0
    package private(set) var rows: UInt64 = 0

    package init() {}

    /// Adds the complete rows in `bytes`.
    package mutating func add(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        CIsal_rows_digest(base.assumingMemoryBound(to: UInt8.self), bytes.count, &sum, &rows)
    }

    /// `rows:sum` in hex, as the load message and the ledger carry it.
    package var text: String { String(rows, radix: 16) + ":" + String(sum, radix: 16) }
}
