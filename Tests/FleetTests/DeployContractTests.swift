import Foundation
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

/// The deployment contract is printed by the product, not copied: the shipped RabbitMQ definitions are
/// `huskimo-planner topology`'s output for the shipped configuration. No broker needed.
@Suite struct DeployContractTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// What the shipped configuration's `${VAR}`s stand for here; the vhost comes from the URL.
    static let environment = [
        "RABBITMQ_URL": "amqps://huskimo:secret@rabbitmq.example.internal:5671/huskimo", "TWILIO_ACME_SID": "AC1",
        "TWILIO_ACME_TOKEN": "t", "SINGULAR_API_KEY": "k", "S3_ACCESS_KEY_ID": "a", "S3_SECRET_ACCESS_KEY": "s",
        "WAREHOUSE_PASSWORD": "p",
    ]

    /// The `huskimo.yaml` embedded in the Kubernetes ConfigMap (the shipped configuration).
    static func shippedConfigText() throws -> String {
        let text = try String(contentsOf: repo.appendingPathComponent("deploy/kubernetes/configmap.yaml"), encoding: .utf8)
        guard case .mapping(let top) = try ConfigReader.parse(text), case .mapping(let data)? = top.first(where: { $0.0 == "data" })?.1,
            case .scalar(let yaml, _)? = data.first(where: { $0.0 == "huskimo.yaml" })?.1
        else {
            throw CommandFailure.failed("deploy/kubernetes/configmap.yaml has no data.huskimo.yaml")
        }
        return yaml
    }

    @Test func theShippedDefinitionsAreTheTopologyCommandsOutputForTheShippedConfig() throws {
        let config = try FleetConfig.parse(try Self.shippedConfigText(), environment: Self.environment)
        let shipped = try String(contentsOf: Self.repo.appendingPathComponent("deploy/rabbitmq/definitions.json"), encoding: .utf8)
        let printed = RabbitMQDefinitions(FleetTopology(config), vhost: config.queue.url.vhost).json
        #expect(
            printed == shipped,
            "regenerate: huskimo-planner topology --config <the ConfigMap's huskimo.yaml> > deploy/rabbitmq/definitions.json")

        // The command prints exactly that (stdout only; warnings go to stderr).
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("huskimo-topology-\(UUID().uuidString).yaml")
        try Self.shippedConfigText().write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let (status, stdout) = try runTool("huskimo-planner", ["topology", "--config", file.path], env: Self.environment, stdoutOnly: true)
        #expect(status == 0 && stdout == shipped)
    }

    @Test func theDefinitionsCarryEveryDeclarationWithRabbitMQsTypes() throws {
        var config = try FleetConfig.parse(try Self.shippedConfigText(), environment: Self.environment)
        config.targets.append(config.targets[0])
        config.targets[1].name = "second"
        let document = RabbitMQDefinitions(FleetTopology(config), vhost: "/").json
        let object = try #require(try JSONSerialization.jsonObject(with: Data(document.utf8)) as? [String: Any])
        let queues = try #require(object["queues"] as? [[String: Any]])
        #expect(queues.count == FleetTopology(config).allQueues.count)
        let load = try #require(queues.first { $0["name"] as? String == "huskimo.load.second" })
        let arguments = try #require(load["arguments"] as? [String: Any])
        // A bool stays a bool (RabbitMQ refuses x-single-active-consumer: 1) and an int an int.
        #expect(document.contains("\"x-single-active-consumer\": true") && arguments["x-delivery-limit"] as? Int == 20)
        #expect((object["bindings"] as? [[String: Any]])?.count == queues.count)
        #expect((object["vhosts"] as? [[String: Any]])?.first?["name"] as? String == "/")
        #expect(JSONDocument.quote("a\"b\\c\n\u{1}") == #""a\"b\\c\n\u0001""#)
    }
}
