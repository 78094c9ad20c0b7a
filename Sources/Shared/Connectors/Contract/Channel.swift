import Foundation
package import HuskimoCore

/// One account of one API, as the connectors need it: who it is, where its API lives, and its credentials.
/// Read from the configuration's `channels` list (HuskimoFleet's `FleetConfig`), never from a message: jobs
/// carry only the channel's name.
package struct ChannelConfig: Sendable {
    package var name: String
    package var type: ChannelType
    package var apiUser: String?
    package var apiKey: Secret
    package var apiURL: String
    package var pricingURL: String
    package var subaccounts: Bool
    /// Twilio: an API key (`SK…`) and its secret, used instead of the auth token (`api_key`).
    package var apiKeySID: String?
    package var apiKeySecret: Secret?
    /// Twilio: the region and edge whose hosts serve the channel (`api.{edge}.{region}.twilio.com`).
    package var region: String?
    package var edge: String?
    /// The values of its connector's own keys (``Connector/channelKeys``), as written; the connector reads and checks them.
    package var options: [String: String] = [:]
    /// The values of its connector's secret keys (``Connector/secretChannelKeys``).
    package var secretOptions: [String: Secret] = [:]

    package init(
        name: String, type: ChannelType, apiUser: String?, apiKey: Secret, apiURL: String? = nil,
        pricingURL: String? = nil, subaccounts: Bool = false
    ) {
        self.name = name
        self.type = type
        self.apiUser = apiUser
        self.apiKey = apiKey
        self.apiURL = apiURL ?? ChannelConfig.defaultAPIURL(type)
        self.pricingURL = pricingURL ?? "https://pricing.twilio.com"
        self.subaccounts = subaccounts
    }

    /// The API's address when the configuration gives none (its connector's).
    package static func defaultAPIURL(_ type: ChannelType) -> String { ConnectorRegistry.connector(for: type)?.defaultAPIURL ?? "" }

    /// Whose request limit paces this channel (its connector decides: a Twilio account's SID, a Singular key).
    package var limiterKey: String { ConnectorRegistry.connector(of: self).limiterKey(self) }

    /// Whether an http(s) URL's host is this machine (`localhost`, 127.0.0.0/8, `[::1]`).
    package static func isLoopback(_ url: String) -> Bool {
        guard let rest = url.range(of: "://").map({ url[$0.upperBound...] }) else { return false }
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !authority.contains("@") else { return false }
        let host: Substring
        if authority.hasPrefix("[") {
            host = authority.dropFirst().prefix { $0 != "]" }
        } else {
            host = authority.prefix { $0 != ":" }
        }
        if host.lowercased() == "localhost" || host == "::1" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }
}
