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
}

/// A small client of the RabbitMQ management HTTP API (`GET /api/queues/{vhost}/{name}`), with the broker's
/// AMQP credentials.
package struct ManagementAPI: Sendable {
    package let baseURL: String
    package let user: String
    package let password: Secret
    package let vhost: String
    let http: HTTPClient

    package init(baseURL: String, amqp: AMQPURL, http: HTTPClient = HTTPClient(maxIdleHandles: 2)) {
        self.baseURL = baseURL.withoutTrailingSlashes
        self.user = amqp.user
        self.password = amqp.password
        self.vhost = amqp.vhost
        self.http = http
    }

    /// - Throws: ``CurlError`` for transport failures and non-200 answers (404: no such queue).
    package func queue(_ name: String) throws -> QueueStats {
        let path = "/api/queues/\(PercentEncoding.encode(vhost, keepSlash: false))/\(PercentEncoding.encode(name, keepSlash: false))"
        var request = HTTPRequest(url: baseURL + path, connectTimeout: 5, timeout: 10)
        request.basicAuth = (user, password)
        let response = try http.execute(request)
        guard response.status == 200,
            let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
        else {
            throw CurlError(
                .status, status: response.status, "GET \(request.displayURL): HTTP \(response.status)",
                class: CurlError.classify(status: response.status))
        }
        func rate(_ key: String) -> Double? {
            ((object["message_stats"] as? [String: Any])?[key] as? [String: Any])?["rate"] as? Double
        }
        return QueueStats(
            ready: object["messages_ready"] as? Int ?? 0, unacked: object["messages_unacknowledged"] as? Int ?? 0,
            consumers: object["consumers"] as? Int ?? 0, publishRate: rate("publish_details"),
            deliverRate: rate("deliver_get_details"),
            headMessageTimestamp: object["head_message_timestamp"] as? Int)
    }
}
