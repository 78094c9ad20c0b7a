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
