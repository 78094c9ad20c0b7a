package import HuskimoCore

extension GzipReader {
    /// Decompresses a whole buffer.
    package static func decompress(_ bytes: [UInt8]) throws -> [UInt8] {
        var result: [UInt8] = []
        let reader = try GzipReader { result.append(contentsOf: $0) }
        try bytes.withUnsafeBytes { try reader.write($0) }
        try reader.finish()
        return result
    }
}

extension GzipWriter {
    /// Compresses a whole buffer.
    package static func compress(_ bytes: [UInt8], level: Int32 = 6) throws -> [UInt8] {
        var result: [UInt8] = []
        let writer = try GzipWriter(level: level) { result.append(contentsOf: $0) }
        try writer.write(bytes)
        try writer.finish()
        return result
    }
}
