import HuskimoCore

/// A "next page" link that cannot be followed: it leaves the channel's configured API origin, is not a URL this
/// client accepts, or makes the job page forever. Permanent: the same API answer would do it again.
struct PagingError: ClassifiedError {
    package let reason: String
    package var errorClass: ErrorClass { .permanent }
    package var description: String { "PagingError: \(reason)" }
}

/// Follows an API's paging links for one job, where credentials may go only to the configured API origin:
/// a link is either an absolute path (`/2010-04-01/…?PageToken=…`, appended to the configured base URL, so a
/// path prefix of a proxy is kept) or an absolute `http(s)` URL on the base's own scheme, host and port. Anything
/// else — another host, `@other.host/x` or `.other.host/x` (which string concatenation would have turned into
/// another host), `//other/x`, another scheme or port, control characters — is refused, as is a link seen before
/// in the job (a page loop) or more pages than `maxPages`.
struct PageLinks: Sendable {
    struct Origin: Equatable, Sendable {
        var scheme: String
        var host: String
        var port: Int
    }

    /// The configured base URL without trailing slashes.
    package let base: String
    let origin: Origin
    package let maxPages: Int
    private var seen: Set<String> = []
    /// Pages visited so far (1 while the first is read).
    var visited: Int { seen.count }

    /// - Throws: ``PagingError`` when `base` itself is not an http(s) URL without credentials.
    package init(base: String, maxPages: Int = 100_000) throws {
        self.base = base.withoutTrailingSlashes
        guard let origin = PageLinks.origin(of: self.base) else {
            throw PagingError(reason: "the configured API URL \(base.prefix(120)) is not an http(s) URL without credentials")
        }
        self.origin = origin
        self.maxPages = maxPages
    }

    /// Records that `url` is about to be fetched. - Throws: ``PagingError`` on a page loop or too many pages.
    mutating func visit(_ url: String) throws {
        guard seen.insert(url).inserted else {
            throw PagingError(reason: "page loop: the API pointed back at a page this job already read (\(HTTPRequest.stripQuery(url)))")
        }
        guard seen.count <= maxPages else {
            throw PagingError(reason: "more than \(maxPages) pages in one job (fetch.max_pages); refusing to page on")
        }
    }

    /// The URL of a next-page link. - Throws: ``PagingError`` for a link that leaves the configured origin.
    func resolve(_ link: String) throws -> String {
        guard !link.isEmpty, link.utf8.count <= 8192, link.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\\") }) else {
            throw PagingError(reason: "a next-page link that is empty, too long or has spaces, control or non-ASCII characters")
        }
        if link.hasPrefix("/") && !link.hasPrefix("//") { return base + link }
        guard let other = PageLinks.origin(of: link) else {
            throw PagingError(
                reason:
                    "a next-page link that is neither an absolute path nor an http(s) URL: \(HTTPRequest.stripQuery(String(link.prefix(120))))"
            )
        }
        guard other == origin else {
            throw PagingError(
                reason:
                    "a next-page link to \(other.scheme)://\(other.host):\(other.port), not the configured \(origin.scheme)://\(origin.host):\(origin.port): credentials go only to the configured API"
            )
        }
        return link
    }

    /// Scheme, host and port of an absolute http(s) URL with no userinfo; nil for anything else.
    static func origin(of url: String) -> Origin? {
        let lower = url.lowercased()
        let scheme: String
        if lower.hasPrefix("https://") { scheme = "https" } else if lower.hasPrefix("http://") { scheme = "http" } else { return nil }
        let rest = lower.dropFirst(scheme.count + 3)
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !authority.isEmpty, !authority.contains("@"), !authority.contains("\\") else { return nil }
        var host = Substring(authority)
        var port = scheme == "https" ? 443 : 80
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[...close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let p = Int(after.dropFirst()), (1...65535).contains(p) else { return nil }
                port = p
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            guard let p = Int(authority[authority.index(after: colon)...]), (1...65535).contains(p) else { return nil }
            port = p
        }
        guard !host.isEmpty, !host.hasSuffix(".") || host.count > 1 else { return nil }
        return Origin(scheme: scheme, host: String(host.hasSuffix(".") ? host.dropLast() : host), port: port)
    }
}
