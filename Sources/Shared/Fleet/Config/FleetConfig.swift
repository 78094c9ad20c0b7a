import Foundation
package import HuskimoConnectors
package import HuskimoCore

/// The whole configuration file. A Huskimo 0.3 file loads unchanged; the keys added since are optional.
///
/// ## Configuration keys (top level)
/// - `queue` (``QueueConfig``), `fetch` (``FetchConfig``), `channels` (list of ``ChannelConfig``, required),
///   `s3` (``S3Config``, required), `targets` (list of ``TargetConfig``, required).
/// - Any value may be `${ENV_VAR}`: secrets stay out of the file (a secret expanded into a non-secret field is refused).
package struct FleetConfig: Sendable {
    package var queue: QueueConfig
    package var fetch: FetchConfig
    package var channels: [ChannelConfig]
    package var s3: S3Config
    package var targets: [TargetConfig]
    /// Notes about keys that are accepted but no longer mean anything.
    var warnings: [String]

    /// Loads and validates a file. - Throws: ``ConfigError`` listing every problem.
    package static func load(
        path: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws
        -> FleetConfig
    {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(file: path, problems: [.init(path: "", message: "cannot read the file (does it exist?)")])
        }
        do {
            return try parse(String(decoding: data, as: UTF8.self), environment: environment)
        } catch var error as ConfigError {
            error.file = path
            throw error
        }
    }

    /// Parses and validates YAML text. - Throws: ``ConfigError`` listing every problem.
    package static func parse(
        _ text: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws
        -> FleetConfig
    {
        let reader = ConfigReader(environment: environment)
        let root = try ConfigReader.parse(text)
        let top = reader.mapping(root, at: "", known: ["queue", "fetch", "channels", "s3", "targets"]) ?? [:]
        if case .null = root { reader.problem("", "the file is empty") }
        let queue = QueueConfig(reader, top["queue"], at: "queue")
        let fetch = FetchConfig(reader, top["fetch"], at: "fetch")
        let channels = reader.requiredList(top["channels"], at: "channels", noun: "channel") { ChannelConfig(reader, $0, at: $1) }
        // Names are unique per type: job ids and tables are per type, so a Singular and a Twilio channel may
        // share a name (the 0.3 sample config names both "ADD HERE").
        reader.requireUnique(channels.map { ("\($0.type)/\($0.name)", "\($0.type) channel name \"\($0.name)\"") }, at: "channels")
        let s3 = top["s3"] == nil ? nil : S3Config(reader, top["s3"], at: "s3")
        if top["s3"] == nil { reader.problem("s3", "required") }
        let targets = reader.requiredList(top["targets"], at: "targets", noun: "target") { TargetConfig(reader, $0, at: $1) }
        reader.requireUnique(targets.map { ($0.name, "target name \"\($0.name)\"") }, at: "targets")
        reader.refuseSecretsOutsideSecretFields(Self.secrets(queue: queue, channels: channels, s3: s3, targets: targets))
        guard reader.problems.isEmpty, let s3 else { throw ConfigError(problems: reader.problems) }
        return FleetConfig(
            queue: queue, fetch: fetch, channels: channels, s3: s3, targets: targets,
            warnings: reader.warnings)
    }

    /// The channel spelled byte for byte `name` (Swift's `==` would also match another Unicode normalisation of it,
    /// which SQL, S3 and the queues see as a different name; a name with a NUL never matches, as names cannot hold one).
    package func channel(named name: String, type: ChannelType) -> ChannelConfig? {
        channels.first { $0.name.utf8.elementsEqual(name.utf8) && $0.type == type }
    }
    package func target(named name: String) -> TargetConfig? { targets.first { $0.name.utf8.elementsEqual(name.utf8) } }

    /// Every secret in the configuration, for scrubbing text that might echo one.
    package var secrets: [Secret] { Self.secrets(queue: queue, channels: channels, s3: s3, targets: targets) }

    /// The one list of secret values (scrubbing, and refusing a secret expanded into a non-secret field).
    private static func secrets(queue: QueueConfig, channels: [ChannelConfig], s3: S3Config?, targets: [TargetConfig]) -> [Secret] {
        var all = queue.nodes.map(\.password) + (s3.map { [$0.secretAccessKey] } ?? [])
        all += channels.flatMap {
            [$0.apiKey] + ($0.apiKeySecret.map { [$0] } ?? []) + $0.secretOptions.values.sorted { $0.reveal() < $1.reveal() }
        }
        all += targets.map(\.password)
        return all.filter { !$0.isEmpty }
    }

    /// The effective configuration as YAML with every secret shown as `<redacted>`.
    package var redactedDescription: String {
        var lines = ["queue:"]
        lines += queue.nodes.count == 1 ? ["  url: \(queue.url)"] : ["  url:"] + queue.nodes.map { "    - \($0)" }
        lines.append("  prefix: \(queue.prefix)")
        if !queue.managementURLs.isEmpty {
            lines +=
                queue.managementURLs.count == 1
                ? ["  management_url: \(queue.managementURLs[0])"] : ["  management_url:"] + queue.managementURLs.map { "    - \($0)" }
        }
        lines += [
            "fetch:",
            "  lookback: \(fetch.lookback)",
        ]
        if let start = fetch.startDate { lines.append("  start_date: \(start)") }
        lines.append("  settle_days: \(fetch.settleDays)")
        lines.append("channels:")
        for c in channels {
            lines += [
                "  - name: \(c.name)", "    type: \(c.type.rawValue)", "    api_user: \(c.apiUser ?? "")",
                "    api_key: \(c.apiKey)", "    api_url: \(c.apiURL)",
            ]
            lines += ConnectorRegistry.connector(of: c).settings(c).map { "    \($0.key): \($0.value)" }
        }
        lines += [
            "s3:", "  access_key_id: \(s3.accessKeyID)", "  secret_access_key: \(s3.secretAccessKey)",
            "  region: \(s3.region)", "  bucket: \(s3.bucket)", "  folder_path: \(s3.folderPath)",
            "  endpoint: \(s3.endpoint)", "  path_style: \(s3.pathStyle)", "  keep_staged: \(s3.keepStaged)",
            "targets:",
        ]
        for t in targets {
            lines += [
                "  - name: \(t.name)", "    type: \(t.type.rawValue)", "    host: \(t.host)",
                "    port: \(t.port)", "    database: \(t.database)", "    username: \(t.username)",
                "    password: \(t.password)", "    schema: \(t.schema)", "    sslmode: \(t.sslMode.rawValue)",
            ]
            if let role = t.iamRole { lines.append("    iam_role: \(role)") }
        }
        return lines.joined(separator: "\n")
    }
}

/// ## Configuration keys (section `queue`)
/// - `url` (string, secret password, default `amqp://guest:guest@127.0.0.1:5672/%2f`): the RabbitMQ broker; or a list
///   of one cluster's node URLs, each with its credentials and the same vhost (every process connects to one, and to
///   the next live one when it is lost).
/// - `prefix` (string, default `huskimo`): exchange and queue name prefix.
/// - `type` (`quorum` | `classic`, default `quorum`): the work and load queues' type. Quorum queues are
///   replicated and count deliveries; use `classic` on a single-node RabbitMQ 3.8–3.10, whose quorum queues
///   can stay leaderless after an unclean restart (rabbitmq-server#10070).
/// - `retry_delays` (list of seconds, default `[10, 60, 600, 3600]`): the delayed-retry ladder.
/// - `max_attempts` (int, default 8): attempts before a transiently failing job is parked as failed.
/// - `management_url` (string or list, optional, e.g. `http://rabbit:15672`): the RabbitMQ management API (a list:
///   one per node, the first that answers is used), with the credentials of `url`. Where given, `status` and the loaders' metrics add unacked counts, message rates and
///   the oldest waiting message's age (classic queues); AMQP alone gives ready counts and consumers.
package struct QueueConfig: Sendable {
    /// The cluster's nodes (one for a single broker).
    package var nodes: [AMQPURL]
    /// The first node: its vhost and credentials name the fleet's and the management API's.
    package var url: AMQPURL { nodes[0] }
    var managementURLs: [String]
    var managementURL: String? { managementURLs.first }
    package var prefix: String
    package var quorum: Bool
    package var retryDelays: [Int]
    package var maxAttempts: Int

    init(_ r: ConfigReader, _ value: ConfigReader.Value?, at path: String) {
        let m =
            r.mapping(value, at: path, known: ["url", "prefix", "type", "retry_delays", "max_attempts", "management_url", "allow_http"])
            ?? [:]
        let allowHTTP = r.bool(m["allow_http"], at: "\(path).allow_http") ?? false
        managementURLs = QueueConfig.list(r, m["management_url"], at: "\(path).management_url", secret: false).compactMap {
            text, at in
            guard !text.isEmpty else { return nil }
            if !(text.hasPrefix("http://") || text.hasPrefix("https://")) {
                r.problem(at, "expected an http:// or https:// URL")
            } else if let scheme = text.range(of: "://"), text[scheme.upperBound...].prefix(while: { $0 != "/" }).contains("@") {
                r.problem(at, "must not carry credentials (those of queue.url are used)")
            }
            if text.hasPrefix("http://"), !ChannelConfig.isLoopback(text) {
                // It is called with the broker's password every poll: plain HTTP only to this machine, or when asked for.
                if allowHTTP {
                    r.warn("queue.management_url is plain http:// (allow_http): the broker's password travels unencrypted")
                } else {
                    r.problem(at, "http:// sends the broker's password unencrypted: use https://, or set queue.allow_http: true")
                }
            }
            return text
        }
        quorum = (r.oneOf(m["type"], at: "\(path).type", ["quorum", "classic"]) ?? "quorum") == "quorum"
        if let items = r.sequence(m["retry_delays"], at: "\(path).retry_delays") {
            retryDelays = items.enumerated().compactMap { r.int($0.element, at: "\(path).retry_delays[\($0.offset)]", range: 1...86_400) }
            if retryDelays.isEmpty { r.problem("\(path).retry_delays", "at least one delay is required") }
        } else {
            retryDelays = [10, 60, 600, 3600]
        }
        maxAttempts = r.int(m["max_attempts"], at: "\(path).max_attempts", range: 1...100) ?? 8
        var texts = QueueConfig.list(r, m["url"], at: "\(path).url", secret: true)
        if texts.isEmpty { texts = [("amqp://guest:guest@127.0.0.1:5672/%2f", "\(path).url")] }
        nodes = texts.map { text, at in
            do {
                return try AMQPURL(text)
            } catch let error as AMQPError {
                r.problem(at, error.reason)
            } catch {
                r.problem(at, "\(error)")
            }
            return try! AMQPURL("amqp://localhost")
        }
        // One cluster: the vhost is where the fleet's queues are, the same on every node.
        for (index, node) in nodes.enumerated().dropFirst() where node.vhost != nodes[0].vhost {
            r.problem(
                "\(path).url[\(index)]", "vhost \(node.vhost) differs from the first node's (\(nodes[0].vhost)): the nodes of one cluster")
        }
        if Set(nodes.map { "\($0.host):\($0.port)" }).count != nodes.count { r.problem("\(path).url", "a node is listed twice") }
        prefix = r.string(m["prefix"], at: "\(path).prefix") ?? "huskimo"
        if !prefix.allSatisfy({ $0.isLetter || $0.isNumber || "._-".contains($0) }) || prefix.isEmpty {
            r.problem("\(path).prefix", "use letters, digits, '.', '_' or '-'")
        }
    }
}

extension QueueConfig {
    /// A key that is one string or a list of them (at most 16), each with its key path for problems.
    fileprivate static func list(_ r: ConfigReader, _ value: ConfigReader.Value?, at path: String, secret: Bool) -> [(String, String)] {
        if case .sequence(let items)? = value {
            if items.isEmpty || items.count > 16 { r.problem(path, "expected 1 to 16 entries, got \(items.count)") }
            return items.prefix(16).enumerated().compactMap { index, item in
                r.string(item, at: "\(path)[\(index)]", secret: secret).map { ($0, "\(path)[\(index)]") }
            }
        }
        return r.string(value, at: path, secret: secret).map { [($0, path)] } ?? []
    }
}

extension ManagementAPI {
    /// The management API of `queue.management_url`, with the credentials of `queue.url`; nil when not configured.
    package init?(_ config: QueueConfig) {
        guard !config.managementURLs.isEmpty else { return nil }
        self.init(baseURLs: config.managementURLs, amqp: config.url)
    }
}

/// ## Configuration keys (section `fetch`)
/// - `lookback` (int, default 30, 0–3650): Singular days re-fetched each run: the `lookback` days ending at the
///   run day (0 means just the run day). 0.3 fetched one day more, including the current partial day.
/// - `start_date` (date, optional): the first day catch-up planning may reach back to.
/// - `settle_days` (int, default 3, 0–30): Twilio days before the run day that every run reads again, because
///   Twilio data is not final when the day ends (message statuses move to delivered/undelivered within minutes to
///   hours, prices arrive with the carrier's charge, a queued message can wait up to 10 hours for its `date_sent`,
///   a recording appears after its call). 3 covers that with a margin for carrier delays; each settle day costs
///   one job per day resource (calls, messages, recordings) per channel per night, each at least one request.
///   0 keeps 0.3's behaviour (a day is read once).
/// - `max_pages` (int, default 100000, 1–10000000): pages one job may read from one list before it is refused as
///   endless (a page loop is refused at once).
/// - `max_response_mib` (int, default 256, 1–4096): the largest API response body accepted.
package struct FetchConfig: Sendable {
    package var lookback: Int
    package var startDate: Day?
    package var settleDays: Int
    package var maxPages: Int
    var maxResponseMiB: Int

    init(_ r: ConfigReader, _ value: ConfigReader.Value?, at path: String) {
        let m = r.mapping(value, at: path, known: ["lookback", "start_date", "settle_days", "max_pages", "max_response_mib"]) ?? [:]
        lookback = r.int(m["lookback"], at: "\(path).lookback", range: 0...3650) ?? 30
        startDate = r.date(m["start_date"], at: "\(path).start_date")
        settleDays = r.int(m["settle_days"], at: "\(path).settle_days", range: 0...30) ?? 3
        maxPages = r.int(m["max_pages"], at: "\(path).max_pages", range: 1...10_000_000) ?? 100_000
        maxResponseMiB = r.int(m["max_response_mib"], at: "\(path).max_response_mib", range: 1...4096) ?? 256
    }
}

/// ## Configuration keys (each entry of `channels`)
/// - `name` (string, required, unique): becomes `channel_name` in every row.
/// - `type` (`twilio` | `singular`, required).
/// - `api_user` (string): Twilio Account SID; blank for Singular.
/// - `api_key` (string, required, secret): Twilio Auth Token or Singular API key.
/// - `api_url` (string, default `https://api.twilio.com` / `https://api.singular.net`).
/// - `pricing_url` (string, default `https://pricing.twilio.com`). `http://` only to this machine (loopback), or
///   with `allow_http: true` (with a warning): plain HTTP sends the credentials in clear.
/// - `subaccounts` (bool, default false): discover and extract every Twilio subaccount.
extension ChannelConfig {
    init?(_ r: ConfigReader, _ value: ConfigReader.Value, at path: String) {
        guard
            let m = r.mapping(
                value, at: path,
                known: Set([
                    "name", "type", "api_user", "api_key", "api_url", "pricing_url", "subaccounts",
                    "allow_http", "api_key_sid", "api_key_secret", "region", "edge",
                ]).union(Self.connectorKeys(r, value)))
        else {
            r.problem(path, "expected a channel mapping")
            return nil
        }
        let name = r.requiredString(m["name"], at: "\(path).name")
        // It reaches object keys, queue headers and every row: bounded, no separators, no control characters.
        if let name,
            name.contains("/") || name.contains("\\") || name == "." || name == ".." || name.utf8.count > 128
                || name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
        {
            r.problem("\(path).name", "must be 1–128 bytes without '/', '\\', control characters, and not '.' or '..'")
        }
        let type = r.oneOf(m["type"], at: "\(path).type", ConnectorRegistry.types.map(\.rawValue)).map(ChannelType.init(rawValue:))
        if m["type"] == nil { r.problem("\(path).type", "required") }
        // Twilio: an API key and its secret may stand in for the auth token (the connector checks the pair).
        let keySID = r.string(m["api_key_sid"], at: "\(path).api_key_sid")
        let keySecret = r.string(m["api_key_secret"], at: "\(path).api_key_secret", secret: true).map(Secret.init)
        // OAuth client credentials stand in for the auth token too.
        let key =
            keySID == nil && m["oauth_client_id"] == nil
            ? r.requiredString(m["api_key"], at: "\(path).api_key", secret: true)
            : r.string(m["api_key"], at: "\(path).api_key", secret: true) ?? ""
        let apiUser = r.string(m["api_user"], at: "\(path).api_user")
        let region = r.string(m["region"], at: "\(path).region"), edge = r.string(m["edge"], at: "\(path).edge")
        let regional = type == .twilio ? TwilioHosts.urls(region: region, edge: edge) : nil
        let apiURL = r.string(m["api_url"], at: "\(path).api_url") ?? regional?.api ?? type.map(ChannelConfig.defaultAPIURL) ?? ""
        let pricingURL = r.string(m["pricing_url"], at: "\(path).pricing_url") ?? regional?.pricing ?? "https://pricing.twilio.com"
        let allowHTTP = r.bool(m["allow_http"], at: "\(path).allow_http") ?? false
        for (key, url) in [("api_url", apiURL), ("pricing_url", pricingURL)] {
            if url.hasPrefix("https://") { continue }
            guard url.hasPrefix("http://") else {
                r.problem("\(path).\(key)", "expected an https:// URL")
                continue
            }
            // Plain HTTP would send the token in clear: only to this machine, or when the configuration says so.
            if !Self.isLoopback(url) && !allowHTTP {
                r.problem("\(path).\(key)", "http:// sends the credentials unencrypted: use https://, or set allow_http: true")
            } else if allowHTTP && !Self.isLoopback(url) {
                r.warn("channel \(name ?? path): \(key) is plain http:// (allow_http): its credentials travel unencrypted")
            }
        }
        let subaccounts = r.bool(m["subaccounts"], at: "\(path).subaccounts") ?? false
        guard let type else { return nil }
        // The connector's own rules, also when other keys are missing: every problem is reported at once.
        self.init(
            name: name ?? "", type: type, apiUser: apiUser, apiKey: Secret(key ?? ""), apiURL: apiURL, pricingURL: pricingURL,
            subaccounts: subaccounts)
        (apiKeySID, apiKeySecret, self.region, self.edge) = (keySID, keySecret, region, edge)
        let connector = ConnectorRegistry.connector(of: self)
        for key in connector.channelKeys {
            // A list (`include: [AC…, "Client *"]`) is kept one item per line.
            if case .sequence? = m[key], let items = r.sequence(m[key], at: "\(path).\(key)") {
                options[key] = items.enumerated().compactMap { r.string($1, at: "\(path).\(key)[\($0)]") }.joined(separator: "\n")
            } else if let text = r.string(m[key], at: "\(path).\(key)") {
                options[key] = text
            }
        }
        for key in connector.secretChannelKeys {
            if let text = r.string(m[key], at: "\(path).\(key)", secret: true) { secretOptions[key] = Secret(text) }
        }
        for problem in ConnectorRegistry.connector(of: self).problems(self) { r.problem("\(path).\(problem.key)", problem.message) }
        if name == nil || key == nil { return nil }
    }

    /// The keys of the connector a channel mapping's `type` names (none while the type is missing or unknown).
    private static func connectorKeys(_ r: ConfigReader, _ value: ConfigReader.Value) -> [String] {
        guard case .mapping(let entries) = value, let type = entries.first(where: { $0.0 == "type" }),
            case .scalar(let name, _) = type.1, let connector = ConnectorRegistry.connector(for: ChannelType(rawValue: name))
        else { return [] }
        return connector.channelKeys + connector.secretChannelKeys
    }

}

/// ## Configuration keys (section `s3`)
/// - `access_key_id`, `secret_access_key` (secret): the staging bucket's credentials.
/// - `region` (required), `bucket` (required, a bare bucket name; `s3://` is stripped), `folder_path`.
/// - `endpoint` (default from region), `path_style` (default false), `keep_staged` (default false).
package struct S3Config: Sendable {
    package var accessKeyID: String
    package var secretAccessKey: Secret
    package var region: String
    package var bucket: String
    var folderPath: String
    package var endpoint: String
    package var pathStyle: Bool
    var keepStaged: Bool

    init(_ r: ConfigReader, _ value: ConfigReader.Value?, at path: String) {
        let m =
            r.mapping(
                value, at: path,
                known: [
                    "access_key_id", "secret_access_key", "region", "bucket", "folder_path",
                    "endpoint", "path_style", "keep_staged",
                ]) ?? [:]
        accessKeyID = r.requiredString(m["access_key_id"], at: "\(path).access_key_id") ?? ""
        secretAccessKey = Secret(r.requiredString(m["secret_access_key"], at: "\(path).secret_access_key", secret: true) ?? "")
        region = r.requiredString(m["region"], at: "\(path).region") ?? "us-east-1"
        var bucket = r.requiredString(m["bucket"], at: "\(path).bucket") ?? ""
        for scheme in ["s3://", "s3n://", "s3a://"] where bucket.hasPrefix(scheme) { bucket = String(bucket.dropFirst(scheme.count)) }
        while bucket.hasSuffix("/") { bucket.removeLast() }
        if bucket.contains("/") { r.problem("\(path).bucket", "expected a bare bucket name; put folders in folder_path") }
        self.bucket = bucket
        var folder = r.string(m["folder_path"], at: "\(path).folder_path") ?? ""
        while folder.hasPrefix("/") { folder.removeFirst() }
        while folder.hasSuffix("/") { folder.removeLast() }
        folderPath = folder
        // These reach Redshift's COPY as string literals, where a backslash is an escape and a quote ends the literal,
        // and every object key: refused, not escaped, since no real bucket, folder, region or key id carries one.
        for (key, value) in [("access_key_id", accessKeyID), ("region", region), ("bucket", bucket), ("folder_path", folder)]
        where value.unicodeScalars.contains(where: { $0 == "\\" || $0 == "'" || $0.value < 0x20 || $0.value == 0x7F }) {
            r.problem("\(path).\(key)", "must not contain backslashes, quotes or control characters")
        }
        if !bucket.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 || $0 == 46 }) || bucket.utf8.count > 63
        {
            r.warn("s3.bucket \(bucket.prefix(80)) is not an S3 bucket name (up to 63 of a–z, 0–9, '.', '-')")
        }
        endpoint = r.string(m["endpoint"], at: "\(path).endpoint") ?? "https://s3.\(region).amazonaws.com"
        pathStyle = r.bool(m["path_style"], at: "\(path).path_style") ?? false
        keepStaged = r.bool(m["keep_staged"], at: "\(path).keep_staged") ?? false
    }

    var s3Endpoint: S3Endpoint {
        S3Endpoint(
            endpoint: endpoint, region: region, bucket: bucket, accessKeyID: accessKeyID,
            secretAccessKey: secretAccessKey, pathStyle: pathStyle)
    }
}

/// ## Configuration keys (each entry of `targets`)
/// - `name` (required, unique; it names the target's queue `<prefix>.load.<name>`).
/// - `type` (`redshift` | `postgres`, default `redshift`), `host`, `database`, `username`, `password` (secret).
/// - `port` (default 5439 for Redshift, 5432 for PostgreSQL), `schema` (default `huskimo`).
/// - `sslmode` (verify-full, the default | verify-ca | require | disable; `prefer` and `allow` are refused: they
///   fall back to plain text silently), `sslrootcert` (default: the system CA bundle). `require` and `disable`
///   warn at start. 0.3's `ssl` / `ssl_factory` map onto it: `ssl: false` → disable; `ssl: true` with the default
///   `NonValidatingFactory` → require; with any other factory → verify-full.
/// - `iam_role` (Redshift: COPY with this role instead of the S3 keys).
/// - `statement_timeout_seconds` (default 1800) and `lock_timeout_seconds` (PostgreSQL only, default 600): a
///   statement or lock wait past them fails the batch (transient: retried), instead of hanging the loader.
/// - `table`: accepted and ignored (0.1 leftover).
package struct TargetConfig: Sendable {
    package var name: String
    /// The warehouse's flavor: its dialect (`type.dialect`) decides everything that differs between them.
    package var type: WarehouseSchema.Flavor
    package var host: String
    package var port: Int
    package var database: String
    var username: String
    package var password: Secret
    package var schema: String
    package var sslMode: PostgresSettings.SSLMode
    package var sslRootCert: String?
    var iamRole: String?
    /// Bounds on one statement and on one lock wait (PostgreSQL), in seconds.
    var statementTimeoutSeconds: Int
    var lockTimeoutSeconds: Int

    init?(_ r: ConfigReader, _ value: ConfigReader.Value, at path: String) {
        guard
            let m = r.mapping(
                value, at: path,
                known: [
                    "name", "type", "host", "database", "port", "ssl", "ssl_factory", "username",
                    "password", "schema", "sslmode", "sslrootcert", "iam_role", "statement_timeout_seconds",
                    "lock_timeout_seconds",
                ],
                obsolete: ["table": "no longer used (tables are fixed by the DDL); ignored"])
        else {
            r.problem(path, "expected a target mapping")
            return nil
        }
        let name = r.requiredString(m["name"], at: "\(path).name")
        // It names the target's queue (RabbitMQ allows any UTF-8 up to 255 bytes; the 0.3 sample says "ADD HERE").
        if let name, name.utf8.count > 200 || name.unicodeScalars.contains(where: { $0.value < 0x20 }) {
            r.problem("\(path).name", "must be at most 200 bytes without control characters (it names the target's queue)")
        }
        type =
            r.oneOf(m["type"], at: "\(path).type", WarehouseSchema.Flavor.allCases.map(\.rawValue)).flatMap(
                WarehouseSchema.Flavor.init(rawValue:)) ?? .redshift
        host = r.requiredString(m["host"], at: "\(path).host") ?? ""
        database = r.requiredString(m["database"], at: "\(path).database") ?? ""
        port = r.int(m["port"], at: "\(path).port", range: 1...65535) ?? type.dialect.defaultPort
        username = r.requiredString(m["username"], at: "\(path).username") ?? ""
        password = Secret(r.string(m["password"], at: "\(path).password", secret: true) ?? "")
        schema = r.string(m["schema"], at: "\(path).schema") ?? "huskimo"
        // It is quoted wherever it reaches SQL, and still held to a plain identifier: it names tables in every log.
        if schema.isEmpty || schema.utf8.count > 63
            || !schema.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 65 && $0 <= 90) || ($0 >= 48 && $0 <= 57) || $0 == 95 })
            || schema.utf8.first.map({ $0 >= 48 && $0 <= 57 }) == true
        {
            r.problem("\(path).schema", "expected a plain identifier of 1–63 letters, digits and '_', not starting with a digit")
        }
        let ssl = r.bool(m["ssl"], at: "\(path).ssl")
        let factory = r.string(m["ssl_factory"], at: "\(path).ssl_factory")
        // Certificates are verified unless the configuration says otherwise; `prefer` and `allow` (which fall back to
        // plain text without a word) are refused.
        let label = name ?? path
        if let mode = r.oneOf(m["sslmode"], at: "\(path).sslmode", ["disable", "require", "verify-ca", "verify-full", "prefer", "allow"]) {
            if mode == "prefer" || mode == "allow" {
                r.problem(
                    "\(path).sslmode",
                    "\(mode) falls back to an unencrypted connection silently; use verify-full (the default), "
                        + "or require / disable explicitly")
            }
            sslMode = PostgresSettings.SSLMode(rawValue: mode) ?? .verifyFull
        } else if let ssl {
            let validating = factory != nil && factory != "org.postgresql.ssl.NonValidatingFactory"
            sslMode = ssl ? (validating ? .verifyFull : .require) : .disable
        } else {
            sslMode = .verifyFull
        }
        switch sslMode {
        case .disable: r.warn("target \(label): sslmode disable — the connection and its password are not encrypted")
        case .require:
            r.warn(
                "target \(label): sslmode require — encrypted, but the server's certificate is not verified (0.3's NonValidatingFactory); use verify-full"
            )
        default: break
        }
        sslRootCert = r.string(m["sslrootcert"], at: "\(path).sslrootcert")
        if let root = sslRootCert, !FileManager.default.isReadableFile(atPath: root) {
            r.problem("\(path).sslrootcert", "cannot read \(root)")
        }
        iamRole = r.string(m["iam_role"], at: "\(path).iam_role")
        statementTimeoutSeconds = r.int(m["statement_timeout_seconds"], at: "\(path).statement_timeout_seconds", range: 1...86_400) ?? 1800
        lockTimeoutSeconds = r.int(m["lock_timeout_seconds"], at: "\(path).lock_timeout_seconds", range: 1...86_400) ?? 600
        if let role = iamRole,
            !role.hasPrefix("arn:") || role.unicodeScalars.contains(where: { $0 == "\\" || $0 == "'" || $0.value < 0x20 })
        {
            r.problem("\(path).iam_role", "expected an IAM role ARN (arn:aws:iam::…), without backslashes, quotes or control characters")
        }
        guard let name else { return nil }
        self.name = name
    }

    var postgresSettings: PostgresSettings {
        // Verifying without a named CA uses the system bundle (Redshift's certificates chain to its roots).
        var settings = PostgresSettings(
            host: host, port: port, database: database, user: username, password: password, sslMode: sslMode,
            sslRootCert: sslRootCert ?? (sslMode == .verifyCA || sslMode == .verifyFull ? SystemCA.bundle : nil))
        // A statement or a lock wait never hangs a loader: it fails, transient, and the batch is retried (the dialect
        // knows which bounds its warehouse has: Redshift has no lock_timeout).
        settings.session = type.dialect.session(self)
        return settings
    }
}
