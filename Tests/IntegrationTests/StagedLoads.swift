import Foundation
import HuskimoTesting
import SandboxKit

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

/// What the loader suites share: the sandbox over real HTTP, a bucket of their own on the local S3, and real
/// extractions staged into it, ready to load.
final class StagedLoads {
    let api = SandboxAPI()
    let server: HTTPServer
    let port: Int
    let s3: S3Client
    let s3Config: S3Config
    let limiters = AccountLimiters()

    /// - Parameter strict: stage on the S3 server that checks signatures and IAM policies.
    init(bucketPrefix: String, strict: Bool = false) throws {
        server = HTTPServer { [api] in api.handle($0) }
        port = try server.start()
        let bucket = TestServices.unique(bucketPrefix)
        s3 = S3Client(try TestServices.s3(bucket: bucket, strict: strict))
        try s3.createBucket()
        let env = TestServices.env, p = strict ? "S3_STRICT_" : "S3_"
        s3Config = try FleetConfig.parse(
            """
            channels: [{name: c, type: singular, api_key: k}]
            s3: {access_key_id: "\(env["\(p)ACCESS_KEY_ID"] ?? "")", secret_access_key: "\(env["\(p)SECRET_ACCESS_KEY"] ?? "")", region: us-east-1, bucket: \(bucket), endpoint: "\(env["\(p)ENDPOINT"] ?? "")", path_style: true}
            targets: [{name: t, host: h, database: d, username: u}]
            """, environment: [:]
        ).s3
    }

    deinit { server.stop() }

    /// A real extraction of (account, resource, day) from the sandbox, staged, as the worker's load message.
    func extract(
        _ account: SandboxAccount, _ resource: Resource, _ day: Day?, channel: String = "acme", at: Date = Date(),
        runID: String = "r"
    ) throws -> LoadMessage {
        let yaml = """
            channels: [{name: "\(channel)", type: twilio, api_user: \(account.sid), api_key: \(account.token), api_url: "http://127.0.0.1:\(port)", pricing_url: "http://127.0.0.1:\(port)"}]
            s3: {access_key_id: k, secret_access_key: s, region: us-east-1, bucket: b}
            targets: [{name: t, host: h, database: d, username: u}]
            """
        let config = try FleetConfig.parse(yaml, environment: [:]).channels[0]
        let client = APIClient(http: HTTPClient(), limiters: limiters, logger: TestServices.logger)
        let extractor = TwilioExtractor(channel: config, client: client, s3: s3, folder: "stage")
        return try extractor.extract(ExtractJob(runID: runID, channel: channel, resource: resource, day: day, plannedAt: ""), now: at).load
    }

    /// The production loader of `target`, its DDL applied.
    func loader(_ target: TargetConfig) throws -> WarehouseLoader {
        let loader = WarehouseLoader(target: target, s3: s3, s3Config: s3Config, logger: TestServices.logger)
        try loader.applyDDL()
        return loader
    }
}
