import HuskimoConnectors
package import HuskimoCore

/// Everything wrong with a configuration file, each problem with its key path
/// (`targets[1].port: expected an integer, got "abc"`). Bad configuration is permanent: exit code 2.
package struct ConfigError: ClassifiedError, Sendable {
    package struct Problem: Sendable, Hashable, CustomStringConvertible {
        package var path: String
        package var message: String
        package var description: String { path.isEmpty ? message : "\(path): \(message)" }
    }

    package var problems: [Problem]
    package var file: String?
    package var errorClass: ErrorClass { .permanent }

    package init(file: String? = nil, problems: [Problem]) {
        self.file = file
        self.problems = problems
    }

    package init(_ path: String, _ message: String) {
        self.problems = [Problem(path: path, message: message)]
    }

    package var description: String {
        let head = "invalid configuration" + (file.map { " in \($0)" } ?? "")
        return ([head + ":"] + problems.map { "  \($0)" }).joined(separator: "\n")
    }
}
