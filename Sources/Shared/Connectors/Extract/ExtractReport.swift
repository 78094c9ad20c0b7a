import Foundation
import HuskimoCore

/// What an extraction did, besides staging: the load message to publish and the figures for logs and metrics.
package struct ExtractReport: Sendable {
    package var load: LoadMessage
    package var records: Int
    package var tally: APIClient.Tally
    /// The accounts extracted (a parent and its subaccounts; empty for Singular).
    package var accounts: [String]
    /// Text values staged with a replacement: U+0000 or invalid UTF-8 became U+FFFD (neither warehouse loads them).
    package var replacedValues = 0
    package var stagedBytes: Int { load.objects.reduce(0) { $0 + $1.bytes } }
}
