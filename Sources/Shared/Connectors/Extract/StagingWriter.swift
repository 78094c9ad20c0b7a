import Foundation
package import HuskimoCore

/// Rows → gzip → S3, in size-bounded objects that together form one load. Rows are handed over a page at
/// a time (``TSVWriter`` buffers), compressed as they come and streamed to S3 part by part, so memory does
/// not grow with the size of a day. A new object starts when the current one reaches `maxObjectBytes`
/// (compressed) at a row boundary. Not thread-safe.
package final class StagingWriter {
    private let client: S3Client
    private let layout: StagingLayout
    private let keyPrefix: String
    private let maxObjectBytes: Int
    private let level: Int32
    private var objectIndex = 0
    private var current: (writer: S3ObjectWriter, gzip: GzipWriter, rows: Int)?
    package private(set) var objects: [StagedObject] = []
    /// The rows staged so far, without `channel_name` and `when_retrieved` and in any order: what tells a re-read
    /// that changed nothing (nil: not kept, for appended tables, whose loads are never skipped as identical).
    package private(set) var content: RowDigest?
    /// Values the writers replaced (U+0000, invalid UTF-8), as their counters last said.
    package private(set) var replacedValues = 0

    /// - Parameters:
    ///   - keyPrefix: from ``StagingLayout/extractionPrefix(_:at:)``; objects are ``StagingLayout/objectKey(prefix:index:)``.
    ///   - level: gzip level; 1 costs a fraction of 6's CPU on TSV for a few percent more bytes.
    ///   - digest: keep ``content`` (replaced partitions; appended tables need none).
    package init(
        client: S3Client, layout: StagingLayout, keyPrefix: String, maxObjectBytes: Int = 64 << 20, level: Int32 = 1,
        digest: Bool = true
    ) {
        self.content = digest ? RowDigest() : nil
        self.client = client
        self.layout = layout
        self.keyPrefix = keyPrefix
        self.maxObjectBytes = maxObjectBytes
        self.level = level
    }

    /// Compresses and stages the rows in `tsv` (complete rows only), then empties its buffer.
    package func write(_ tsv: inout TSVWriter) throws {
        guard !tsv.isEmpty else { return }
        if current == nil { try open() }
        if content != nil { tsv.withUnsafeBytes { content!.add($0) } }
        replacedValues = tsv.replacedNULs + tsv.replacedInvalidUTF8
        try tsv.withUnsafeBytes { try current!.gzip.write($0) }
        current!.rows += tsv.rows
        tsv.reset()
        if current!.gzip.bytesOut >= maxObjectBytes { try close() }
    }

    private func open() throws {
        let key = layout.objectKey(prefix: keyPrefix, index: objectIndex)
        objectIndex += 1
        let object = S3ObjectWriter(client: client, key: key)
        let gzip = try GzipWriter(level: level) { try object.write($0) }
        current = (object, gzip, 0)
    }

    private func close() throws {
        guard let (object, gzip, rows) = current else { return }
        current = nil
        try gzip.finish()
        let sha = try object.finish()
        objects.append(StagedObject(key: object.key, rows: rows, bytes: object.bytesWritten, sha256: sha))
    }

    /// Closes the last object. A load with no rows still stages one (empty) object, so an empty day is a
    /// valid load that replaces its partition with nothing.
    package func finish() throws -> [StagedObject] {
        if current == nil && objects.isEmpty { try open() }
        try close()
        return objects
    }

    /// Abandons the extraction: the object in progress and every object already staged are deleted (best effort:
    /// leftovers cost storage, never correctness, as no load message names them).
    func discard() {
        let staged = abort()
        if !staged.isEmpty { _ = try? client.delete(staged) }
    }

    /// Abandons the object in progress; returns the keys already staged so the caller can delete them.
    package func abort() -> [String] {
        current?.writer.abort()
        current = nil
        return objects.map(\.key)
    }
}
