import Foundation
import HuskimoTesting
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

@Suite struct SupportTests {
    @Test func sha256MatchesKnownVectors() {
        #expect(Digest.sha256Hex(Array("".utf8)) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Digest.sha256Hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let md5 = Digest(.md5)
        md5.update(Array("abc".utf8))
        #expect(md5.finalize().base64String == "kAFQmDzST7DWlj99KOF/cg==")
    }

    @Test func base64PadsLikeRFC4648() {
        #expect(Array("f".utf8).base64String == "Zg==")
        #expect(Array("fo".utf8).base64String == "Zm8=")
        #expect(Array("foo".utf8).base64String == "Zm9v")
        #expect(Array("foobar".utf8).base64String == "Zm9vYmFy")
    }

    @Test func gzipRoundTripsAndDetectsTruncation() throws {
        var input: [UInt8] = []
        for i in 0..<300_000 { input.append(UInt8(truncatingIfNeeded: i &* 31 &+ i >> 7)) }
        let compressed = try GzipWriter.compress(input)
        #expect(compressed.prefix(2) == [0x1f, 0x8b])
        #expect(try GzipReader.decompress(compressed) == input)
        // Two members back to back read as their concatenation (as gzip -c a b writes).
        let two = try GzipWriter.compress(Array("ab".utf8)) + (try GzipWriter.compress(Array("cd".utf8)))
        #expect(try GzipReader.decompress(two) == Array("abcd".utf8))
        #expect(throws: GzipError.self) { try GzipReader.decompress(Array(compressed.prefix(compressed.count / 2))) }
    }

    /// Levels 1–3 are ISA-L's, 4–9 zlib's: either way one standard gzip member, whatever the chunking, that zlib
    /// reads back and whose trailer covers the whole input.
    @Test(arguments: [Int32(1), 3, 6])
    func gzipAtEveryBackendIsOneStandardMember(level: Int32) throws {
        var input: [UInt8] = []
        var seed: UInt64 = 42
        let words = ["completed", "inbound", "+14155551212", "2026-11-20 00:00:01", "\\N", "CA", "-0.03000", "USD", "😀"].map {
            Array($0.utf8)
        }
        while input.count < 1_500_000 {
            // TSV-like: words from a small vocabulary, a random number, tabs and newlines.
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            input += words[Int(seed >> 60) % words.count]
            input += Array(String(seed >> 44).utf8)
            input.append(seed >> 40 & 7 == 0 ? 0x0A : 0x09)
        }
        var compressed: [UInt8] = []
        let writer = try GzipWriter(level: level) { compressed.append(contentsOf: $0) }
        var offset = 0, step = 1
        while offset < input.count {
            let end = min(input.count, offset + step)
            try input[offset..<end].withUnsafeBytes { try writer.write($0) }
            offset = end
            step = step * 3 % 700_001 + 1
        }
        try writer.finish()
        #expect(writer.bytesIn == input.count && writer.bytesOut == compressed.count)
        #expect(compressed.prefix(3) == [0x1f, 0x8b, 0x08])
        #expect(compressed.count < input.count / 2, "it compresses: \(compressed.count) of \(input.count)")
        let isize = compressed.suffix(4).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(isize == input.count % (1 << 32), "one member: its trailer counts every byte")
        #expect(try GzipReader.decompress(compressed) == input)
    }

    @Test func daysConvertBothWays() {
        #expect(Day("2024-02-29")?.description == "2024-02-29")
        #expect(Day("2023-02-29") == nil)
        #expect(Day("2026-13-01") == nil)
        #expect(Day("0000-01-01") == nil, "no year 0: a DATE column and YYYY hold 0001-9999")
        #expect(Day("+026-11-01") == nil && Day("2026-+1-01") == nil && Day("2026-11--1") == nil, "digits only")
        #expect(Day("1970-01-01")?.ordinal == 0)
        #expect(Day("2026-11-28")!.adding(days: 3).description == "2026-12-01")
        #expect(Day(date: Date(timeIntervalSince1970: 86_400 * 2 - 1)).description == "1970-01-02")
        for ordinal in stride(from: Day("0001-01-01")!.ordinal, through: Day("9999-12-31")!.ordinal, by: 997) {
            let day = Day(ordinal: ordinal)
            #expect(Day(day.description)?.ordinal == ordinal)
        }
    }

    @Test func backoffGrowsWithJitterAndCaps() {
        let backoff = Backoff(base: 1, max: 60)
        for attempt in 0..<10 {
            let ceiling = backoff.ceiling(attempt: attempt)
            #expect(ceiling == min(60, Double(1 << attempt)))
            for _ in 0..<50 {
                let delay = backoff.delay(attempt: attempt)
                #expect(delay >= ceiling / 2 && delay <= ceiling)
            }
        }
    }

    @Test func secretsRedactEverywhere() {
        let secret = Secret("hunter2-secret")
        var dumped = ""
        dump(secret, to: &dumped)
        for text in ["\(secret)", String(reflecting: secret), dumped] { #expect(!text.contains("hunter2")) }
        #expect("login hunter2-secret failed".redacting([secret]) == "login <redacted> failed")
    }

    @Test func amqpURLsParseLikeRabbitMQ() throws {
        let url = try AMQPURL("amqp://us%40er:p%3Ass@broker.example:5673/%2fprod?heartbeat=10")
        #expect(url.user == "us@er")
        #expect(url.password.reveal() == "p:ss")
        #expect(url.host == "broker.example")
        #expect(url.port == 5673)
        #expect(url.vhost == "/prod")
        #expect(url.heartbeatSeconds == 10)
        #expect(!url.description.contains("p:ss"))
        let tls = try AMQPURL("amqps://h")
        #expect(tls.tls && tls.port == 5671 && tls.vhost == "/" && tls.user == "guest")
        #expect(try AMQPURL("amqp://h/%2f").vhost == "/")
        #expect(throws: AMQPError.self) { try AMQPURL("http://h") }
        #expect(throws: AMQPError.self) { try AMQPURL("amqp://h:99999") }
    }

    @Test func errorClassesFollowTheRules() {
        #expect(CurlError.classify(status: 429) == .transient)
        #expect(CurlError.classify(status: 503) == .transient)
        #expect(CurlError.classify(status: 401) == .permanent)
        #expect(CurlError.classify(status: 404) == .permanent)
        #expect(PQError.classify("08006") == .transient)
        #expect(PQError.classify("40001") == .transient)
        #expect(PQError.classify("42P01") == .permanent)
        #expect(PQError.classify("23505") == .permanent)
        #expect(PQError.classify(nil) == .transient)
    }
}

@Suite struct S3CanonicalisationTests {
    let virtual = S3Client(S3Endpoint(region: "eu-west-1", bucket: "bkt", accessKeyID: "AK", secretAccessKey: Secret("s")))
    let path = S3Client(
        S3Endpoint(
            endpoint: "http://127.0.0.1:9000/", region: "us-east-1", bucket: "bkt",
            accessKeyID: "AK", secretAccessKey: Secret("s"), pathStyle: true))

    @Test func queryParametersAreSortedEncodedAndValued() {
        let url = path.url(key: nil, query: [("prefix", "dir/sub dir/"), ("list-type", "2"), ("continuation-token", "a+b=c")])
        #expect(url == "http://127.0.0.1:9000/bkt?continuation-token=a%2Bb%3Dc&list-type=2&prefix=dir%2Fsub%20dir%2F")
        #expect(path.url(key: "k", query: [("uploads", "")]) == "http://127.0.0.1:9000/bkt/k?uploads=")
    }

    @Test func keysAreEncodedOncePerSegment() {
        #expect(path.url(key: "a b/c+d/é~_.-") == "http://127.0.0.1:9000/bkt/a%20b/c%2Bd/%C3%A9~_.-")
        #expect(virtual.url(key: "x/y.gz") == "https://bkt.s3.eu-west-1.amazonaws.com/x/y.gz")
    }

    @Test func requestsCarryThePayloadHashAndSigV4() throws {
        let request = path.request(.PUT, key: "k", body: Array("abc".utf8))
        #expect(
            request.headers.contains { $0 == ("x-amz-content-sha256", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") })
        #expect(request.headers.contains { $0.0 == "Content-Type" })
        #expect(request.awsSigV4?.provider == "aws:amz:us-east-1:s3")
        #expect(path.request(.GET, key: "k").headers.contains { $0 == ("x-amz-content-sha256", "UNSIGNED-PAYLOAD") })
    }

    @Test func xmlEntitiesDecode() {
        #expect(XMLText.all("Key", in: "<a><Key>a&amp;b</Key><Key>&lt;&#233;&#x41;</Key></a>") == ["a&b", "<éA"])
        #expect(XMLText.escape("a<&>\"'") == "a&lt;&amp;&gt;&quot;&apos;")
    }

    @Test func displayURLsDropQueryAndUserinfo() {
        #expect(HTTPRequest.stripQuery("https://u:p@h.example/a/b?token=x") == "https://h.example/a/b")
    }
}

@Suite struct AdaptiveLimiterTests {
    @Test func a429SetsTheLimitToWhatTheAccountServedAndSuccessesAtTheLimitProbeOneMore() {
        let limiter = AdaptiveLimiter(initial: 8, maximum: 10, growAfter: 3)
        let tickets = (0..<4).map { _ in limiter.acquire() }  // 1, 2, 3, 4 in flight
        #expect(tickets.map(\.inFlight) == [1, 2, 3, 4])
        // The account served two at once and refused the third and the fourth: the limit is 2, not 8 / 2 / 2.
        limiter.release(tickets[3], throttled: true)
        limiter.release(tickets[2], throttled: true)
        #expect(limiter.currentLimit == 2)
        limiter.release(tickets[0], throttled: false)
        limiter.release(tickets[1], throttled: false)
        // A late 429 of a request that started with fewer in flight lowers it further; a 429 never raises it.
        let alone = limiter.acquire()
        limiter.release(alone, throttled: true)
        #expect(limiter.currentLimit == 1)
        // Successes below the limit prove nothing; at the limit, every third probes one more.
        for _ in 0..<3 { limiter.release(limiter.acquire(), throttled: false) }
        #expect(limiter.currentLimit == 2)
        let a = limiter.acquire(), b = limiter.acquire()
        #expect(!limiter.hasCapacity)
        limiter.release(a, throttled: false)  // a ran alone-ish: it started with 1 in flight, below the limit 2
        limiter.release(b, throttled: false)  // b at the limit
        #expect(limiter.currentLimit == 2)
        #expect(limiter.hasCapacity)
    }

    /// Rows of COPY text are its unescaped newlines, however the stream is cut: `\` + newline is a value's newline,
    /// `\\` + newline a backslash ending a value, then the row's end.
    @Test func theRowCounterCountsOnlyUnescapedNewlinesInAnyChunking() {
        let text = Array(("a\tb\n" + "multi\\\nline\n" + "ends in a backslash\\\\\n" + "\\\\\\\nodd\n" + "\n").utf8)
        for size in [1, 2, 3, 7, text.count] {
            let counter = RowCounter()
            for start in stride(from: 0, to: text.count, by: size) {
                text[start..<min(start + size, text.count)].withUnsafeBytes { counter.count($0) }
            }
            #expect(counter.rows == 5 && counter.endsWithRow, "chunks of \(size): \(counter.rows)")
        }
        let partial = RowCounter()
        Array("a\nb\\\n".utf8).withUnsafeBytes { partial.count($0) }  // the last newline is a value's
        #expect(partial.rows == 1 && !partial.endsWithRow)
        let cut = RowCounter()
        Array("a\nb".utf8).withUnsafeBytes { cut.count($0) }
        #expect(cut.rows == 1 && !cut.endsWithRow)
        #expect(RowCounter().endsWithRow, "nothing is whole rows")
    }
}
