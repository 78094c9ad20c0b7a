/// A JSON value with its keys in a chosen order, rendered the way a person would write it (and as Python's
/// `json.dumps(indent=2)` does): what the product prints for files that live in the repository.
package indirect enum JSONDocument: Sendable {
    case string(String), int(Int64), bool(Bool)
    case array([JSONDocument])
    case object([(String, JSONDocument)])

    /// A queue argument as RabbitMQ types it (a bool is not an int: `x-single-active-consumer: 1` is refused).
    package init(_ value: AMQPValue) {
        switch value {
        case .string(let s): self = .string(s)
        case .int(let i): self = .int(i)
        case .bool(let b): self = .bool(b)
        case .array(let items): self = .array(items.map(JSONDocument.init))
        case .table(let table): self = .object(table.sorted { $0.key < $1.key }.map { ($0.key, JSONDocument($0.value)) })
        }
    }

    package func rendered(indent: String = "") -> String {
        let inner = indent + "  "
        switch self {
        case .string(let s): return JSONDocument.quote(s)
        case .int(let i): return String(i)
        case .bool(let b): return b ? "true" : "false"
        case .array(let items):
            if items.isEmpty { return "[]" }
            return "[\n" + items.map { inner + $0.rendered(indent: inner) }.joined(separator: ",\n") + "\n\(indent)]"
        case .object(let members):
            if members.isEmpty { return "{}" }
            return "{\n" + members.map { inner + JSONDocument.quote($0.0) + ": " + $0.1.rendered(indent: inner) }.joined(separator: ",\n")
                + "\n\(indent)}"
        }
    }

    /// `s` as a JSON string literal.
    package static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out +=
                    "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                    + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
