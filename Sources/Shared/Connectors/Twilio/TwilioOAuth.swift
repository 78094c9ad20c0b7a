import Foundation
import HuskimoCore
import Logging
import Synchronization

/// OAuth 2.0 client credentials for Twilio (general availability since April 2026): `POST {oauth_url}/v2/token` with
/// `grant_type=client_credentials`, the client id and secret in the form; requests then carry `Authorization: Bearer …`.
/// One token per (oauth_url, client id) in the process, shared by every job and thread, renewed before it expires
/// (when less than a fifth of its life, at most a minute, is left) and at once when the API refuses it (401). The token
/// and the client secret never reach a log, an error or a metric.
final class TwilioOAuth: BearerTokenSource, @unchecked Sendable {  // `token` is guarded by `lock`
    let url: String
    let clientID: String
    let clientSecret: Secret
    private let client: APIClient
    private let lock = NSLock()
    private var token: (value: Secret, expires: Date, lifetime: Double)?

    /// The token sources of this process, by (oauth_url, client id): channels sharing a client share its token.
    private static let sources = Mutex<[String: TwilioOAuth]>([:])

    static func source(url: String, clientID: String, clientSecret: Secret, client: APIClient) -> TwilioOAuth {
        sources.withLock { sources in
            let key = url + "\n" + clientID
            if let found = sources[key], found.clientSecret == clientSecret { return found }
            let made = TwilioOAuth(url: url, clientID: clientID, clientSecret: clientSecret, client: client)
            sources[key] = made
            return made
        }
    }

    private init(url: String, clientID: String, clientSecret: Secret, client: APIClient) {
        self.url = url.withoutTrailingSlashes
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.client = client
    }

    /// The cached token while it has more than its margin left; else a new one (one fetch at a time: the others wait for it).
    func current() throws -> Secret {
        try lock.withLock {
            if let token, token.expires.timeIntervalSinceNow > min(60, token.lifetime / 5) { return token.value }
            let fresh = try fetch()
            token = fresh
            return fresh.value
        }
    }

    func refused(_ rejected: Secret) {
        lock.withLock {
            if token?.value == rejected { token = nil }
        }
    }

    /// `POST {oauth_url}/v2/token`. - Throws: ``APIError`` (a refused client is permanent: 400/401), or a
    /// ``ConversionError`` for an answer without a usable token.
    private func fetch() throws -> (value: Secret, expires: Date, lifetime: Double) {
        let form = PercentEncoding.query([
            ("grant_type", "client_credentials"), ("client_id", clientID), ("client_secret", clientSecret.reveal()),
        ])
        var request = HTTPRequest(
            method: .POST, url: url + "/v2/token",
            headers: [("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json")], body: Array(form.utf8),
            timeout: min(client.timeout, 60))
        request.redact = [clientSecret, Secret(PercentEncoding.encode(clientSecret.reveal(), keepSlash: false))]
        request.maxBodyBytes = 64 << 10
        var tally = APIClient.Tally()
        let started = Date()
        return try client.fetch(request, api: .twilio, account: "oauth/" + clientID, tally: &tally) { body in
            guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
                let value = object["access_token"] as? String, !value.isEmpty, value.utf8.count <= 16 << 10,
                value.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
            else {
                throw ConversionError(
                    table: "(Twilio OAuth)", field: "access_token", recordSID: nil,
                    reason: "the token endpoint \(request.displayURL) answered without a usable access_token")
            }
            if let type = object["token_type"] as? String, type.lowercased() != "bearer" {
                throw ConversionError(
                    table: "(Twilio OAuth)", field: "token_type", recordSID: nil,
                    reason: "expected a Bearer token, got \(type.printable(limit: 20))")
            }
            // A lifetime the API states, within reason (a minute's default for none: renewed often, never stale).
            let stated = (object["expires_in"] as? Double) ?? (object["expires_in"] as? Int).map(Double.init) ?? 60
            let lifetime = min(max(stated.isFinite ? stated : 60, 1), 86_400)
            client.logger.debug("OAuth token fetched", metadata: ["client_id": "\(clientID)", "expires_in_s": "\(Int(lifetime))"])
            return (Secret(value), started.addingTimeInterval(lifetime), lifetime)
        }
    }
}
