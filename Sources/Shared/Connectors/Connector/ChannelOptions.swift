import HuskimoCore

/// Reads a connector's own channel keys (``ChannelConfig/options``), collecting what is wrong as (key, message): each
/// reader returns nil for a key that is absent or wrong, so the caller keeps its default.
struct ChannelOptions {
    let values: [String: String]
    private(set) var problems: [(key: String, message: String)] = []

    init(_ channel: ChannelConfig) { self.values = channel.options }

    mutating func problem(_ key: String, _ message: String) { problems.append((key, message)) }

    /// Seconds in `range`.
    mutating func seconds(_ key: String, _ range: ClosedRange<Double>) -> Double? {
        guard let text = values[key] else { return nil }
        guard let value = Double(text), value.isFinite, range.contains(value) else {
            problem(key, "expected a number of seconds in \(range.lowerBound)…\(range.upperBound), got \"\(text.printable(limit: 40))\"")
            return nil
        }
        return value
    }

    /// A whole number in `range`.
    mutating func integer(_ key: String, _ range: ClosedRange<Int>) -> Int? {
        guard let text = values[key] else { return nil }
        guard let value = Int(text), range.contains(value) else {
            problem(key, "expected a whole number in \(range.lowerBound)…\(range.upperBound), got \"\(text.printable(limit: 40))\"")
            return nil
        }
        return value
    }

    /// Host names (`*.` matches subdomains), comma-separated.
    mutating func hosts(_ key: String) -> [String]? {
        guard let text = values[key] else { return nil }
        guard let hosts = PresignedURL.hosts(text) else {
            problem(key, "expected host names (a leading *. matches subdomains), comma-separated")
            return nil
        }
        return hosts
    }
}
