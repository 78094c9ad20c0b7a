/// Huskimo's version: the one string `--version` prints, the release archive and the container image are named by,
/// `huskimo_build_info` and `status --json` carry (deploy/release.sh reads it from this file).
package enum HuskimoVersion {
    package static let current = "0.4.0"
}
