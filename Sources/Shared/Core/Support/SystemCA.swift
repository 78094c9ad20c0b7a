import Foundation

/// The system's CA bundle (Debian, RHEL): what TLS connections verify against when no CA file is configured
/// (libpq 15 has no `sslrootcert=system`; rabbitmq-c loads no default). nil: none readable here.
package enum SystemCA {
    package static let bundle: String? = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"]
        .first { FileManager.default.isReadableFile(atPath: $0) }
}
