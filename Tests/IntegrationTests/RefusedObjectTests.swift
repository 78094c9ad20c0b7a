import Foundation
import HuskimoTesting
import SandboxKit
import Synchronization
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

/// A staged object S3 refuses (a bucket policy, an ACL, a KMS key) on the S3 server that enforces IAM policies: the
/// loader's own credentials are denied one object; that load is parked, named, and the rest of the batch loads.
/// Wrong credentials (every object refused) pause the target instead, parking nothing.
@Suite(.serialized, .timeLimit(.minutes(3)))
final class RefusedObjectTests {
    let staged: StagedLoads
    let schema = "refused_\(UInt32.random(in: 0...UInt32.max))"
    static let day = TestDays.day(21)
    static var run: String { UTCTime.compact(Date(timeIntervalSinceNow: -60)) }

    init() throws { staged = try StagedLoads(bucketPrefix: "huskimo-refused", strict: true) }

    deinit {
        if let pg = try? PostgresConnection(try TestServices.postgres()) { try? pg.execute("DROP SCHEMA \(schema) CASCADE") }
    }

    /// An IAM user that may do anything but read `denied` (an ARN pattern under this suite's bucket).
    func restrictedUser(denying denied: String) throws -> (key: String, secret: String) {
        let env = TestServices.env
        let script = """
            import boto3, json, sys, random
            ep, k, s, arn = sys.argv[1:5]
            iam = boto3.client('iam', endpoint_url=ep, aws_access_key_id=k, aws_secret_access_key=s, region_name='us-east-1')
            name = 'loader-%d' % random.randrange(1 << 30)
            iam.create_user(UserName=name)
            policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"},
                      {"Effect": "Deny", "Action": "s3:GetObject", "Resource": arn}]}
            iam.put_user_policy(UserName=name, PolicyName='deny-one', PolicyDocument=json.dumps(policy))
            key = iam.create_access_key(UserName=name)['AccessKey']
            print(key['AccessKeyId']); print(key['SecretAccessKey'])
            """
        let out = try TestServices.python(
            script,
            [
                try TestServices.require("S3_STRICT_ENDPOINT"), try TestServices.require("S3_STRICT_ACCESS_KEY_ID"),
                env["S3_STRICT_SECRET_ACCESS_KEY"] ?? "", "arn:aws:s3:::\(staged.s3Config.bucket)/\(denied)",
            ]
        ).split(separator: "\n").map(String.init)
        try #require(out.count == 2, "boto3 printed: \(out)")
        return (out[0], out[1])
    }

    func config() throws -> FleetConfig {
        let pg = try TestServices.postgres()
        return try FleetConfig.parse(
            """
            channels: [{name: acme, type: twilio, api_user: AC1, api_key: k}]
            s3: {access_key_id: k, secret_access_key: s, region: us-east-1, bucket: \(staged.s3Config.bucket), folder_path: stage}
            targets:
              - {name: local, type: postgres, host: \(pg.host), port: \(pg.port), database: \(pg.database), username: \(pg.user), password: "\(pg.password.reveal())", schema: \(schema), sslmode: disable}
            """, environment: [:])
    }

    /// The production loader, counting the batches it is asked to load.
    final class Counting: BatchLoader {
        let inner: WarehouseLoader
        let tries = Mutex(0)
        init(_ inner: WarehouseLoader) { self.inner = inner }
        func load(_ batch: [LoadMessage]) async throws -> BatchOutcome {
            tries.withLock { $0 += 1 }
            return try await inner.load(batch)
        }
        func seedFreshness() async { await inner.seedFreshness() }
        func probe(_ keys: [String]) async -> [String: Int?] { await inner.probe(keys) }
    }

    /// Loads `loads` through a real loader (PostgreSQL, the strict S3 with `credentials`) until idle, or until
    /// `tries` batches were tried.
    func runLoader(
        _ loads: [LoadMessage], credentials: (key: String, secret: String), tries: Int? = nil
    ) async throws -> (InMemoryQueueDriver, LoadWorker) {
        let config = try config()
        var endpoint = staged.s3.config
        endpoint.accessKeyID = credentials.key
        endpoint.secretAccessKey = Secret(credentials.secret)
        let loader = Counting(
            WarehouseLoader(target: config.targets[0], s3: S3Client(endpoint), s3Config: config.s3, logger: TestServices.logger))
        try staged.loader(config.targets[0]).applyDDL()
        let driver = InMemoryQueueDriver()
        for load in loads { driver.enqueue(MessageCodec.encode(load), on: "huskimo.load.local", messageID: load.loadID) }
        let worker = LoadWorker(
            config: config, target: config.targets[0], driver: driver, loader: loader, janitor: nil,
            backoff: Backoff(base: 0.05, max: 0.1), logger: TestServices.logger)
        let run = Task { await worker.run(exitWhenIdle: 0.5) }
        if let tries {
            let deadline = Date(timeIntervalSinceNow: 60)
            while loader.tries.withLock({ $0 }) < tries, Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
            #expect(loader.tries.withLock { $0 } >= tries, "the loader kept trying the held batch")
            run.cancel()
        }
        await run.value
        return (driver, worker)
    }

    @Test func oneRefusedObjectParksItsLoadAndTheRestLoads() async throws {
        let account = SandboxAccount.defaults[0]
        let calls = try staged.extract(account, .calls, Self.day, channel: "acme", runID: Self.run)
        let messages = try staged.extract(account, .messages, Self.day, channel: "acme", runID: Self.run)
        let denied = try #require(messages.objects.first?.key)
        let user = try restrictedUser(denying: denied)
        let (driver, worker) = try await runLoader([calls, messages], credentials: user)
        let parked = driver.messages(in: "huskimo.load.local.failed").map { ParkedHeaders($0.headers) }
        #expect(parked.map(\.id) == [messages.loadID])
        #expect(parked.first?.message.contains("S3 refuses \(denied) (403) while it serves") == true, "\(parked.map(\.message))")
        // (The calls table's transaction committed in the first try, before the messages table's COPY was refused; its
        // retry finds it already loaded: the rows below, each once.)
        #expect(worker.summary.failed == 1 && driver.unackedCount == 0, "\(worker.summary) unacked \(driver.unackedCount)")
        let pg = try PostgresConnection(try TestServices.postgres())
        let loaded = Int(try pg.query("SELECT count(*) FROM \(schema).twilio_calls")[0][0] ?? "") ?? -1
        #expect(loaded == SandboxAPI.expected(account, "calls", day: Self.day).count)
        #expect(try pg.query("SELECT count(*) FROM \(schema).twilio_messages")[0][0] == "0")
    }

    @Test func everyObjectRefusedPausesTheTargetAndParksNothing() async throws {
        let account = SandboxAccount.defaults[0]
        let calls = try staged.extract(account, .calls, Self.day, channel: "acme", runID: Self.run)
        let user = try restrictedUser(denying: "*")
        // Paused: the batch is held and tried again and again, nothing parked; the loader is stopped after 3 tries.
        let (driver, worker) = try await runLoader([calls], credentials: user, tries: 3)
        #expect(driver.messages(in: "huskimo.load.local.failed").isEmpty, "wrong credentials park nothing")
        #expect(worker.summary.failed == 0 && worker.summary.succeeded == 0)
    }
}
