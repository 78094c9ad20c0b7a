import Foundation
import HuskimoCore

/// A presigned download URL an API hands out (Singular's report file, Twilio's Bulk Export day file): fetched without
/// credentials (the signature is the authorisation, and a second one makes S3 refuse), and only when it is an http(s)
/// URL without userinfo on the API's own host or an allowed one, over https (http only to this machine).
package enum PresignedURL {
    /// The request for `url`. - Parameters: `what` names the URL in errors ("the report's download_url"); `apiBase`'s
    /// host is allowed; `hosts` are further names (`*.amazonaws.com` matches subdomains).
    /// - Throws: ``PagingError`` (permanent) naming the refused URL's origin, never its query (the signature).
    static func request(
        _ url: String, what: String, apiBase: String, hosts: [String], accept: String, timeout: Double
    ) throws -> HTTPRequest {
        guard url.utf8.count <= 8192, url.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\\") }),
            let origin = PageLinks.origin(of: url), let api = PageLinks.origin(of: apiBase)
        else {
            throw PagingError(
                reason: "\(what) is not an http(s) URL without credentials: \(HTTPRequest.stripQuery(String(url.prefix(120))))")
        }
        guard allows(host: origin.host, apiHost: api.host, patterns: hosts) else {
            throw PagingError(
                reason: "\(what) is on \(origin.host), neither the API's host (\(api.host)) nor one of \(hosts.joined(separator: ", "))")
        }
        guard origin.scheme == "https" || ChannelConfig.isLoopback(url) else {
            throw PagingError(reason: "\(what) is plain http:// to \(origin.host): only https leaves this machine")
        }
        return HTTPRequest(url: url, headers: [("Accept", accept)], timeout: timeout)
    }

    /// Whether `host` is `apiHost` or matches one of `patterns` (`*.x` matches subdomains of x, not x itself).
    static func allows(host: String, apiHost: String, patterns: [String]) -> Bool {
        let host = host.lowercased()
        if host == apiHost.lowercased() { return true }
        return patterns.contains { pattern in
            pattern.hasPrefix("*.") ? host.hasSuffix(pattern.dropFirst(1)) && host.count > pattern.count - 1 : host == pattern
        }
    }

    /// A channel key's host list (`a.example.com, *.amazonaws.com`), lower-cased; nil when a name is not a host name.
    static func hosts(_ text: String) -> [String]? {
        let hosts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
        let valid = hosts.allSatisfy { host in
            let name = host.hasPrefix("*.") ? host.dropFirst(2) : Substring(host)
            return name.contains(".") && name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." } && name.utf8.count <= 253
        }
        return valid && !hosts.isEmpty ? hosts : nil
    }
}
