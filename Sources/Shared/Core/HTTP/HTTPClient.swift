import Foundation

/// An HTTP/1.1 client over libcurl. Thread-safe: each request borrows an easy handle from a pool (so
/// connections are reused) and runs on the calling thread; the async variants run on blocking-work threads,
/// so many requests can be in flight at once.
package final class HTTPClient: @unchecked Sendable {  // `idle` is guarded by `lock`
    private let lock = NSLock()
    private var idle: [CurlEasy] = []
    private let maxIdle: Int

    package init(maxIdleHandles: Int = 64) {
        self.maxIdle = maxIdleHandles
    }

    private func checkout() throws -> CurlEasy {
        if let handle = lock.withLock({ idle.popLast() }) { return handle }
        return try CurlEasy()
    }

    private func checkin(_ handle: CurlEasy) {
        lock.withLock {
            if idle.count < maxIdle { idle.append(handle) }
        }
    }

    /// Performs `request`, handing a 2xx body to `onBody` chunk by chunk as it arrives. Blocks.
    /// - Returns: the status and headers, and for a non-2xx status its body (≤ 64 KiB): the caller judges it.
    /// - Throws: ``CurlError`` for transport failures, or whatever `onBody` threw.
    package func stream(
        _ request: HTTPRequest, onBody: @escaping (UnsafeRawBufferPointer) throws -> Void
    ) throws
        -> HTTPResponse
    {
        let handle = try checkout()
        do {
            let response = try handle.perform(request, onBody: onBody)
            checkin(handle)
            return response
        } catch {
            // A handle whose transfer failed may hold a broken connection: drop it.
            throw error
        }
    }

    /// Performs `request` and collects the body. Blocks.
    package func execute(_ request: HTTPRequest) throws -> HTTPResponse {
        var body: [UInt8] = []
        let head = try execute(request, into: &body)
        return HTTPResponse(head: head, body: body)
    }

    /// Performs `request` and collects a 2xx body into `body` (emptied first, its capacity kept: a caller that
    /// fetches page after page reuses one allocation). Blocks.
    package func execute(_ request: HTTPRequest, into body: inout [UInt8]) throws -> HTTPResponseHead {
        body.removeAll(keepingCapacity: true)
        var collected = body
        body = []  // `collected` is the only reference: appends do not copy
        let response = try stream(request) { collected.append(contentsOf: $0) }
        if (200..<300).contains(response.status) {
            body = collected
        } else {
            body = response.body
        }
        return response.head
    }

    /// Performs `request` on a blocking-work thread and collects the body.
    package func execute(_ request: HTTPRequest) async throws -> HTTPResponse {
        try await Blocking.run { try self.execute(request) }
    }
}
