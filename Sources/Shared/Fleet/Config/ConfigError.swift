public import HuskimoCore
import HuskimoConnectors

/// Everything wrong with a configuration file, each problem with its key path
/// (`targets[1].port: expected an integer, got "abc"`). Bad configuration is permanent: exit code 2.
public struct ConfigError: ClassifiedError, Sendable {
    public struct Problem: Sendable, Hashable, CustomStringConvertible {
        public var path: String
        public var message: String
        public var description: String { path.isEmpty ? message : "\(path): \(message)" }
    }

    public var problems: [Problem]
    public var file: String?
    public var errorClass: ErrorClass { .permanent }

    public init(file: String? = nil, problems: [Problem]) {
        self.file = file
        self.problems = problems
    }

    public init(_ path: String, _ message: String) {
        self.problems = [Problem(path: path, message: message)]
    }

    public var description: String {
        let head = "invalid configuration" + (file.map { " in \($0)" } ?? "")
        return ([head + ":"] + problems.map { "  \($0)" }).joined(separator: "\n")
    }
}
