internal import CCurl
import Foundation

/// `curl_global_init` must run once, before any thread uses libcurl.
let curlGlobalInit: Void = {
    curl_global_init(Int(CURL_GLOBAL_DEFAULT))
}()

/// State shared with libcurl's C callbacks for one transfer.
final class CurlTransfer {
    var onBody: (UnsafeRawBufferPointer) throws -> Void
    var headers: [(String, String)] = []
    /// Status of the response being received (from its status line), 0 before it.
    var status = 0
    /// Bodies of non-2xx responses are kept here (up to 64 KiB) instead of going to `onBody`.
    var errorBody: [UInt8] = []
    var upload: [UInt8] = []
    var uploadOffset = 0
    var bodyError: (any Error)?
    /// Body bytes received so far, and the most allowed (``HTTPRequest/maxBodyBytes``).
    var received = 0
    var maxBody = Int.max
    var displayURL = ""

    init(onBody: @escaping (UnsafeRawBufferPointer) throws -> Void) { self.onBody = onBody }
}

/// One libcurl easy handle. Not thread-safe: used by one thread at a time. The handle keeps its
/// connection cache between transfers, so returning it to ``HTTPClient``'s pool reuses connections.
final class CurlEasy {
    private let handle: UnsafeMutableRawPointer  // CURL *: curl.h declares CURL as void
    private var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)

    init() throws {
        _ = curlGlobalInit
        guard let handle = curl_easy_init() else { throw CurlError(.initFailed, "curl_easy_init failed", class: .transient) }
        self.handle = handle
    }

    deinit { curl_easy_cleanup(handle) }

    /// Performs `request`, streaming the body to `onBody`. Blocks the calling thread.
    /// Performs `request`, streaming a 2xx body to `onBody`; other bodies are returned whole (≤ 64 KiB).
    func perform(_ request: HTTPRequest, onBody: @escaping (UnsafeRawBufferPointer) throws -> Void) throws -> HTTPResponse {
        curl_easy_reset(handle)
        let transfer = CurlTransfer(onBody: onBody)
        let box = Unmanaged.passRetained(transfer)
        defer { box.release() }
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }

        setLong(CURLOPT_NOSIGNAL, 1)
        // HTTP(S) only, for redirects too (which are not followed: credentials never go to another host).
        CCurl_easy_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https")
        CCurl_easy_setopt_string(handle, CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
        if let limit = request.maxBodyBytes {
            // libcurl refuses a declared Content-Length above the limit; the write callback counts the rest.
            CCurl_easy_setopt_off(handle, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(limit))
            transfer.maxBody = limit
        }
        transfer.displayURL = request.displayURL
        // Large pages arrive in fewer reads and body callbacks than with libcurl's default of 16 KiB; every pooled
        // handle keeps one such buffer. 64 KiB and 256 KiB measured the same (bench/run.sh mix, peak RSS and CPU).
        setLong(CURLOPT_BUFFERSIZE, 64 * 1024)
        setLong(CURLOPT_SSL_VERIFYPEER, 1)
        setLong(CURLOPT_SSL_VERIFYHOST, 2)
        setLong(CURLOPT_FOLLOWLOCATION, 0)
        setLong(CURLOPT_CONNECTTIMEOUT_MS, Int(request.connectTimeout * 1000))
        setLong(CURLOPT_TIMEOUT_MS, Int(request.timeout * 1000))
        setLong(CURLOPT_LOW_SPEED_LIMIT, 1)
        setLong(CURLOPT_LOW_SPEED_TIME, request.lowSpeedSeconds)
        setLong(CURLOPT_TCP_KEEPALIVE, 1)
        // Accept gzip and let curl inflate it: the API bodies are large JSON.
        CCurl_easy_setopt_string(handle, CURLOPT_ACCEPT_ENCODING, "")
        errorBuffer.withUnsafeMutableBufferPointer { _ = CCurl_easy_setopt_ptr(handle, CURLOPT_ERRORBUFFER, $0.baseAddress) }
        errorBuffer[0] = 0
        CCurl_easy_setopt_string(handle, CURLOPT_URL, request.url)

        switch request.method {
        case .GET: setLong(CURLOPT_HTTPGET, 1)
        case .HEAD: setLong(CURLOPT_NOBODY, 1)
        case .PUT, .POST, .DELETE:
            CCurl_easy_setopt_string(handle, CURLOPT_CUSTOMREQUEST, request.method.rawValue)
        }
        if let body = request.body, !body.isEmpty {
            // Upload through a read callback (never POSTFIELDS, which adds a form content type).
            transfer.upload = body
            setLong(CURLOPT_UPLOAD, 1)
            CCurl_easy_setopt_off(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(body.count))
            CCurl_easy_setopt_read(handle, curlRead)
            CCurl_easy_setopt_ptr(handle, CURLOPT_READDATA, box.toOpaque())
            if request.method != .PUT {
                CCurl_easy_setopt_string(handle, CURLOPT_CUSTOMREQUEST, request.method.rawValue)
            }
            // No `Expect:` override: libcurl 7.88 signs an emptied header it then does not send, which breaks
            // SigV4 (checked against moto's strict mode). Large uploads pay one 100-continue round trip.
        }
        // An empty PUT/POST goes out as `curl -X PUT` does: no upload machinery, which strict SigV4 checking
        // (moto's, checked) rejects for zero-length uploads.
        for (name, value) in request.headers { headerList = curl_slist_append(headerList, "\(name): \(value)") }
        if let headerList { CCurl_easy_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList) }
        if let auth = request.basicAuth {
            setLong(CURLOPT_HTTPAUTH, 1)  // CURLAUTH_BASIC (a casting macro Swift does not import)
            CCurl_easy_setopt_string(handle, CURLOPT_USERNAME, auth.user)
            CCurl_easy_setopt_string(handle, CURLOPT_PASSWORD, auth.password.reveal())
        }
        if let sig = request.awsSigV4 {
            CCurl_easy_setopt_string(handle, CURLOPT_AWS_SIGV4, sig.provider)
            CCurl_easy_setopt_string(handle, CURLOPT_USERNAME, sig.accessKey)
            CCurl_easy_setopt_string(handle, CURLOPT_PASSWORD, sig.secretKey.reveal())
        }
        CCurl_easy_setopt_write(handle, curlWrite)
        CCurl_easy_setopt_ptr(handle, CURLOPT_WRITEDATA, box.toOpaque())
        CCurl_easy_setopt_header(handle, curlHeader)
        CCurl_easy_setopt_ptr(handle, CURLOPT_HEADERDATA, box.toOpaque())

        let rc = curl_easy_perform(handle)
        var status: Int = 0
        CCurl_easy_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        if let bodyError = transfer.bodyError { throw bodyError }
        guard rc == CURLE_OK else {
            let detail = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            let text = detail.isEmpty ? String(cString: curl_easy_strerror(rc)) : detail
            let timeout = rc == CURLE_OPERATION_TIMEDOUT
            if rc == CURLE_FILESIZE_EXCEEDED {
                throw CurlError(
                    .tooLarge, curlCode: Int(rc.rawValue), status: status == 0 ? nil : status,
                    "\(request.method.rawValue) \(request.displayURL): the response is larger than \(transfer.maxBody) bytes",
                    class: .permanent)
            }
            let permanent =
                rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT
                || rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_PEER_FAILED_VERIFICATION
            throw CurlError(
                timeout ? .timeout : .transport, curlCode: Int(rc.rawValue), status: status == 0 ? nil : status,
                "\(request.method.rawValue) \(request.displayURL): \(text)".redacting(request.secrets),
                class: permanent ? .permanent : .transient)
        }
        return HTTPResponse(head: HTTPResponseHead(status: status, headers: transfer.headers), body: transfer.errorBody)
    }

    @discardableResult
    private func setLong(_ option: CURLoption, _ value: Int) -> CURLcode { CCurl_easy_setopt_long(handle, option, value) }
}

extension HTTPRequest {
    package var secrets: [Secret] {
        var all = redact
        if let auth = basicAuth { all.append(auth.password) }
        if let sig = awsSigV4 { all.append(sig.secretKey) }
        return all
    }
}

private func curlWrite(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ user: UnsafeMutableRawPointer?) -> Int {
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(user!).takeUnretainedValue()
    let length = size * count
    if !(200..<300).contains(transfer.status) {
        if transfer.errorBody.count < 65536 {
            transfer.errorBody.append(contentsOf: UnsafeRawBufferPointer(start: data, count: length))
        }
        return length
    }
    transfer.received += length
    if transfer.received > transfer.maxBody {
        transfer.bodyError = CurlError(
            .tooLarge, "GET \(transfer.displayURL): the response is larger than \(transfer.maxBody) bytes",
            class: .permanent)
        return 0
    }
    do {
        try transfer.onBody(UnsafeRawBufferPointer(start: data, count: length))
        return length
    } catch {
        transfer.bodyError = error
        return 0  // makes curl abort with CURLE_WRITE_ERROR
    }
}

private func curlRead(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ user: UnsafeMutableRawPointer?) -> Int {
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(user!).takeUnretainedValue()
    let room = size * count
    let remaining = transfer.upload.count - transfer.uploadOffset
    let n = min(room, remaining)
    if n > 0, let data {
        transfer.upload.withUnsafeBytes { source in
            UnsafeMutableRawPointer(data).copyMemory(from: source.baseAddress! + transfer.uploadOffset, byteCount: n)
        }
        transfer.uploadOffset += n
    }
    return n
}

private func curlHeader(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ user: UnsafeMutableRawPointer?) -> Int {
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(user!).takeUnretainedValue()
    let length = size * count
    guard let data else { return length }
    let line = String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
        .trimmingCharacters(in: .whitespacesAndNewlines)
    if line.hasPrefix("HTTP/") {
        transfer.headers = []  // a new response (after 100-continue): keep only its headers
        let parts = line.split(separator: " ")
        transfer.status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
    } else if let colon = line.firstIndex(of: ":") {
        let name = line[..<colon].lowercased()
        let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        transfer.headers.append((name, value))
    }
    return length
}
