import Foundation

/// An error from S3: the HTTP status and S3's error code (`NoSuchKey`, `SignatureDoesNotMatch`…).
package struct S3Error: ClassifiedError, Sendable {
    package let status: Int
    package let code: String
    package let reason: String
    package var errorClass: ErrorClass { CurlError.classify(status: status) }
    package var description: String { "S3Error(\(status) \(code)): \(reason)" }
}

/// Where S3 is and who we are to it.
package struct S3Endpoint: Sendable {
    /// `https://s3.us-east-1.amazonaws.com` or any S3-compatible server (`http://127.0.0.1:35900`).
    package var endpoint: String
    package var region: String
    package var bucket: String
    package var accessKeyID: String
    package var secretAccessKey: Secret
    /// `true`: `endpoint/bucket/key`; `false`: `bucket.endpoint-host/key` (virtual-hosted, AWS's default).
    package var pathStyle: Bool

    package init(
        endpoint: String? = nil, region: String, bucket: String, accessKeyID: String, secretAccessKey: Secret,
        pathStyle: Bool = false
    ) {
        self.endpoint = endpoint ?? "https://s3.\(region).amazonaws.com"
        self.region = region
        self.bucket = bucket
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.pathStyle = pathStyle
    }
}

/// One listed object.
package struct S3Object: Sendable, Hashable {
    package var key: String
    package var size: Int
}

/// An S3 client on ``HTTPClient``, signed by libcurl's `CURLOPT_AWS_SIGV4`. libcurl 7.88 signs exactly the
/// URL it is given, so this type hands it canonical URLs: path segments RFC 3986-encoded once, query
/// parameters sorted by name with every value encoded and `k=` for empty values, and an
/// `x-amz-content-sha256` header (curl does not add it; real S3 requires it).
package final class S3Client: Sendable {
    package let config: S3Endpoint
    package let http: HTTPClient
    /// Objects larger than this go up in parts.
    let multipartThreshold: Int
    let partSize: Int

    package init(
        _ config: S3Endpoint, http: HTTPClient = HTTPClient(), multipartThreshold: Int = 16 << 20,
        partSize: Int = 8 << 20
    ) {
        self.config = config
        self.http = http
        self.multipartThreshold = multipartThreshold
        self.partSize = max(partSize, 5 << 20)
    }

    // MARK: - URLs and signing

    /// The canonical URL for `key` (nil: the bucket) with `query` sorted and encoded.
    func url(key: String?, query: [(String, String)] = []) -> String {
        var base = config.endpoint.withoutTrailingSlashes
        var path: String
        if config.pathStyle {
            path = "/" + PercentEncoding.encode(config.bucket, keepSlash: false)
        } else {
            if let scheme = base.range(of: "://") {
                base = base[..<scheme.upperBound] + config.bucket + "." + base[scheme.upperBound...]
            }
            path = ""
        }
        if let key { path += "/" + PercentEncoding.encode(key, keepSlash: true) } else if path.isEmpty { path = "/" }
        let sorted = query.sorted { $0.0 < $1.0 }
        let queryText = PercentEncoding.query(sorted)
        return base + path + (queryText.isEmpty ? "" : "?" + queryText)
    }

    package func request(
        _ method: HTTPRequest.Method, key: String?, query: [(String, String)] = [], body: [UInt8]? = nil,
        headers: [(String, String)] = [], timeout: Double = 300
    ) -> HTTPRequest {
        var request = HTTPRequest(method: method, url: url(key: key, query: query), body: body, timeout: timeout)
        request.headers = headers
        request.headers.append(("x-amz-content-sha256", body.map { Digest.sha256Hex($0) } ?? "UNSIGNED-PAYLOAD"))
        if body != nil, !headers.contains(where: { $0.0.lowercased() == "content-type" }) {
            request.headers.append(("Content-Type", "application/octet-stream"))
        }
        request.awsSigV4 = ("aws:amz:\(config.region):s3", config.accessKeyID, config.secretAccessKey)
        return request
    }

    package func send(_ request: HTTPRequest, expect: Set<Int> = [200]) throws -> HTTPResponse {
        let response = try execute(request)
        guard expect.contains(response.status) else { throw S3Client.error(response, request) }
        return response
    }

    /// Pauses before each retry of a request S3 answered with a transient failure (5xx, 429, a dropped connection):
    /// a single 503 costs a quarter of a second, not the re-extraction of a whole job. Every S3 call is
    /// replayable (bodies are in memory; a PUT or DELETE twice is the same), and each try is signed afresh.
    package static let retryDelays: [Double] = [0.25, 1, 4]

    /// One request with ``retryDelays``: the last answer or error is what the caller sees.
    package func execute(_ request: HTTPRequest) throws -> HTTPResponse {
        try Self.retrying { try http.execute(request) }
    }

    package static func retrying(delays: [Double] = retryDelays, _ body: () throws -> HTTPResponse) throws -> HTTPResponse {
        var attempt = 0
        while true {
            do {
                let response = try body()
                guard attempt < delays.count, CurlError.classify(status: response.status) == .transient, response.status >= 400 else {
                    return response
                }
            } catch let error as any ClassifiedError where error.errorClass == .transient && attempt < delays.count {
                // tried again below
            }
            Thread.sleep(forTimeInterval: delays[attempt] * Double.random(in: 0.8...1.2))
            attempt += 1
        }
    }

    package static func error(_ response: HTTPResponse, _ request: HTTPRequest) -> S3Error {
        let text = response.bodyText
        let code = XMLText.first("Code", in: text) ?? "HTTP\(response.status)"
        let message = XMLText.first("Message", in: text) ?? ""
        return S3Error(
            status: response.status, code: code,
            reason: "\(request.method.rawValue) \(request.displayURL): \(message)".redacting(request.secrets))
    }

    /// Stores `bytes` under `key`: one PUT below ``multipartThreshold``, a multipart upload above it.
    package func put(_ key: String, _ bytes: [UInt8], contentType: String = "application/octet-stream") throws {
        if bytes.count < multipartThreshold {
            _ = try send(request(.PUT, key: key, body: bytes, headers: [("Content-Type", contentType)]))
        } else {
            let upload = try MultipartUpload(client: self, key: key, contentType: contentType)
            do {
                var offset = 0
                while offset < bytes.count {
                    let end = min(offset + partSize, bytes.count)
                    try upload.uploadPart(Array(bytes[offset..<end]))
                    offset = end
                }
                try upload.complete()
            } catch {
                upload.abort()
                throw error
            }
        }
    }

    /// Streams the object's bytes to `onChunk` as they arrive.
    package func get(_ key: String, onChunk: @escaping (UnsafeRawBufferPointer) throws -> Void) throws {
        let req = request(.GET, key: key)
        // Retried only while nothing has reached `onChunk` (the consumer cannot take bytes back).
        var delivered = false
        var failed: HTTPResponse?
        let response = try Self.retrying { () throws -> HTTPResponse in
            guard !delivered else {
                throw failed.map { S3Client.error($0, req) }
                    ?? S3Error(status: 0, code: "Stream", reason: "GET \(req.displayURL): interrupted")
            }
            let response = try http.stream(req) { chunk in
                delivered = true
                try onChunk(chunk)
            }
            if response.status != 200 { failed = response }
            return response
        }
        guard response.status == 200 else { throw S3Client.error(response, req) }
    }

    /// The status S3 answers a HEAD of `key` with (200 there, 404 missing where listing is allowed, 403 refused).
    package func head(_ key: String) throws -> Int {
        var req = request(.HEAD, key: key, timeout: 30)
        req.maxBodyBytes = 0
        return try execute(req).status
    }

    /// The object's bytes. - Parameter maxBytes: the most accepted (a larger body is a permanent error, not held).
    package func get(_ key: String, maxBytes: Int? = nil) throws -> [UInt8] {
        var req = request(.GET, key: key)
        req.maxBodyBytes = maxBytes
        return try send(req).body
    }

    /// Lists keys under `prefix`, following continuation tokens to the end (1,000 per page).
    package func list(prefix: String, pageSize: Int = 1000) throws -> [S3Object] {
        var objects: [S3Object] = []
        var token: String?
        repeat {
            var query: [(String, String)] = [("list-type", "2"), ("prefix", prefix), ("max-keys", String(pageSize))]
            if let token { query.append(("continuation-token", token)) }
            let text = try send(request(.GET, key: nil, query: query)).bodyText
            for block in XMLText.all("Contents", in: text) {
                guard let key = XMLText.first("Key", in: block) else { continue }
                objects.append(S3Object(key: key, size: Int(XMLText.first("Size", in: block) ?? "") ?? 0))
            }
            token = XMLText.first("IsTruncated", in: text) == "true" ? XMLText.first("NextContinuationToken", in: text) : nil
        } while token != nil
        return objects
    }

    /// Deletes any number of keys, 1,000 per DeleteObjects request (0.3.0 once deleted only the first 1,000).
    /// - Returns: how many keys S3 reported deleted.
    @discardableResult
    package func delete(_ keys: [String]) throws -> Int {
        var deleted = 0
        var index = 0
        while index < keys.count {
            let batch = keys[index..<min(index + 1000, keys.count)]
            var xml = "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>false</Quiet>"
            for key in batch { xml += "<Object><Key>\(XMLText.escape(key))</Key></Object>" }
            xml += "</Delete>"
            let body = Array(xml.utf8)
            let md5 = Digest(.md5)
            md5.update(body)
            let response = try send(
                request(
                    .POST, key: nil, query: [("delete", "")], body: body,
                    headers: [("Content-MD5", md5.finalize().base64String), ("Content-Type", "application/xml")]))
            let text = response.bodyText
            let errors = XMLText.all("Error", in: text)
            if let first = errors.first {
                throw S3Error(
                    status: 200, code: XMLText.first("Code", in: first) ?? "DeleteError",
                    reason: "DeleteObjects: \(errors.count) keys not deleted, first: \(XMLText.first("Key", in: first) ?? "?")")
            }
            deleted += XMLText.all("Deleted", in: text).count
            index += batch.count
        }
        return deleted
    }
}

/// A multipart upload in progress: parts go up as they are produced, so a large object never sits whole in
/// memory. Not thread-safe.
final class MultipartUpload {
    private let client: S3Client
    package let key: String
    private let uploadID: String
    private var etags: [String] = []

    init(client: S3Client, key: String, contentType: String) throws {
        self.client = client
        self.key = key
        let req = client.request(.POST, key: key, query: [("uploads", "")], body: [], headers: [("Content-Type", contentType)])
        let response = try client.execute(req)
        guard response.status == 200, let id = XMLText.first("UploadId", in: response.bodyText) else {
            throw S3Client.error(response, req)
        }
        uploadID = id
    }

    /// Uploads the next part (at least 5 MiB except the last).
    func uploadPart(_ bytes: [UInt8]) throws {
        let number = etags.count + 1
        let req = client.request(.PUT, key: key, query: [("partNumber", String(number)), ("uploadId", uploadID)], body: bytes)
        let response = try client.execute(req)
        guard response.status == 200, let etag = response.head.header("etag") else { throw S3Client.error(response, req) }
        etags.append(etag)
    }

    package func complete() throws {
        var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        for (index, etag) in etags.enumerated() {
            xml += "<Part><PartNumber>\(index + 1)</PartNumber><ETag>\(XMLText.escape(etag))</ETag></Part>"
        }
        xml += "</CompleteMultipartUpload>"
        let req = client.request(
            .POST, key: key, query: [("uploadId", uploadID)], body: Array(xml.utf8),
            headers: [("Content-Type", "application/xml")])
        let response = try client.execute(req)
        // S3 can answer 200 with an <Error> body for CompleteMultipartUpload.
        guard response.status == 200, !response.bodyText.contains("<Error>") else { throw S3Client.error(response, req) }
    }

    package func abort() {
        _ = try? client.http.execute(client.request(.DELETE, key: key, query: [("uploadId", uploadID)]))
    }
}

/// Just enough XML for S3's answers: element text by name, entity-decoded.
enum XMLText {
    static func all(_ name: String, in text: String) -> [String] {
        var results: [String] = []
        var rest = text[...]
        let open = "<\(name)>", close = "</\(name)>"
        while let start = rest.range(of: open), let end = rest.range(of: close, range: start.upperBound..<rest.endIndex) {
            results.append(unescape(String(rest[start.upperBound..<end.lowerBound])))
            rest = rest[end.upperBound...]
        }
        return results
    }

    static func first(_ name: String, in text: String) -> String? {
        let open = "<\(name)>", close = "</\(name)>"
        guard let start = text.range(of: open), let end = text.range(of: close, range: start.upperBound..<text.endIndex)
        else { return nil }
        return unescape(String(text[start.upperBound..<end.lowerBound]))
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
            .replacingOccurrences(of: "'", with: "&apos;")
    }

    static func unescape(_ text: String) -> String {
        guard text.contains("&") else { return text }
        var out = ""
        var rest = text[...]
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            guard let semi = rest[amp...].firstIndex(of: ";") else {
                out += rest[amp...]
                return out
            }
            let entity = rest[rest.index(after: amp)..<semi]
            switch entity {
            case "amp": out += "&"
            case "lt": out += "<"
            case "gt": out += ">"
            case "quot": out += "\""
            case "apos": out += "'"
            default:
                if entity.hasPrefix("#x"), let v = UInt32(entity.dropFirst(2), radix: 16), let s = UnicodeScalar(v) {
                    out.unicodeScalars.append(s)
                } else if entity.hasPrefix("#"), let v = UInt32(entity.dropFirst()), let s = UnicodeScalar(v) {
                    out.unicodeScalars.append(s)
                } else {
                    out += rest[amp...semi]
                }
            }
            rest = rest[rest.index(after: semi)...]
        }
        return out + rest
    }

}
