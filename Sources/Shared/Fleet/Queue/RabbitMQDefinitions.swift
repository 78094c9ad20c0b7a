package import HuskimoCore

/// The fleet's topology as a RabbitMQ definitions document (`rabbitmqctl import_definitions`, the management UI's
/// import, `load_definitions` in rabbitmq.conf): printed by `huskimo-planner topology` from ``FleetTopology`` — the
/// same declarations every process makes — so the shipped `deploy/rabbitmq/definitions.json` is its output, never a
/// hand-made copy.
package struct RabbitMQDefinitions: Sendable {
    package let topology: FleetTopology
    /// The virtual host the definitions go into (queue.url's, unless given).
    package let vhost: String

    package init(_ topology: FleetTopology, vhost: String) {
        self.topology = topology
        self.vhost = vhost
    }

    /// The document: vhost, the exchange, every queue with its arguments, every binding.
    package var document: JSONDocument {
        let declared = topology.topology
        let none = JSONDocument.object([])
        return .object([
            (
                "vhosts",
                .array([
                    .object([
                        ("name", .string(vhost)), ("limits", .array([])),
                        (
                            "metadata",
                            .object([
                                ("description", .string("Huskimo job and load queues")), ("tags", .array([])),
                                ("default_queue_type", .string("classic")),
                            ])
                        ),
                    ])
                ])
            ),
            (
                "exchanges",
                .array([
                    .object([
                        ("name", .string(declared.exchange)), ("vhost", .string(vhost)), ("type", .string("direct")),
                        ("durable", .bool(true)),
                        ("auto_delete", .bool(false)), ("internal", .bool(false)), ("arguments", none),
                    ])
                ])
            ),
            (
                "queues",
                .array(
                    declared.queues.map { queue in
                        .object([
                            ("name", .string(queue.name)), ("vhost", .string(vhost)), ("durable", .bool(true)),
                            ("auto_delete", .bool(false)),
                            ("arguments", .object(queue.arguments.sorted { $0.key < $1.key }.map { ($0.key, JSONDocument($0.value)) })),
                        ])
                    })
            ),
            (
                "bindings",
                .array(
                    declared.queues.flatMap { queue in
                        queue.bindings.map { key in
                            .object([
                                ("source", .string(declared.exchange)), ("vhost", .string(vhost)), ("destination", .string(queue.name)),
                                ("destination_type", .string("queue")), ("routing_key", .string(key)), ("arguments", none),
                            ])
                        }
                    })
            ),
        ])
    }

    /// The document as `huskimo-planner topology` prints it (two-space indents, one trailing newline).
    package var json: String { document.rendered() + "\n" }
}

/// A JSON value with its keys in a chosen order, rendered the way a person would write it (and as Python's
/// `json.dumps(indent=2)` does): what the product prints for files that live in the repository.
package indirect enum JSONDocument: Sendable, Hashable {
    case string(String), int(Int64), bool(Bool)
    case array([JSONDocument])
    case object([(String, JSONDocument)])

    /// A queue argument as RabbitMQ types it (a bool is not an int: `x-single-active-consumer: 1` is refused).
    init(_ value: AMQPValue) {
        switch value {
        case .string(let s): self = .string(s)
        case .int(let i): self = .int(i)
        case .bool(let b): self = .bool(b)
        case .array(let items): self = .array(items.map(JSONDocument.init))
        case .table(let table): self = .object(table.sorted { $0.key < $1.key }.map { ($0.key, JSONDocument($0.value)) })
        }
    }

    package static func == (a: JSONDocument, b: JSONDocument) -> Bool { a.rendered() == b.rendered() }
    package func hash(into hasher: inout Hasher) { hasher.combine(rendered()) }

    func rendered(indent: String = "") -> String {
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

    static func quote(_ s: String) -> String {
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
