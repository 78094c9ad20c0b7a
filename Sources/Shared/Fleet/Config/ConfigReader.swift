import Foundation
import HuskimoConnectors
import HuskimoCore
internal import Yams

/// Reads typed values out of parsed YAML, collecting every problem with its key path instead of stopping
/// at the first, substituting `${ENV_VAR}` in scalars, and noting which keys it was asked about so unknown
/// keys (typos) can be reported.
final class ConfigReader {
    enum Value {
        case scalar(String, quoted: Bool)
        case mapping([(String, Value)])
        case sequence([Value])
        case null
    }

    private(set) var problems: [ConfigError.Problem] = []
    private(set) var warnings: [String] = []
    /// What `${VAR}` became in fields that are not secret (key path, text), so that a secret carried into a name, a
    /// host or a URL — where it would reach logs, metric labels or another host — can be refused.
    private(set) var expansions: [(path: String, text: String)] = []
    private let environment: [String: String]

    init(environment: [String: String]) {
        self.environment = environment
    }

    static func parse(_ text: String) throws -> Value {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            // Yams follows its message with the offending line, which may hold a token or a password: the position
            // and the problem only.
            let first = "\(error)".split(separator: "\n", maxSplits: 1).first.map(String.init) ?? "syntax error"
            throw ConfigError("", "not valid YAML: \(first.prefix(300))")
        }
        guard let node else { return .null }
        var budget = maxNodes
        let value = convert(node, budget: &budget)
        guard budget >= 0 else {
            // Aliases make a small file a huge tree (300 bytes of nested aliases are 10^8 nodes): refused, not walked.
            throw ConfigError("", "the YAML expands to more than \(maxNodes) nodes (aliases?): a configuration is far smaller")
        }
        return value
    }

    /// The most nodes a configuration may expand to (a fleet of 1,000 channels is about 10,000).
    static let maxNodes = 200_000

    private static func convert(_ node: Node, budget: inout Int) -> Value {
        budget -= 1
        guard budget >= 0 else { return .null }
        switch node {
        case .scalar(let scalar):
            let quoted = scalar.style == .singleQuoted || scalar.style == .doubleQuoted
            if !quoted, ["", "~", "null", "Null", "NULL"].contains(scalar.string) { return .null }
            return .scalar(scalar.string, quoted: quoted)
        case .mapping(let mapping):
            var members: [(String, Value)] = []
            for (key, value) in mapping where budget >= 0 { members.append((key.string ?? "\(key)", convert(value, budget: &budget))) }
            return .mapping(members)
        case .sequence(let sequence):
            var items: [Value] = []
            for item in sequence where budget >= 0 { items.append(convert(item, budget: &budget)) }
            return .sequence(items)
        case .alias:
            return .null
        }
    }

    func problem(_ path: String, _ message: String) { problems.append(.init(path: path, message: message)) }
    func warn(_ text: String) { warnings.append(text) }

    // MARK: - Sections

    /// A mapping's entries by key; reports keys not in `known` (and `obsolete` ones as warnings).
    func mapping(
        _ value: Value?, at path: String, known: Set<String>, obsolete: [String: String] = [:]
    )
        -> [String: Value]?
    {
        guard let value else { return nil }
        switch value {
        case .null: return nil
        case .mapping(let entries):
            var result: [String: Value] = [:]
            for (key, v) in entries {
                let keyPath = path.isEmpty ? key : "\(path).\(key)"
                if let why = obsolete[key] {
                    warn("\(keyPath): \(why)")
                } else if !known.contains(key) {
                    problem(keyPath, "unknown key (expected one of: \(known.sorted().joined(separator: ", ")))")
                    continue
                }
                if result[key] != nil { problem(keyPath, "duplicate key") }
                result[key] = v
            }
            return result
        default:
            problem(path, "expected a mapping of keys")
            return nil
        }
    }

    func sequence(_ value: Value?, at path: String) -> [Value]? {
        guard let value else { return nil }
        switch value {
        case .null: return nil
        case .sequence(let items): return items
        default:
            problem(path, "expected a list")
            return nil
        }
    }

    /// A required, non-empty list whose items `make` reads (given the item and its key path, `name[i]`).
    func requiredList<T>(_ value: Value?, at path: String, noun: String, _ make: (Value, String) -> T?) -> [T] {
        guard let items = sequence(value, at: path) else {
            problem(path, "required")
            return []
        }
        if items.isEmpty { problem(path, "at least one \(noun) is required") }
        return items.enumerated().compactMap { make($0.element, "\(path)[\($0.offset)]") }
    }

    /// Reports every item whose key was already seen, as `path[i].name: duplicate <what>`.
    func requireUnique(_ items: [(key: String, what: String)], at path: String) {
        var seen = Set<String>()
        for (index, item) in items.enumerated() where !seen.insert(item.key).inserted {
            problem("\(path)[\(index)].name", "duplicate \(item.what)")
        }
    }

    // MARK: - Scalars

    /// The scalar text after `${ENV}` substitution; nil when absent or null.
    func string(_ value: Value?, at path: String, secret: Bool = false) -> String? {
        guard let value else { return nil }
        switch value {
        case .null: return nil
        case .scalar(let text, _): return substitute(text, at: path, secret: secret)
        default:
            problem(path, "expected a string")
            return nil
        }
    }

    func requiredString(_ value: Value?, at path: String, secret: Bool = false) -> String? {
        guard let text = string(value, at: path, secret: secret) else {
            problem(path, "required")
            return nil
        }
        if text.trimmingCharacters(in: .whitespaces).isEmpty {
            problem(path, "must not be empty")
            return nil
        }
        return text
    }

    func int(_ value: Value?, at path: String, range: ClosedRange<Int>? = nil) -> Int? {
        guard let text = string(value, at: path) else { return nil }
        guard let number = Int(text.trimmingCharacters(in: .whitespaces)) else {
            problem(path, "expected an integer, got \(quote(text))")
            return nil
        }
        if let range, !range.contains(number) {
            problem(path, "must be between \(range.lowerBound) and \(range.upperBound), got \(number)")
            return nil
        }
        return number
    }

    func bool(_ value: Value?, at path: String) -> Bool? {
        guard let text = string(value, at: path) else { return nil }
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            problem(path, "expected true or false, got \(quote(text))")
            return nil
        }
    }

    func date(_ value: Value?, at path: String) -> Day? {
        guard let text = string(value, at: path) else { return nil }
        guard let day = Day(text) else {
            problem(path, "expected a date YYYY-MM-DD, got \(quote(text))")
            return nil
        }
        return day
    }

    func oneOf(_ value: Value?, at path: String, _ choices: [String]) -> String? {
        guard let text = string(value, at: path) else { return nil }
        guard choices.contains(text) else {
            problem(path, "expected one of \(choices.joined(separator: ", ")), got \(quote(text))")
            return nil
        }
        return text
    }

    private func quote(_ text: String) -> String { "\"\(text.prefix(60))\"" }

    /// Replaces `${NAME}` with the environment's value; an unset variable is a problem. A value that came
    /// from a secret key is never echoed in a problem.
    private func substitute(_ text: String, at path: String, secret: Bool) -> String {
        guard text.contains("${") else { return text }
        var out = ""
        var rest = text[...]
        while let start = rest.range(of: "${") {
            out += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                problem(path, "unclosed ${ in value")
                return out
            }
            let name = String(rest[start.upperBound..<end])
            if let value = environment[name] {
                out += value
            } else {
                problem(path, "environment variable \(name) is not set")
            }
            rest = rest[rest.index(after: end)...]
        }
        if !secret { expansions.append((path, out + rest)) }
        return out + rest
    }

    /// Refuses every non-secret field whose `${VAR}` expanded to text holding one of `secrets` (those of 8 characters
    /// or more: shorter ones would match by chance). The secret itself is never named, only where it went.
    func refuseSecretsOutsideSecretFields(_ secrets: [Secret]) {
        let values = secrets.map { $0.reveal() }.filter { $0.count >= 8 }
        for (path, text) in expansions where values.contains(where: { text.contains($0) }) {
            problem(
                path,
                "${…} expands to text holding one of the configuration's secrets: a secret belongs only in a secret field "
                    + "(api_key, secret_access_key, password, queue.url), never in a name, host or URL that logs and metrics show")
        }
    }
}
