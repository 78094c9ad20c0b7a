import Foundation
import HuskimoTesting
import SandboxKit
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

/// What an operator sees: `status --json` and the metrics endpoints of a running fleet with faults and a revoked
/// channel, checked against what the run did.
@Suite(.serialized, .ownThreads, .timeLimit(.minutes(5)))
struct OperationsIntegrationTests {
    static let days = [TestDays.day(20), TestDays.day(21)]

    /// RabbitMQ 4 drops a quorum queue's message after 20 deliveries when it has no dead-letter target; `status` and
    /// `requeue --dry-run` read every parked message. Fifty of each later, every parked message is still there.
    @Test func parkedMessagesOutliveFiftyStatusRuns() throws {
        let fleet = try FleetHarness(accounts: [("us", SandboxAccount.defaults[0])])
        defer { fleet.cleanUp() }
        let topology = FleetTopology(try fleet.config.queue, targets: ["local"])
        let client = QueueClient(
            nodes: AMQPNodes(try fleet.config.queue.nodes), topology: topology.topology, retryWindow: 10, logger: TestServices.logger)
        defer { client.close() }
        let parked = (1...3).map { n in
            let job = ExtractJob(
                runID: ExtractJob.fixtureRunID, channel: "us", resource: .calls, day: TestDays.day(20 + n), plannedAt: "p")
            let headers = ParkedHeaders(
                errorClass: .permanent, message: "HTTP 401, Twilio error 20003: Authenticate", channel: "us", resource: "calls",
                day: TestDays.text(20 + n), attempts: 1, id: job.jobID)
            return AMQPMessage(
                exchange: topology.exchange, routingKey: topology.failedQueue, body: MessageCodec.encode(job), headers: headers.table,
                messageID: job.jobID)
        }
        try client.publishBlocking(parked)
        for round in 1...50 {
            let (code, output) = try fleet.run("huskimo-planner", ["status", "--config", fleet.configPath, "--json"])
            let json = try #require(output.firstIndex(of: "{").map { String(output[$0...]) }, "round \(round): \(output)")
            let status = try JSONDecoder().decode(FleetStatus.self, from: Data(json.utf8))
            #expect(code == 1 && status.failures.map(\.count) == [3], "round \(round): \(status.failures)")
            if round % 10 == 0 {
                let (dry, _) = try fleet.run("huskimo-planner", ["requeue", "--config", fleet.configPath, "--dry-run"])
                #expect(dry == 0)
            }
        }
        #expect(try client.depthBlocking(topology.failedQueue).ready == 3, "nothing dropped")
        // An operator reading them 25 times in the management UI ("Get messages": reject, requeue), which does count a
        // delivery each time: the parked queue has no delivery limit, so nothing is dropped either.
        let management = try TestServices.require("RABBITMQ_MGMT_URL")
        for _ in 1...25 {
            var request = HTTPRequest(
                method: .POST,
                url: "\(management)/api/queues/%2F/\(topology.failedQueue)/get",
                body: Array(#"{"count": 3, "ackmode": "reject_requeue_true", "encoding": "auto"}"#.utf8))
            request.headers = [("Content-Type", "application/json")]
            request.basicAuth = ("guest", Secret("guest"))
            #expect(try HTTPClient().execute(request).status == 200)
        }
        var depth = 0
        for _ in 0..<20 {  // a rejected message is back in the queue a moment later
            depth = try client.depthBlocking(topology.failedQueue).ready
            if depth == 3 { break }
            usleep(100_000)
        }
        #expect(depth == 3, "nothing dropped after 25 rejected reads")
        var ids: [String] = []
        try client.drainBlocking(topology.failedQueue) {
            ids.append($0.messageID ?? "")
            return .keep
        }
        #expect(ids.sorted() == parked.compactMap { $0.messageID }.sorted(), "the same messages, each once")
    }

    @Test(arguments: ["postgres", "redshift"]) func statusAndMetricsReportTheFleetAsItIs(target: String) throws {
        let us = SandboxAccount.defaults[0], eu = SandboxAccount.defaults[1]
        let fleet = try FleetHarness(
            accounts: [("us", us), ("revoked", eu)], tokens: ["revoked": "wrong-token-7q"],
            singular: [("spend", SandboxSingular.keys[0])], target: target)
        defer { fleet.cleanUp() }
        fleet.managementURL = try TestServices.require("RABBITMQ_MGMT_URL")
        try fleet.writeConfig()
        fleet.api.setFaults(SandboxFaults(rate: 0.05, latencyMs: 5))
        try fleet.applyDDL()
        try fleet.plan([
            "--from", TestDays.text(20), "--to", TestDays.text(21), "--resource", "calls", "--resource", "messages",
            "--resource", "campaigns",
        ])
        let workerPort = TestServices.freePort(), loaderPort = TestServices.freePort()
        let worker = try fleet.worker("w.log", concurrency: 3, idle: 120, extra: ["--metrics-port", String(workerPort)])
        let loader = try fleet.loader("l.log", idle: 120, extra: ["--metrics-port", String(loaderPort), "--queue-poll-seconds", "1"])
        defer {
            kill(worker, SIGKILL)
            kill(loader, SIGKILL)
        }

        // Wait for the run to settle: every good job loaded, the revoked channel's four jobs parked.
        let expectedCalls = Self.days.reduce(0) { $0 + SandboxAPI.expected(us, "calls", day: $1).count }
        let expectedMessages = Self.days.reduce(0) { $0 + SandboxAPI.expected(us, "messages", day: $1).count }
        let expectedCampaigns = Self.days.reduce(0) {
            $0 + SandboxSingular.records(key: SandboxSingular.keys[0], resource: "stats", day: $1.ordinal, revision: 0).count
        }
        let topology = FleetTopology(try fleet.config.queue, targets: ["local"])
        let client = QueueClient(url: try TestServices.amqpURL(), retryWindow: 5, logger: TestServices.logger)
        defer { client.close() }
        let deadline = Date().addingTimeInterval(120)
        var settled = false
        while Date() < deadline, !settled {
            settled =
                (try? fleet.rows("twilio_calls", channel: "us")) == expectedCalls
                && (try? fleet.rows("twilio_messages", channel: "us")) == expectedMessages
                && (try? fleet.rows("singular_campaigns", channel: "spend")) == expectedCampaigns
                && (try? client.depthBlocking(topology.failedQueue).ready) == 4
            if !settled { usleep(200_000) }
        }
        #expect(settled, "the run settled: \(fleet.log("w.log").suffix(1500)) loader: \(fleet.log("l.log").suffix(2500))")
        // The management API refreshes its figures every few seconds (unacked counts lag the acks): read status until
        // it has caught up.
        var code: Int32?
        var output = ""
        let caughtUp = Date().addingTimeInterval(20)
        repeat {
            (code, output) = try fleet.run("huskimo-planner", ["status", "--config", fleet.configPath, "--json"])
            if let json = output.firstIndex(of: "{").map({ String(output[$0...]) }),
                let status = try? JSONDecoder().decode(FleetStatus.self, from: Data(json.utf8)),
                status.queues.first(where: { $0.name == topology.extractQueue })?.consumers == 1,
                status.queues.first(where: { $0.name == topology.extractQueue })?.unacked == 0,
                status.queues.first(where: { $0.name == topology.loadQueue("local") })?.consumers == 1,
                status.queues.first(where: { $0.name == topology.failedQueue })?.ready == 4
            {
                break
            }
            usleep(500_000)
        } while Date() < caughtUp
        #expect(code == 1, "failed jobs make status exit 1")
        let json = try #require(output.firstIndex(of: "{").map { String(output[$0...]) })
        let status = try JSONDecoder().decode(FleetStatus.self, from: Data(json.utf8))
        #expect(status.queueSource == "management")
        let extract = try #require(status.queues.first { $0.name == topology.extractQueue })
        #expect(extract.ready == 0 && extract.unacked == 0 && extract.consumers == 1)
        let load = try #require(status.queues.first { $0.name == topology.loadQueue("local") })
        #expect(load.ready == 0 && load.consumers == 1)
        #expect(status.queues.first { $0.name == topology.failedQueue }?.ready == 4)
        #expect(status.failures.count == 1)
        #expect(status.failures.first.map { ($0.errorClass, $0.channel, $0.count) } ?? ("", "", 0) == ("permanent", "revoked", 4))
        #expect(status.failures.first?.newestMessage.contains("20003") == true)
        let fresh = { (table: String, channel: String) in
            status.freshness.first { $0.target == "local" && $0.table == table && $0.channel == channel }?.newestDay
        }
        #expect(fresh("twilio_calls", "us") == TestDays.text(21) && fresh("twilio_messages", "us") == TestDays.text(21))
        #expect(fresh("singular_campaigns", "spend") == TestDays.text(21))
        #expect(fresh("twilio_calls", "revoked") == nil)

        // The worker's counters are what it did.
        let w = try Self.scrape(workerPort)
        #expect(w.value("huskimo_jobs_total", ["resource": "calls", "outcome": "succeeded"]) == 2)
        #expect(w.value("huskimo_jobs_total", ["resource": "calls", "outcome": "failed"]) == 2)
        #expect(w.value("huskimo_jobs_total", ["resource": "messages", "outcome": "failed"]) == 2)
        #expect(w.value("huskimo_jobs_total", ["resource": "campaigns", "outcome": "succeeded"]) == 2)
        #expect(w.value("huskimo_records_total", ["resource": "calls"]) == Double(expectedCalls))
        #expect(w.value("huskimo_records_total", ["resource": "messages"]) == Double(expectedMessages))
        #expect((w.value("huskimo_api_requests_total", ["api": "twilio", "status_class": "4xx"]) ?? 0) >= 4, "the revoked channel's 401s")
        let twilio2xx = w.value("huskimo_api_requests_total", ["api": "twilio", "status_class": "2xx"]) ?? 0
        #expect(twilio2xx >= 4 && twilio2xx == w.value("huskimo_api_page_duration_seconds_count", ["api": "twilio"]))
        #expect((w.value("huskimo_api_requests_total", ["api": "singular", "status_class": "2xx"]) ?? 0) >= 2)
        #expect((w.value("huskimo_staged_bytes_total", ["resource": "calls"]) ?? 0) > 0)
        #expect(w.value("huskimo_jobs_in_flight", [:]) == 0)
        #expect(w.value("huskimo_api_concurrency", ["channel": "us"]).map { $0 >= 1 } == true)
        #expect(!w.text.contains(us.sid) && !Self.days.contains { w.text.contains($0.description) }, "no SIDs or days as labels")

        // The loader's: loads and rows per table, freshness, and the queue gauges it polls (once caught up).
        var l = try Self.scrape(loaderPort)
        let gauges = Date().addingTimeInterval(20)
        while Date() < gauges,
            l.value("huskimo_queue_messages_ready", ["queue": topology.failedQueue]) != 4
                || l.value("huskimo_queue_consumers", ["queue": topology.extractQueue]) != 1
                || l.value("huskimo_queue_messages_unacked", ["queue": topology.extractQueue]) != 0
        {
            usleep(500_000)
            l = try Self.scrape(loaderPort)
        }
        #expect(l.value("huskimo_loads_total", ["target": "local", "outcome": "succeeded"]) == 6)
        #expect(l.value("huskimo_load_rows_total", ["target": "local", "table": "twilio_calls"]) == Double(expectedCalls))
        #expect(l.value("huskimo_load_rows_total", ["target": "local", "table": "singular_campaigns"]) == Double(expectedCampaigns))
        #expect(
            l.value("huskimo_loaded_day_timestamp_seconds", ["target": "local", "table": "twilio_calls", "channel": "us"])
                == Double(TestDays.day(21).ordinal * 86_400))
        #expect(l.value("huskimo_queue_messages_ready", ["queue": topology.failedQueue]) == 4)
        #expect(l.value("huskimo_queue_consumers", ["queue": topology.extractQueue]) == 1)
        #expect(l.value("huskimo_queue_messages_unacked", ["queue": topology.extractQueue]) == 0)

        // A secrets scan of everything this faulty run wrote or shows: logs, status (text and JSON), both metrics
        // endpoints, the parked messages' bodies and headers, and the process list of the running worker and loader.
        let env = TestServices.env
        let secrets = [
            us.token, "wrong-token-7q", SandboxSingular.keys[0].key, env["POSTGRES_PASSWORD"] ?? "",
            env["S3_SECRET_ACCESS_KEY"] ?? "",
        ].filter { $0.count >= 8 }  // shorter ones (moto's "test") match anything
        var exposed: [String] = [w.text, l.text, output]
        exposed.append(try fleet.run("huskimo-planner", ["status", "--config", fleet.configPath]).1)
        exposed.append(try fleet.run("huskimo-planner", ["config", "--config", fleet.configPath]).1)
        try client.drainBlocking(topology.failedQueue) { delivery in
            exposed.append(String(decoding: delivery.body, as: UTF8.self) + "\(delivery.headers)")
            return .keep
        }
        let ps = Process()
        ps.executableURL = URL(fileURLWithPath: "/bin/ps")
        ps.arguments = ["-eo", "args"]
        let pipe = Pipe()
        ps.standardOutput = pipe
        try ps.run()
        let processes = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        ps.waitUntilExit()
        #expect(processes.contains("huskimo-worker extract"), "the scan saw the running processes")
        exposed.append(processes)
        for file in (try? FileManager.default.contentsOfDirectory(atPath: fleet.dir.path)) ?? [] where file.hasSuffix(".log") {
            exposed.append(fleet.log(file))
        }
        #expect(exposed.count >= 8)
        for secret in secrets {
            for (index, text) in exposed.enumerated() {
                #expect(!text.contains(secret), "a secret (\(secret.prefix(3))…) in exposed text \(index)")
            }
        }

        // Probes, then a clean stop.
        #expect(try Self.get(workerPort, "/readyz").status == 200 && Self.get(loaderPort, "/healthz").status == 200)
        kill(worker, SIGTERM)
        kill(loader, SIGTERM)
        #expect(fleet.wait(worker, timeout: 30) == 0 && fleet.wait(loader, timeout: 30) == 0)
        #expect(!fleet.log("w.log").contains("wrong-token-7q") && !fleet.log("w.log").contains(SandboxSingular.keys[0].key))
    }

    struct Scrape {
        let text: String
        /// The sample of `name` whose labels are exactly `labels`.
        func value(_ name: String, _ labels: [String: String]) -> Double? {
            for line in text.split(separator: "\n") where !line.hasPrefix("#") {
                guard let space = line.lastIndex(of: " ") else { continue }
                let series = line[..<space]
                let metric = series.firstIndex(of: "{").map { series[..<$0] } ?? series
                guard metric == name else { continue }
                var found: [String: String] = [:]
                if let open = series.firstIndex(of: "{"), series.hasSuffix("}") {
                    for pair in series[series.index(after: open)..<series.index(before: series.endIndex)].split(separator: ",") {
                        let kv = pair.split(separator: "=", maxSplits: 1)
                        if kv.count == 2 { found[String(kv[0])] = String(kv[1].dropFirst().dropLast()) }
                    }
                }
                if found == labels { return Double(line[line.index(after: space)...]) }
            }
            return nil
        }
    }

    static func get(_ port: Int, _ path: String) throws -> HTTPResponse {
        try HTTPClient().execute(HTTPRequest(url: "http://127.0.0.1:\(port)\(path)", timeout: 10))
    }

    static func scrape(_ port: Int) throws -> Scrape {
        let response = try get(port, "/metrics")
        #expect(response.status == 200)
        return Scrape(text: response.bodyText)
    }
}
