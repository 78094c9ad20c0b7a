import Foundation
import HuskimoTesting
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

@Suite(.serialized, .timeLimit(.minutes(3)))
struct S3IntegrationTests {
    static func client(strict: Bool = false, secret: String? = nil) throws -> (S3Client, String) {
        let bucket = TestServices.unique("huskimo-test")
        var endpoint = try TestServices.s3(bucket: bucket, strict: strict)
        if let secret { endpoint.secretAccessKey = Secret(secret) }
        return (S3Client(endpoint, multipartThreshold: 8 << 20, partSize: 5 << 20), bucket)
    }

    /// The planner's reference clock is S3's `Date` header, read even from a refusal (a wrong secret here).
    @Test func thePlannersReferenceClockIsS3sDateEvenWhenS3Refuses() throws {
        let s3 = try FleetConfig.parse(
            """
            channels: [{name: c, type: singular, api_key: k}]
            s3: {access_key_id: wrong, secret_access_key: wrong, region: us-east-1, bucket: nobucket, endpoint: "\(try TestServices.require("S3_STRICT_ENDPOINT"))", path_style: true}
            targets: [{name: t, host: h, database: d, username: u}]
            """, environment: [:]
        ).s3
        let reference = try #require(PlanClock.system(s3).reference())
        #expect(abs(reference.date.timeIntervalSinceNow) < 60 && reference.source.hasPrefix("S3 (http://127.0.0.1:"))
        #expect(try PlanClock.system(s3).runID(tolerance: 300) { _ in }.count == 19)
    }

    @Test func putGetListDeleteOver2500KeysPagingBothWays() async throws {
        let (s3, _) = try Self.client()
        try s3.createBucket()
        try s3.createBucket()  // twice is harmless
        let keys = (0..<2_500).map { String(format: "run/calls/acme us/2026-11-28/part-%05d.tsv.gz", $0) }
        // Put concurrently: 8 writers.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    try await Blocking.run {
                        for index in stride(from: worker, to: keys.count, by: 8) {
                            try s3.put(keys[index], Array("body \(index)".utf8))
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        try s3.put("runner/sibling.tsv.gz", [1])  // shares the bare prefix "run" but not the folder "run/"
        let listed = try s3.list(prefix: "run/")  // 1000 + 1000 + 500, followed by continuation tokens
        #expect(listed.count == 2_500)
        #expect(Set(listed.map(\.key)) == Set(keys))
        #expect(listed.first?.size == "body 0".utf8.count)
        #expect(try s3.list(prefix: "run/", pageSize: 333).count == 2_500)
        #expect(String(decoding: try s3.get(keys[1234]), as: UTF8.self) == "body 1234")

        #expect(try s3.deleteFolder("run") == 2_500)  // 3 DeleteObjects batches
        #expect(try s3.list(prefix: "run/").isEmpty)
        #expect(try s3.list(prefix: "runner/").map(\.key) == ["runner/sibling.tsv.gz"])  // 0.3's bare-prefix bug
        let missing = #expect(throws: S3Error.self) { try s3.get(keys[0]) }
        #expect(missing?.code == "NoSuchKey")
        #expect(missing?.errorClass == .permanent)
    }

    @Test func aMultipartObjectOf21MiBReadsBackByteIdentical() throws {
        let (s3, _) = try Self.client()
        try s3.createBucket()
        var bytes = [UInt8](repeating: 0, count: 21 << 20)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for i in 0..<bytes.count {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            bytes[i] = UInt8(truncatingIfNeeded: state >> 33)
        }
        try s3.put("big/object.bin", bytes)  // above the 8 MiB threshold: 5 parts
        var streamed: [UInt8] = []
        var chunks = 0
        try s3.get("big/object.bin") { chunk in
            streamed.append(contentsOf: chunk)
            chunks += 1
        }
        #expect(streamed.count == bytes.count)
        #expect(Digest.sha256Hex(streamed) == Digest.sha256Hex(bytes))
        #expect(chunks > 1)  // it arrived as a stream, not one buffer
        try s3.delete(["big/object.bin"])
    }

    @Test func strictSignatureCheckingAcceptsOurRequestsAndRejectsAWrongSecret() throws {
        let (s3, _) = try Self.client(strict: true)
        try s3.createBucket()
        try s3.put("strict/a.txt", Array("signed".utf8))
        try s3.put("strict/b.txt", Array("also signed".utf8))
        #expect(try s3.get("strict/a.txt") == Array("signed".utf8))
        // No "/" in this prefix: moto decodes %2F before it re-signs, a moto-only mismatch (docs/operations.md, "Known limits").
        #expect(Set(try s3.list(prefix: "strict").map(\.key)) == ["strict/a.txt", "strict/b.txt"])
        #expect(try s3.delete(["strict/a.txt", "strict/b.txt"]) == 2)
        var bigger = [UInt8](repeating: 7, count: 9 << 20)  // multipart: ?uploads=, partNumber&uploadId, uploadId
        bigger[12345] = 1
        try s3.put("strict/multi.bin", bigger)
        #expect(try s3.get("strict/multi.bin") == bigger)

        let (wrong, _) = try Self.client(strict: true, secret: "not-the-secret")
        let bad = S3Client(
            S3Endpoint(
                endpoint: wrong.config.endpoint, region: wrong.config.region, bucket: s3.config.bucket,
                accessKeyID: wrong.config.accessKeyID, secretAccessKey: Secret("not-the-secret"),
                pathStyle: true))
        let error = #expect(throws: S3Error.self) { try bad.get("strict/multi.bin") }
        #expect(error?.status == 403)
        #expect(error?.code == "SignatureDoesNotMatch")
        #expect(!(error?.description.contains("not-the-secret") ?? true))
    }

    @Test func anUnreachableEndpointIsATransientError() throws {
        let s3 = S3Client(
            S3Endpoint(
                endpoint: "http://127.0.0.1:1", region: "us-east-1", bucket: "b", accessKeyID: "k",
                secretAccessKey: Secret("s"), pathStyle: true))
        let error = #expect(throws: CurlError.self) { try s3.get("x") }
        #expect(error?.errorClass == .transient)
        #expect(error?.code == .transport)
    }

    /// Staged objects go once every target has loaded them: with two targets, after the first only its markers are
    /// added; after the second, objects and markers are gone. With one target, no marker is ever written.
    @Test func theJanitorDeletesABatchsObjectsOnceEveryTargetLoadedThem() throws {
        let (s3, _) = try Self.client()
        try s3.createBucket()
        let layout = StagingLayout(folder: "stage")
        // The channel tells the two runs apart: stage/twilio_calls/<tag>/<day>/<extraction>-0000.tsv.gz.
        func loads(_ tag: String) throws -> [LoadMessage] {
            try (0..<3).map { n in
                let job = ExtractJob(
                    runID: ExtractJob.fixtureRunID, channel: tag, resource: .calls, day: TestDays.day(20 + n), plannedAt: "p")
                let load = LoadMessage.fixture(job: job, folder: "stage", rows: [1], extractedAt: "2026-11-30T00:00:00.000Z")
                try s3.put(load.objects[0].key, [UInt8(n)])
                return load
            }
        }
        let two = StagingJanitor(s3: s3, layout: layout, targets: ["pg", "rs"], logger: TestServices.logger)
        var batch = try loads("two")
        // A key outside the load's own extraction is never deleted, even when every target has loaded the load.
        try s3.put("stage/elsewhere.txt", [1])
        batch[0].objects.append(StagedObject(key: "stage/elsewhere.txt", rows: 0, bytes: 1, sha256: String(repeating: "0", count: 64)))
        two.markLoaded(batch, by: "rs")
        #expect(try s3.list(prefix: "stage/twilio_calls/two/").count == 3, "one of two targets has loaded them: the objects stay")
        #expect(try s3.list(prefix: "stage/_loaded/").count == 3, "one marker per load")
        two.markLoaded(batch, by: "pg")
        #expect(try s3.list(prefix: "stage/twilio_calls/two/").isEmpty)
        #expect(try s3.list(prefix: "stage/elsewhere.txt").count == 1, "not the janitor's to delete")
        _ = try s3.delete(["stage/elsewhere.txt"])
        #expect(try s3.list(prefix: "stage/_loaded/").isEmpty, "markers go with the objects")

        let one = StagingJanitor(s3: s3, layout: layout, targets: ["pg"], logger: TestServices.logger)
        one.markLoaded(try loads("one"), by: "pg")
        #expect(try s3.list(prefix: "stage/").isEmpty, "one target: deleted at once, no marker written")
    }
}
