internal import CIsal
internal import CZlib

/// Errors from zlib or ISA-L, with the library's own message. Corrupt or truncated data is permanent (reading
/// the same object again gives the same bytes); a library that cannot start (out of memory) is transient.
package struct GzipError: ClassifiedError {
    package let code: Int32
    package let reason: String
    package let errorClass: ErrorClass

    init(code: Int32, reason: String, class errorClass: ErrorClass = .permanent) {
        self.code = code
        self.reason = reason
        self.errorClass = errorClass
    }

    package var description: String { "GzipError(\(code)): \(reason)" }
}

/// Streaming gzip compressor: bytes in, compressed chunks handed to `sink` as they fill. One standard gzip
/// member, whatever the backend: levels 0–3 use Intel ISA-L's igzip (several times less CPU than zlib's level 1
/// for a similar size on TSV), levels 4–9 zlib. Not thread-safe: one owner at a time.
package final class GzipWriter {
    private enum Backend {
        case isal(UnsafeMutablePointer<CIsal_deflater>)
        case zlib(UnsafeMutablePointer<z_stream>)
    }

    private let backend: Backend
    private var out = [UInt8](repeating: 0, count: 256 * 1024)
    private let sink: (UnsafeRawBufferPointer) throws -> Void
    private var finished = false
    /// Bytes given to ``write(_:)`` so far.
    private(set) var bytesIn: Int = 0
    /// Compressed bytes handed to the sink so far.
    package private(set) var bytesOut: Int = 0

    /// - Parameters:
    ///   - level: 1–3 fast (ISA-L), 4–9 zlib (6 is zlib's default).
    ///   - sink: receives compressed bytes; it may throw to abort.
    package init(level: Int32 = 6, sink: @escaping (UnsafeRawBufferPointer) throws -> Void) throws {
        self.sink = sink
        if (0...3).contains(level) {
            guard let deflater = CIsal_deflater_new(level) else {
                throw GzipError(code: -1, reason: "ISA-L deflater: out of memory", class: .transient)
            }
            backend = .isal(deflater)
        } else {
            let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
            stream.initialize(to: z_stream())
            let rc = CZlib_deflateInit2(stream, level, 15 + 16)  // +16: gzip wrapper instead of zlib's
            guard rc == Z_OK else {
                stream.deallocate()
                throw GzipError(code: rc, reason: "deflateInit2 failed", class: .transient)
            }
            backend = .zlib(stream)
        }
    }

    deinit {
        switch backend {
        case .isal(let deflater): CIsal_deflater_free(deflater)
        case .zlib(let stream):
            deflateEnd(stream)
            stream.deallocate()
        }
    }

    package func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count > 0, let base = bytes.baseAddress else { return }
        bytesIn += bytes.count
        // Both libraries count input in 32 bits: hand over at most 1 GiB at a time.
        var offset = 0
        while offset < bytes.count {
            let chunk = min(bytes.count - offset, 1 << 30)
            try pump(base.assumingMemoryBound(to: UInt8.self) + offset, chunk, end: false)
            offset += chunk
        }
    }

    package func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    /// Flushes the gzip trailer. Call once.
    package func finish() throws {
        guard !finished else { return }
        finished = true
        try pump(nil, 0, end: true)
    }

    private func emit(_ produced: Int) throws {
        guard produced > 0 else { return }
        bytesOut += produced
        try out.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0.prefix(produced))) }
    }

    private func pump(_ input: UnsafePointer<UInt8>?, _ count: Int, end: Bool) throws {
        switch backend {
        case .isal(let deflater):
            var next = input
            var remaining = count
            while true {
                var consumed: UInt32 = 0, produced: UInt32 = 0
                var done: Int32 = 0
                let rc = out.withUnsafeMutableBytes { buffer in
                    CIsal_deflate(
                        deflater, next, UInt32(remaining), buffer.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        UInt32(buffer.count), end ? 1 : 0, &consumed, &produced, &done)
                }
                guard rc == COMP_OK else { throw GzipError(code: rc, reason: "isal_deflate failed") }
                remaining -= Int(consumed)
                next = next.map { $0 + Int(consumed) }
                try emit(Int(produced))
                if end ? done != 0 : (remaining == 0 && Int(produced) < out.count) { return }
            }
        case .zlib(let stream):
            stream.pointee.next_in = UnsafeMutablePointer(mutating: input)
            stream.pointee.avail_in = uInt(count)
            let flush = end ? Z_FINISH : Z_NO_FLUSH
            repeat {
                let produced: Int = try out.withUnsafeMutableBytes { buffer in
                    stream.pointee.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
                    stream.pointee.avail_out = uInt(buffer.count)
                    let rc = deflate(stream, flush)
                    guard rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR else {
                        throw GzipError(code: rc, reason: "deflate failed")
                    }
                    return buffer.count - Int(stream.pointee.avail_out)
                }
                try emit(produced)
            } while stream.pointee.avail_out == 0 || (end && stream.pointee.avail_in > 0)
        }
    }
}

/// Streaming gzip decompressor: compressed chunks in, plain chunks to `sink`. Accepts concatenated
/// gzip members (as `gzip -c a b` writes). Not thread-safe.
package final class GzipReader {
    private var stream = z_stream()
    private var out = [UInt8](repeating: 0, count: 256 * 1024)
    private let sink: (UnsafeRawBufferPointer) throws -> Void
    private var atMemberEnd = false

    package init(sink: @escaping (UnsafeRawBufferPointer) throws -> Void) throws {
        self.sink = sink
        let rc = CZlib_inflateInit2(&stream, 15 + 32)  // +32: detect gzip or zlib header
        guard rc == Z_OK else { throw GzipError(code: rc, reason: "inflateInit2 failed", class: .transient) }
    }

    deinit { inflateEnd(&stream) }

    package func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count > 0, let base = bytes.baseAddress else { return }
        stream.next_in = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(bytes.count)
        while stream.avail_in > 0 {
            if atMemberEnd {
                inflateReset(&stream)
                atMemberEnd = false
            }
            let (produced, rc): (Int, Int32) = out.withUnsafeMutableBytes { buffer in
                stream.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(buffer.count)
                let rc = inflate(&stream, Z_NO_FLUSH)
                return (buffer.count - Int(stream.avail_out), rc)
            }
            guard rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR else {
                let message = stream.msg.map { String(cString: $0) } ?? "inflate failed"
                throw GzipError(code: rc, reason: "corrupt gzip data: \(message)")
            }
            if produced > 0 { try out.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0.prefix(produced))) } }
            if rc == Z_STREAM_END { atMemberEnd = true }
            if rc == Z_BUF_ERROR && produced == 0 { break }
        }
    }

    /// Checks that the input ended at the end of a gzip member (a truncated object is an error).
    package func finish() throws {
        // Drain anything buffered inside zlib.
        var produced = 0
        repeat {
            var rc: Int32 = Z_OK
            produced = out.withUnsafeMutableBytes { buffer in
                stream.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(buffer.count)
                rc = inflate(&stream, Z_NO_FLUSH)
                return buffer.count - Int(stream.avail_out)
            }
            if produced > 0 { try out.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0.prefix(produced))) } }
            if rc == Z_STREAM_END { atMemberEnd = true }
        } while produced > 0
        guard atMemberEnd || stream.total_in == 0 else {
            throw GzipError(code: Z_DATA_ERROR, reason: "truncated gzip data")
        }
    }
}
