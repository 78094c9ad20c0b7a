import Foundation
import HuskimoTesting
import SandboxKit
import Synchronization
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

/// An API that answers with hostile links, loops, floods and waits: the extractor refuses each with a named,
/// classified error, sends no credential anywhere but the configured origin, and never sleeps on the API's word.
@Suite(.serialized, .ownThreads, .timeLimit(.minutes(2)))
final class HostileAPITests {
    /// What the stub answers for a list request: the JSON body (or a 429 with Retry-After).
    enum Answer: Sendable {
        case page(next: String?)
        case throttle(retryAfter: String)
        case huge(bytes: Int)
        /// A page of `records` calls, its body cut in half for the first `cut` requests.
        case records(Int, cut: Int)
        /// The subaccount list answers these SIDs (repeated, or not SIDs at all); every call list is empty.
        case accounts([String])
    }

    final class Stub: Sendable {
        let answer = Mutex<Answer>(.page(next: nil))
        let requests = Mutex<[String]>([])
    }

    let stub = Stub()
    let server: HTTPServer
    let port: Int
    let s3: S3Client

    init() throws {
        let stub = self.stub
        server = HTTPServer { request in
            stub.requests.withLock { $0.append(request.path + (request.rawQuery.isEmpty ? "" : "?" + request.rawQuery)) }
            switch stub.answer.withLock({ $0 }) {
            case .accounts(let sids) where request.path.hasSuffix("/Accounts.json"):
                let list = sids.map { #"{"sid": "\#($0)", "status": "active"}"# }.joined(separator: ", ")
                return .json(200, Array("{\"accounts\": [\(list)], \"next_page_uri\": null}".utf8))
            case .accounts:
                return .json(200, Array("{\"calls\": [], \"next_page_uri\": null}".utf8))
            case .page(let next):
                let link = next.map { "\"\($0)\"" } ?? "null"
                return .json(200, Array("{\"calls\": [], \"next_page_uri\": \(link), \"page\": 0}".utf8))
            case .throttle(let value):
                return .json(429, Array("{\"code\": 20429, \"message\": \"Too Many Requests\"}".utf8), headers: [("Retry-After", value)])
            case .huge(let bytes):
                return .json(200, Array("{\"calls\": [".utf8) + [UInt8](repeating: 0x20, count: bytes) + Array("]}".utf8))
            case .records(let count, let cut):
                let padding = String(repeating: "p", count: 1000)
                let start = SandboxData.rfc2822(TestDays.day(20).ordinal * 86_400 + 1)
                let calls = (0..<count).map {
                    #"{"sid": "CA\#($0)", "account_sid": "AC1", "start_time": "\#(start)", "uri": "\#(padding)"}"#
                }
                let body = Array(("{\"calls\": [" + calls.joined(separator: ", ") + "], \"next_page_uri\": null}").utf8)
                let served = stub.requests.withLock { $0.count }
                return served <= cut
                    ? .truncate(status: 200, headers: [("Content-Type", "application/json")], body: body) : .json(200, body)
            }
        }
        port = try server.start()
        s3 = S3Client(try TestServices.s3(bucket: TestServices.unique("huskimo-hostile")))
        try s3.createBucket()
    }

    deinit { server.stop() }

    func extract(
        maxBodyBytes: Int = 256 << 20, subaccounts: Bool = false, maxTotalWait: Double = 600, stop: StopLatch = StopLatch()
    ) throws -> ExtractReport {
        let channel = ChannelConfig(
            name: "hostile", type: .twilio, apiUser: "AC1", apiKey: Secret("token-xyz"),
            apiURL: "http://127.0.0.1:\(port)", subaccounts: subaccounts)
        var client = APIClient(
            http: HTTPClient(), limiters: AccountLimiters(), maxAttempts: 3, backoff: Backoff(base: 0.01, max: 0.05),
            logger: TestServices.logger)
        client.maxBodyBytes = maxBodyBytes
        client.maxTotalWait = maxTotalWait
        client.stop = stop
        var extractor = TwilioExtractor(channel: channel, client: client, s3: s3, folder: "hostile")
        extractor.maxPages = 50
        return try extractor.extract(ExtractJob(runID: "r", channel: "hostile", resource: .calls, day: TestDays.day(20), plannedAt: "p"))
    }

    func failure(_ body: () throws -> ExtractReport) -> JobError? {
        do {
            _ = try body()
            return nil
        } catch {
            return error as? JobError
        }
    }

    @Test(arguments: [
        "@evil.example/2010-04-01/x", ".evil.example/x", "//evil.example/x", "https://evil.example/x",
        "http://127.0.0.1:1/x", "ftp://127.0.0.1/x", "file:///etc/passwd", "relative/path", "/x y",
    ])
    func aNextPageOffTheConfiguredOriginIsRefused(_ link: String) throws {
        stub.answer.withLock { $0 = .page(next: link) }
        stub.requests.withLock { $0 = [] }
        let error = try #require(failure { try extract() })
        #expect(error.errorClass == .permanent)
        #expect(error.message.contains("PagingError"), "\(error)")
        #expect(stub.requests.withLock { $0.count } == 1, "nothing followed the link")
    }

    @Test func aSameOriginAbsoluteLinkIsFollowed() throws {
        stub.answer.withLock { $0 = .page(next: "http://127.0.0.1:\(port)/2010-04-01/Accounts/AC1/Calls.json?Page=1&PageToken=PA1") }
        stub.requests.withLock { $0 = [] }
        // It points at itself after the first hop: followed once, then refused as a loop.
        let error = try #require(failure { try extract() })
        #expect(error.message.contains("page loop"), "\(error)")
        #expect(stub.requests.withLock { $0.count } == 2)
    }

    @Test func aPageLoopEndsTheJobWithANamedError() throws {
        stub.answer.withLock { $0 = .page(next: "/2010-04-01/Accounts/AC1/Calls.json?PageSize=1000&Page=1") }
        stub.requests.withLock { $0 = [] }
        let error = try #require(failure { try extract() })
        #expect(error.errorClass == .permanent && error.message.contains("page loop"), "\(error)")
        #expect(stub.requests.withLock { $0.count } == 2)
    }

    @Test func aHugeRetryAfterGoesBackToTheQueueInsteadOfSleeping() throws {
        stub.answer.withLock { $0 = .throttle(retryAfter: "999999999") }
        let started = ContinuousClock.now
        let error = try #require(failure { try extract() })
        #expect(error.errorClass == .transient && error.message.contains("Retry-After"), "\(error)")
        #expect(ContinuousClock.now - started < .seconds(60), "it did not wait for the API's word")
        for odd in ["-5", "nan", "inf", "Wed, 21 Oct 2015 07:28:00 GMT"] {
            stub.answer.withLock { $0 = .throttle(retryAfter: odd) }
            let error = try #require(failure { try extract() })
            #expect(error.errorClass == .transient && error.message.contains("gave up after 3 attempts"), "\(odd): \(error)")
        }
    }

    @Test func aBodyOverTheLimitIsRefusedWithoutHoldingIt() throws {
        stub.answer.withLock { $0 = .huge(bytes: 3 << 20) }
        let error = try #require(failure { try extract(maxBodyBytes: 1 << 20) })
        #expect(error.errorClass == .permanent && error.message.contains("larger than 1048576 bytes"), "\(error)")
        #expect(try extract(maxBodyBytes: 8 << 20).records == 0, "the same body under a higher limit converts")
    }

    /// A page that breaks off after some of its records were converted is read again in place: the records already
    /// converted are dropped with it, so the job stages each record once, after one extra request per break.
    @Test func aPageCutShortMidStreamIsReadAgainInPlaceWithoutDuplicates() throws {
        stub.answer.withLock { $0 = .records(600, cut: 2) }  // 600 KB: batches are converted before the cut
        stub.requests.withLock { $0 = [] }
        let report = try extract()
        #expect(report.records == 600)
        #expect(report.load.objects.reduce(0) { $0 + $1.rows } == 600, "each record staged once")
        #expect(stub.requests.withLock { $0.count } == 3, "two cut pages, then the whole one")
    }

    /// Subaccount SIDs come from the API: each is extracted once however often the list names it, and a value that is
    /// not an Account SID (it would go into a URL path and every row) fails the job, named, before any request with it.
    @Test func subaccountsAreValidatedAndEachExtractedOnce() throws {
        let sub = "AC" + String(repeating: "0", count: 31) + "2"
        stub.answer.withLock { $0 = .accounts([sub, sub, "AC1"]) }
        let report = try extract(subaccounts: true)
        #expect(report.accounts == ["AC1", sub], "the parent first, each account once")
        let listed = stub.requests.withLock { $0.filter { $0.contains("/Calls.json") } }
        #expect(listed.count == 2, "\(listed)")
        stub.requests.withLock { $0 = [] }
        stub.answer.withLock { $0 = .accounts(["AC1/../../Accounts/ACother", sub]) }
        let error = failure { try extract(subaccounts: true) }
        #expect(
            error?.errorClass == .permanent && error?.message.contains("not AC and 32 hex digits") == true, "\(String(describing: error))")
        #expect(stub.requests.withLock { $0.allSatisfy { !$0.contains("/Calls.json") } }, "no request made with it")
    }

    /// Each Retry-After is capped, and so is their sum: an API that answers 429 with a long Retry-After every time
    /// holds a request (and its slot) no longer than the total budget, then the job goes back to the delay queues.
    @Test func retryAfterWaitsAddUpToABoundedTotal() throws {
        stub.answer.withLock { $0 = .throttle(retryAfter: "2") }
        let started = ContinuousClock.now
        let error = try #require(failure { try extract(maxTotalWait: 3) })
        #expect(error.errorClass == .transient && error.message.contains("at most 3 s a request"), "\(error)")
        #expect(ContinuousClock.now - started < .seconds(6), "it stopped at the budget, not after every attempt")
    }

    /// A shutdown ends a job's wait for Retry-After (60 s here) at once: the attempt ends transient, nothing retried.
    @Test func shutdownEndsARetryAfterWait() throws {
        stub.answer.withLock { $0 = .throttle(retryAfter: "60") }
        stub.requests.withLock { $0 = [] }
        let stop = StopLatch()
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.5) { stop.stop() }
        let error = try #require(failure { try extract(stop: stop) })
        #expect(error.errorClass == .transient && error.message.contains("shutting down during a 60 s wait"), "\(error)")
        #expect(stub.requests.withLock { $0.count } == 1, "the retry was never sent")
    }
}
