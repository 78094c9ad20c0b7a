import Foundation

/// What the RabbitMQ management API knows of a queue beyond AMQP's ready count and consumers.
package struct QueueStats: Sendable, Codable, Hashable {
    package var ready: Int
    package var unacked: Int
    package var consumers: Int
    /// Messages per second published to / delivered from the queue (the broker's recent rate).
    package var publishRate: Double?
    package var deliverRate: Double?
    /// When the oldest ready message was published (Unix seconds; classic queues only).
    package var headMessageTimestamp: Int?
    /// `quorum` or `classic`.
    package var type: String?
    /// The node that leads a quorum queue (or hosts a classic one).
    package var leader: String?
    /// A quorum queue's members, and those of them online now (a classic queue: its one node).
    package var members: [String] = []
    package var online: [String] = []
}

/// A node of the cluster, as the management API sees it.
package struct ClusterNode: Sendable, Codable, Hashable {
    package var name: String
    package var running: Bool
}

/// A small client of the RabbitMQ management HTTP API (`GET /api/queues/{vhost}/{name}`), with the broker's
/// AMQP credentials.
package struct ManagementAPI: Sendable {
    /// One base URL per node (the first that answers serves a call).
    package let baseURLs: [String]
    package var baseURL: String { baseURLs[0] }
    package let user: String
    package let password: Secret
    package let vhost: String
    let http: HTTPClient

    package init(baseURL: String, amqp: AMQPURL, http: HTTPClient = HTTPClient(maxIdleHandles: 2)) {
        self.init(baseURLs: [baseURL], amqp: amqp, http: http)
    }

    package init(baseURLs: [String], amqp: AMQPURL, http: HTTPClient = HTTPClient(maxIdleHandles: 2)) {
        self.baseURLs = baseURLs.map(\.withoutTrailingSlashes)
        self.user = amqp.user
        self.password = amqp.password
        self.vhost = amqp.vhost
        self.http = http
    }

    /// `GET path` on the first node that answers (a node down, or answering 5xx, is skipped), as a JSON value.
    /// - Throws: ``CurlError`` for transport failures and non-200 answers (404: no such queue).
    func get(_ path: String) throws -> Any {
        var failure: (any Error)?
        for base in baseURLs {
            var request = HTTPRequest(url: base + path, connectTimeout: 3, timeout: 10)
            request.basicAuth = (user, password)
            request.maxBodyBytes = 64 << 20
            do {
                let response = try http.execute(request)
                guard response.status == 200, let object = try? JSONSerialization.jsonObject(with: Data(response.body)) else {
                    let error = CurlError(
                        .status, status: response.status, "GET \(request.displayURL): HTTP \(response.status)",
                        class: CurlError.classify(status: response.status))
                    if response.status < 500 { throw error }  // the same on every node
                    failure = error
                    continue
                }
                return object
            } catch let error as CurlError where error.isRetriable {
                failure = error
            }
        }
        throw failure ?? CurlError(.status, status: 0, "no management URL", class: .permanent)
    }

    /// - Throws: ``CurlError`` for transport failures and non-200 answers (404: no such queue).
    package func queue(_ name: String) throws -> QueueStats {
        let path = "/api/queues/\(PercentEncoding.encode(vhost, keepSlash: false))/\(PercentEncoding.encode(name, keepSlash: false))"
        guard let object = try get(path) as? [String: Any] else {
            throw CurlError(.status, status: 200, "GET \(path): not a JSON object", class: .permanent)
        }
        func rate(_ key: String) -> Double? {
            ((object["message_stats"] as? [String: Any])?[key] as? [String: Any])?["rate"] as? Double
        }
        let node = object["node"] as? String
        return QueueStats(
            ready: object["messages_ready"] as? Int ?? 0, unacked: object["messages_unacknowledged"] as? Int ?? 0,
            consumers: object["consumers"] as? Int ?? 0, publishRate: rate("publish_details"),
            deliverRate: rate("deliver_get_details"),
            headMessageTimestamp: object["head_message_timestamp"] as? Int,
            type: object["type"] as? String, leader: object["leader"] as? String ?? node,
            members: object["members"] as? [String] ?? node.map { [$0] } ?? [],
            online: object["online"] as? [String] ?? node.map { [$0] } ?? [])
    }

    /// The cluster's nodes and whether each is running.
    package func nodes() throws -> [ClusterNode] {
        guard let list = try get("/api/nodes?columns=name,running") as? [[String: Any]] else {
            throw CurlError(.status, status: 200, "GET /api/nodes: not a JSON list", class: .permanent)
        }
        return list.compactMap { item in
            (item["name"] as? String).map { ClusterNode(name: $0, running: item["running"] as? Bool ?? false) }
        }.sorted { $0.name < $1.name }
    }
}
