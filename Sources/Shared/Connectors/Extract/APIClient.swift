import Foundation
package import HuskimoCore
package import Logging

/// A failed API request, classified: 401/403/404/400 are permanent (the API's code and message kept),
/// 429, 5xx, dropped and truncated responses transient. Never carries a credential: the URL is the
/// request's display form and the message is scrubbed of the request's secrets.
package struct APIError: ClassifiedError, Sendable {
    /// The API the request went to: names the error and labels metrics.
    package let api: ChannelType
    package let status: Int?
    /// Twilio's error code (20003, 20404, 20429, 21481…), when the body had one.
    package let code: Int?
    package let message: String
    package let url: String
    package let errorClass: ErrorClass
    /// The request's method, for the description.
    package var method = "GET"
    package var description: String {
        let name = api.displayName
        let what = [status.map { "HTTP \($0)" }, code.map { "\(name) error \($0)" }].compactMap { $0 }.joined(separator: ", ")
        return "\(what.isEmpty ? "\(name) request failed" : what): \(message) (\(method) \(url))"
    }
}

/// Fetches API responses with retries: transient failures (5xx, 429, dropped or truncated bodies, timeouts)
/// are retried on the same URL with exponential backoff and jitter; a 429 also sets the account's
/// concurrency limit to what it served (``AdaptiveLimiter``) and honours `Retry-After`. Blocking: call from a blocking-work thread.
package struct APIClient: Sendable {
    package let http: HTTPClient
    package let limiters: AccountLimiters
    package var maxAttempts: Int
    package var backoff: Backoff
    package var timeout: Double
    /// The longest `Retry-After` waited for in process; a longer one ends the attempt with a transient error, so the
    /// job goes back to the queue's delay queues and this worker serves other accounts meanwhile.
    var maxRetryAfter: Double = 120
    /// The most one request may wait in total across its retries (each `Retry-After` is capped by `maxRetryAfter`, but
    /// 429s every time would add up to about an hour); past it the attempt ends transient, back to the delay queues.
    var maxTotalWait: Double = 600
    /// Ended by the worker's shutdown: a wait between retries stops at once and the attempt ends transient (the job
    /// goes to the delay queues, one attempt counted), rather than holding the grace period for up to two minutes.
    package var stop = StopLatch()
    /// The largest response body accepted (`fetch.max_response_mib`); a larger one is a permanent error.
    package var maxBodyBytes = 256 << 20
    package let logger: Logger

    package init(
        http: HTTPClient, limiters: AccountLimiters, maxAttempts: Int = 8, backoff: Backoff = Backoff(base: 0.25, max: 20),
        timeout: Double = 120, logger: Logger
    ) {
        self.http = http
        self.limiters = limiters
        self.maxAttempts = maxAttempts
        self.backoff = backoff
        self.timeout = timeout
        self.logger = logger
    }

    /// Counts of what happened, for logs and metrics.
    package struct Tally: Sendable {
        package var requests = 0
        package var retries = 0
        package var throttled = 0
        /// The bodies' storage, reused page after page (one allocation per job, not one per page).
        var pageBuffer: [UInt8] = []
    }

    /// Performs `request` (paced by `account`'s limiter) and hands the 200 body to `consume`, retrying
    /// transient failures (also those `consume` throws, such as a truncated JSON body) until `maxAttempts`.
    package func fetch<T>(
        _ request: HTTPRequest, api: ChannelType, account: String, tally: inout Tally,
        consume: ([UInt8]) throws -> T
    ) throws -> T {
        var buffer = tally.pageBuffer
        tally.pageBuffer = []
        defer { tally.pageBuffer = buffer }
        return try perform(
            request, api: api, account: account, tally: &tally,
            transfer: { request in
                let head = try http.execute(request, into: &buffer)
                return HTTPResponse(head: head, body: buffer)
            },
            consume: { response, _ in try consume(response.body) })
    }

    /// ``fetch(_:api:account:tally:consume:)`` handing on the whole response (status and headers too): for a request
    /// whose ``HTTPRequest/alsoAccepted`` statuses are answers (a 307 read for its `Location`).
    package func fetchResponse<T>(
        _ request: HTTPRequest, api: ChannelType, account: String, tally: inout Tally, consume: (HTTPResponse) throws -> T
    ) throws -> T {
        var buffer: [UInt8] = []
        return try perform(
            request, api: api, account: account, tally: &tally,
            transfer: { request in
                let head = try http.execute(request, into: &buffer)
                return HTTPResponse(head: head, body: buffer)
            },
            consume: { response, _ in try consume(response) })
    }

    /// Performs `request` and streams a 200 body to `onChunk` as it arrives (nothing held whole), then calls
    /// `finish`. Retried like ``fetch(_:api:account:tally:consume:)``. Once bytes have been handed on, what happens
    /// on a failure depends on `restart`: with it, the consumer is told to start over and the request is retried in
    /// place (a Twilio page, converted into rows that are staged only once the page is whole); without it (a
    /// consumer that cannot take bytes back), the failure is transient for the job as a whole.
    package func stream<T>(
        _ request: HTTPRequest, api: ChannelType, account: String, tally: inout Tally, restart: (() -> Void)? = nil,
        onChunk: @escaping (UnsafeRawBufferPointer) throws -> Void, finish: () throws -> T
    ) throws -> T {
        let delivered = DeliveredBytes()
        let replayable = restart != nil
        return try perform(
            request, api: api, account: account, tally: &tally,
            transfer: { request in
                if delivered.bytes > 0, let restart {
                    restart()
                    delivered.bytes = 0
                }
                do {
                    return try http.stream(request) { chunk in
                        delivered.bytes += chunk.count
                        try onChunk(chunk)
                    }
                } catch let error as any ClassifiedError where !replayable && delivered.bytes > 0 && error.isRetriable {
                    throw BrokenStream(bytes: delivered.bytes, cause: "\(error)", url: request.displayURL)
                }
            },
            consume: { _, _ in
                do {
                    return try finish()
                } catch let error as any ClassifiedError where !replayable && error.isRetriable && delivered.bytes > 0 {
                    throw BrokenStream(bytes: delivered.bytes, cause: "\(error)", url: request.displayURL)
                }
            })
    }

    /// Bytes a stream has handed on (one transfer at a time, on the calling thread).
    final class DeliveredBytes: @unchecked Sendable { var bytes = 0 }

    /// A streamed response that failed after bytes were handed on: transient for the job (it is read again
    /// whole, from the delay queue), never retried in place.
    struct BrokenStream: ClassifiedError {
        let bytes: Int
        let cause: String
        let url: String
        var errorClass: ErrorClass { .transient }
        var description: String { "the response broke off after \(bytes) bytes (\(cause)): the job is read again (GET \(url))" }
    }

    /// The request loop both share: pacing by the account's limiter, metrics, classification, Retry-After, and
    /// retries of transient failures (not of `retriable: false` ones) until `maxAttempts`.
    private func perform<T>(
        _ request: HTTPRequest, api: ChannelType, account: String, tally: inout Tally,
        transfer: (HTTPRequest) throws -> HTTPResponse,
        consume: (HTTPResponse, Int) throws -> T
    ) throws -> T {
        let limiter = limiters.limiter(for: account)
        var request = request
        if request.maxBodyBytes == nil { request.maxBodyBytes = maxBodyBytes }
        var attempt = 0
        var throttles = 0
        var waited = 0.0
        var renewed = false
        let headers = request.headers
        while true {
            // An OAuth token is asked for each attempt: a retry after a wait never carries one that has expired.
            var token: Secret?
            if let bearer = request.bearer {
                let current = try bearer.current()
                token = current
                request.headers =
                    headers.filter { $0.0.lowercased() != "authorization" } + [("Authorization", "Bearer " + current.reveal())]
                request.redact.append(current)
            }
            let ticket = limiter.acquire()
            var throttled = false
            let failure: any ClassifiedError
            var retryAfter: Double?
            tally.requests += 1
            let started = ContinuousClock.now
            var released = false
            do {
                let response = try transfer(request)
                throttled = response.status == 429
                limiter.release(ticket, throttled: throttled)
                released = true
                FleetMetrics.request(api: api, status: response.status, seconds: (ContinuousClock.now - started).seconds)
                if response.status == 200 || request.alsoAccepted.contains(response.status) {
                    do {
                        return try consume(response, attempt)
                    } catch let error as any ClassifiedError where error.isRetriable && !(error is BrokenStream) {
                        failure = error  // e.g. a body cut short: fetch the page again
                    }
                } else if response.status == 401, let bearer = request.bearer, let token, !renewed {
                    // The token expired or was revoked between our check and the API's: one renewal, then again.
                    renewed = true
                    bearer.refused(token)
                    logger.debug("bearer token refused (401): renewing it once", metadata: ["url": "\(request.displayURL)"])
                    continue
                } else {
                    let error = APIClient.error(response, api: api, request: request)
                    guard error.isRetriable else { throw error }
                    if throttled { tally.throttled += 1 }
                    // Seconds only (an HTTP-date, a negative, NaN or infinite value is ignored); capped.
                    retryAfter = response.head.header("retry-after").flatMap(Double.init).flatMap { $0.isFinite && $0 >= 0 ? $0 : nil }
                    if let wait = retryAfter, wait > maxRetryAfter {
                        throw APIError(
                            api: api, status: response.status, code: error.code,
                            message:
                                "asked to wait \(Int(min(wait, 1e12))) s (Retry-After), more than \(Int(maxRetryAfter)) s: back to the delay queue",
                            url: request.displayURL, errorClass: .transient)
                    }
                    failure = error
                }
            } catch let error as CurlError {
                limiter.release(ticket, throttled: false)
                FleetMetrics.request(api: api, status: nil, seconds: (ContinuousClock.now - started).seconds)
                guard error.isRetriable else { throw error }
                failure = error
            } catch let error as BrokenStream {
                if !released {  // broken in transfer (else in finish, after the release above)
                    limiter.release(ticket, throttled: false)
                    FleetMetrics.request(api: api, status: nil, seconds: (ContinuousClock.now - started).seconds)
                }
                throw error
            } catch {
                // What a stream's consumer threw (a record that does not convert): the slot is given back all the same.
                if !released { limiter.release(ticket, throttled: false) }
                throw error
            }
            // A 429 was never processed (Twilio: "always safe to retry") and the limiter now knows the account's
            // limit: it costs an attempt only every fourth time (a saturated account still ends the job, later).
            if throttled { throttles += 1 }
            if !throttled || throttles % 4 == 0 { attempt += 1 }
            guard attempt < maxAttempts else {
                throw APIError(
                    api: api, status: nil, code: nil, message: "gave up after \(attempt) attempts; last: \(failure)",
                    url: request.displayURL, errorClass: .transient)
            }
            tally.retries += 1
            // A 429 has already lowered the account's limit: the limiter paces the retry (it waits for one of our
            // own requests to that account to finish), so only a short pause is added unless Retry-After says more.
            let delay =
                throttled
                ? max(retryAfter ?? 0, 0.02 + 0.05 * Double(throttles / 4))
                : max(retryAfter ?? 0, backoff.delay(attempt: attempt - 1))
            guard waited + delay <= maxTotalWait else {
                throw APIError(
                    api: api, status: nil, code: nil,
                    message:
                        "waited \(Int(waited)) s across \(attempt) retries and would wait \(Int(delay)) s more (at most \(Int(maxTotalWait)) s a request): back to the delay queue; last: \(failure)",
                    url: request.displayURL, errorClass: .transient)
            }
            waited += delay
            logger.debug(
                "retrying API request", metadata: ["url": "\(request.displayURL)", "error": "\(failure)", "retry.in_s": "\(delay)"])
            guard stop.sleep(delay) else {
                throw APIError(
                    api: api, status: nil, code: nil,
                    message:
                        "shutting down during a \(Int(delay)) s wait before retry \(attempt): back to the delay queue; last: \(failure)",
                    url: request.displayURL, errorClass: .transient)
            }
        }
    }

    /// The error of a non-200 answer: Twilio's `{"code", "message", "detail"}`, Singular's `{"error"}`, or the
    /// start of any other body (HTML bodies are named, not quoted).
    static func error(_ response: HTTPResponse, api: ChannelType, request: HTTPRequest) -> APIError {
        var code: Int?
        var message = String(decoding: response.body.prefix(200), as: UTF8.self)
        if response.body.first == UInt8(ascii: "{"),
            let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
        {
            code = object["code"] as? Int
            // Twilio's {"message"}, Singular 0.3's {"error"}, Singular v2.0's {"status": 1, "substatus", "value"}.
            message = (object["message"] as? String) ?? (object["error"] as? String) ?? (object["value"] as? String) ?? message
            if let substatus = object["substatus"] as? Int, object["value"] is String { message += " (substatus \(substatus))" }
            if let detail = object["detail"] as? String { message += " (\(detail))" }
        } else if response.body.first == UInt8(ascii: "<") {
            message = "non-JSON (HTML) error body"
        }
        return APIError(
            api: api, status: response.status, code: code, message: message.redacting(request.secrets).printable(),
            url: request.displayURL, errorClass: CurlError.classify(status: response.status), method: request.method.rawValue)
    }
}
