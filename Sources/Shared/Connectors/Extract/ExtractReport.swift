import Foundation
import HuskimoCore

/// What an extraction did, besides staging: the load message to publish and the figures for logs and metrics.
public struct ExtractReport: Sendable {
    public var load: LoadMessage
    public var records: Int
    public var tally: APIClient.Tally
    /// The accounts extracted (a parent and its subaccounts; empty for Singular).
    public var accounts: [String]
    /// Text values staged with a replacement: U+0000 or invalid UTF-8 became U+FFFD (neither warehouse loads them).
    public var replacedValues = 0
    public var stagedBytes: Int { load.objects.reduce(0) { $0 + $1.bytes } }
}
