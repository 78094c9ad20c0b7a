/// Streams one object to S3 without holding it whole: bytes collect up to one part, then go up as a part
/// of a multipart upload; an object smaller than one part is sent with a single PUT at ``finish()``.
/// Memory stays at one part (≥ 5 MiB) whatever the object's size. Not thread-safe.
package final class S3ObjectWriter {
    package let key: String
    private let client: S3Client
    private var pending: [UInt8] = []
    private var upload: MultipartUpload?
    private let sha = Digest(.sha256)
    package private(set) var bytesWritten = 0

    package init(client: S3Client, key: String) {
        self.client = client
        self.key = key
        pending.reserveCapacity(client.partSize)
    }

    package func write(_ bytes: UnsafeRawBufferPointer) throws {
        sha.update(bytes)
        bytesWritten += bytes.count
        pending.append(contentsOf: bytes)
        if pending.count >= client.partSize {
            if upload == nil { upload = try MultipartUpload(client: client, key: key, contentType: "application/gzip") }
            try upload!.uploadPart(pending)
            pending.removeAll(keepingCapacity: true)
        }
    }

    /// Completes the object. - Returns: its SHA-256 (hex).
    package func finish() throws -> String {
        if let upload {
            if !pending.isEmpty { try upload.uploadPart(pending) }
            try upload.complete()
        } else {
            try client.put(key, pending, contentType: "application/gzip")
        }
        pending = []
        return sha.finalize().hexString
    }

    /// Abandons the object (aborts a multipart upload).
    package func abort() { upload?.abort() }
}
