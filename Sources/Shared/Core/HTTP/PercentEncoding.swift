import Foundation

/// Percent-encoding for URL paths and query values (RFC 3986): S3 keys and SigV4's canonical form, the
/// RabbitMQ management API's vhost and queue names, API keys and ISO codes in API paths.
package enum PercentEncoding {
    /// RFC 3986 unreserved characters pass; everything else is %XX. `/` passes only when `keepSlash` (paths).
    package static func encode(_ text: String, keepSlash: Bool) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(UnicodeScalar(byte))
            case UInt8(ascii: "/") where keepSlash:
                out.append("/")
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    /// `k=v&k2=v2`, each name and value encoded: a query string, or an `application/x-www-form-urlencoded` body.
    package static func query(_ pairs: [(String, String)]) -> String {
        pairs.map { "\(encode($0.0, keepSlash: false))=\(encode($0.1, keepSlash: false))" }.joined(separator: "&")
    }
}
