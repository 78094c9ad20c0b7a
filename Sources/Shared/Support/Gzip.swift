internal import CZlib

/// Errors from zlib, with zlib's own message.
public struct GzipError: Error, Sendable, CustomStringConvertible {
    public let code: Int32
    public let reason: String
    public var description: String { "GzipError(\(code)): \(reason)" }
}

/// Streaming gzip compressor: bytes in, compressed chunks handed to `sink` as they fill.
/// Not thread-safe: one owner at a time.
public final class GzipWriter {
    private var stream = z_stream()
    private var out = [UInt8](repeating: 0, count: 256 * 1024)
    private let sink: (UnsafeRawBufferPointer) throws -> Void
    private var finished = false
    /// Bytes given to ``write(_:)`` so far.
    public private(set) var bytesIn: Int = 0
    /// Compressed bytes handed to the sink so far.
    public private(set) var bytesOut: Int = 0

    /// - Parameters:
    ///   - level: zlib level 1–9; 6 is zlib's default; 1 is much cheaper in CPU for TSV.
    ///   - sink: receives compressed bytes; it may throw to abort.
    public init(level: Int32 = 6, sink: @escaping (UnsafeRawBufferPointer) throws -> Void) throws {
        self.sink = sink
        let rc = CZlib_deflateInit2(&stream, level, 15 + 16)  // +16: gzip wrapper instead of zlib's
        guard rc == Z_OK else { throw GzipError(code: rc, reason: "deflateInit2 failed") }
    }

    deinit { deflateEnd(&stream) }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count > 0, let base = bytes.baseAddress else { return }
        bytesIn += bytes.count
        stream.next_in = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(bytes.count)
        try pump(flush: Z_NO_FLUSH)
    }

    public func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    /// Flushes the gzip trailer. Call once.
    public func finish() throws {
        guard !finished else { return }
        finished = true
        stream.next_in = nil
        stream.avail_in = 0
        try pump(flush: Z_FINISH)
    }

    private func pump(flush: Int32) throws {
        repeat {
            let produced: Int = try out.withUnsafeMutableBytes { buffer in
                stream.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(buffer.count)
                let rc = deflate(&stream, flush)
                guard rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR else {
                    throw GzipError(code: rc, reason: "deflate failed")
                }
                return buffer.count - Int(stream.avail_out)
            }
            if produced > 0 {
                bytesOut += produced
                try out.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0.prefix(produced))) }
            }
        } while stream.avail_out == 0 || (flush == Z_FINISH && stream.avail_in > 0)
    }
}

/// Streaming gzip decompressor: compressed chunks in, plain chunks to `sink`. Accepts concatenated
/// gzip members (as `gzip -c a b` writes). Not thread-safe.
public final class GzipReader {
    private var stream = z_stream()
    private var out = [UInt8](repeating: 0, count: 256 * 1024)
    private let sink: (UnsafeRawBufferPointer) throws -> Void
    private var atMemberEnd = false

    public init(sink: @escaping (UnsafeRawBufferPointer) throws -> Void) throws {
        self.sink = sink
        let rc = CZlib_inflateInit2(&stream, 15 + 32)  // +32: detect gzip or zlib header
        guard rc == Z_OK else { throw GzipError(code: rc, reason: "inflateInit2 failed") }
    }

    deinit { inflateEnd(&stream) }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
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
    public func finish() throws {
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

    /// Decompresses a whole buffer.
    public static func decompress(_ bytes: [UInt8]) throws -> [UInt8] {
        var result: [UInt8] = []
        let reader = try GzipReader { result.append(contentsOf: $0) }
        try bytes.withUnsafeBytes { try reader.write($0) }
        try reader.finish()
        return result
    }
}

extension GzipWriter {
    /// Compresses a whole buffer.
    public static func compress(_ bytes: [UInt8], level: Int32 = 6) throws -> [UInt8] {
        var result: [UInt8] = []
        let writer = try GzipWriter(level: level) { result.append(contentsOf: $0) }
        try writer.write(bytes)
        try writer.finish()
        return result
    }
}
