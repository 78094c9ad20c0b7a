import Foundation

/// A value that must never be printed: auth tokens, passwords, secret keys.
///
/// Every printed form (`description`, `debugDescription`, string interpolation, `dump`) shows
/// `<redacted>`; only ``reveal()`` gives the value, and only code that hands it to a C library
/// (libcurl, libpq, rabbitmq-c) calls it.
package struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    private let value: String

    package init(_ value: String) { self.value = value }

    /// The secret itself, for the one call that needs it.
    package func reveal() -> String { value }

    package var isEmpty: Bool { value.isEmpty }
    package var description: String { "<redacted>" }
    package var debugDescription: String { "<redacted>" }
    package var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}

extension String {
    /// This URL or path without trailing slashes (`https://x/` → `https://x`), for joining with `/…` paths.
    package var withoutTrailingSlashes: String {
        var text = Substring(self)
        while text.hasSuffix("/") { text = text.dropLast() }
        return String(text)
    }

    /// This text with every occurrence of each non-empty secret replaced by `<redacted>`: the last line of
    /// defence for messages that come from C libraries or servers and might echo a credential.
    package func redacting(_ secrets: [Secret]) -> String {
        var text = self
        for secret in secrets where secret.reveal().count >= 3 {
            text = text.replacingOccurrences(of: secret.reveal(), with: "<redacted>")
        }
        return text
    }
}
