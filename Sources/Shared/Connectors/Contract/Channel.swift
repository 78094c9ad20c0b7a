public import HuskimoCore

/// One account of one API, as the connectors need it: who it is, where its API lives, and its credentials.
/// Read from the configuration's `channels` list (HuskimoFleet's `FleetConfig`), never from a message: jobs
/// carry only the channel's name.
public struct ChannelConfig: Sendable {
    public typealias Kind = ChannelType
    public var name: String
    public var type: ChannelType
    public var apiUser: String?
    public var apiKey: Secret
    public var apiURL: String
    public var pricingURL: String
    public var subaccounts: Bool

    public init(name: String, type: ChannelType, apiUser: String?, apiKey: Secret, apiURL: String? = nil,
                pricingURL: String? = nil, subaccounts: Bool = false) {
        self.name = name
        self.type = type
        self.apiUser = apiUser
        self.apiKey = apiKey
        self.apiURL = apiURL ?? ChannelConfig.defaultAPIURL(type)
        self.pricingURL = pricingURL ?? "https://pricing.twilio.com"
        self.subaccounts = subaccounts
    }

    public static func defaultAPIURL(_ type: ChannelType) -> String {
        type == .singular ? "https://api.singular.net" : "https://api.twilio.com"
    }

    /// Whose request limit paces this channel: a Twilio channel's Account SID (channels sharing an account share
    /// its limit), a Singular channel's own key.
    public var limiterKey: String { type == .singular ? "singular/\(name)" : apiUser ?? "" }
}
