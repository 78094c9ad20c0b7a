import HuskimoCore

/// How a Twilio request logs in: HTTP Basic as the Account SID with its auth token or as an API key with its secret
/// (the URLs name the Account SID either way), or an OAuth Bearer token.
enum TwilioAuth: Sendable {
    case basic(user: String, secret: Secret)
    case bearer(TwilioOAuth)
}

extension ChannelConfig {
    /// OAuth client credentials (`oauth_client_id`, `oauth_client_secret`) and where tokens come from (`oauth_url`).
    var twilioOAuth: (id: String, secret: Secret, url: String)? {
        guard let id = options["oauth_client_id"], let secret = secretOptions["oauth_client_secret"] else { return nil }
        return (id, secret, options["oauth_url"] ?? "https://oauth.twilio.com")
    }

    /// Who a Twilio request logs in as: OAuth where configured, else the API key and its secret, else the Account SID
    /// and its auth token.
    func twilioAuth(_ client: APIClient) -> TwilioAuth {
        if let oauth = twilioOAuth {
            return .bearer(TwilioOAuth.source(url: oauth.url, clientID: oauth.id, clientSecret: oauth.secret, client: client))
        }
        if let sid = apiKeySID, let secret = apiKeySecret { return .basic(user: sid, secret: secret) }
        return .basic(user: apiUser ?? "", secret: apiKey)
    }

    /// Every secret a Twilio channel holds, for scrubbing.
    var twilioSecrets: [Secret] { [apiKey] + (apiKeySecret.map { [$0] } ?? []) + secretOptions.values }
}

/// Twilio's hosts by region and edge: `api.{edge}.{region}.twilio.com` (and `pricing.…` likewise). Since 2026-04-28
/// the `api.{region}.twilio.com` forms (`api.ie1.twilio.com`) no longer answer, so a region without an edge, or a
/// URL of that form, is refused with the replacement named.
package enum TwilioHosts {
    /// The default API and pricing URLs of a channel with `region` and `edge` (nil: the US1 defaults).
    package static func urls(region: String?, edge: String?) -> (api: String, pricing: String)? {
        guard let region, let edge else { return nil }
        return ("https://api.\(edge).\(region).twilio.com", "https://pricing.\(edge).\(region).twilio.com")
    }

    static func problems(_ channel: ChannelConfig) -> [(key: String, message: String)] {
        var problems: [(key: String, message: String)] = []
        func token(_ text: String) -> Bool { !text.isEmpty && text.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) } }
        switch (channel.region, channel.edge) {
        case (let region?, nil):
            problems.append(
                (
                    "edge",
                    "required with region: the api.\(region).twilio.com form was retired on 2026-04-28; "
                        + "name the edge (for ie1: dublin, for au1: sydney) for api.{edge}.\(region).twilio.com"
                ))
        case (nil, _?): problems.append(("region", "required with edge (us1, ie1, au1)"))
        case (let region?, let edge?):
            if !token(region) { problems.append(("region", "lowercase letters and digits (us1, ie1, au1)")) }
            if !token(edge) { problems.append(("edge", "lowercase letters and digits (ashburn, dublin, sydney)")) }
        case (nil, nil): break
        }
        for (key, url) in [("api_url", channel.apiURL), ("pricing_url", channel.pricingURL)] {
            let host = url.split(separator: "/", maxSplits: 3).dropFirst(1).first.map(String.init) ?? ""
            let labels = host.split(separator: ".")
            if labels.count == 4, labels[2] == "twilio", labels[3] == "com", labels[1].count == 3, labels[1].last?.isNumber == true {
                problems.append(
                    (
                        key,
                        "\(host) was retired on 2026-04-28: use \(labels[0]).{edge}.\(labels[1]).twilio.com "
                            + "(e.g. \(labels[0]).\(labels[1] == "au1" ? "sydney" : "dublin").\(labels[1]).twilio.com), or region and edge"
                    ))
            }
        }
        return problems
    }
}
