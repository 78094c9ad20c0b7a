import Foundation
import Testing

@testable import HuskimoConnectors
@testable import HuskimoCore
@testable import HuskimoFleet

/// The metric names are a contract (alerts, dashboards, KEDA): the catalogue lists exactly what the recording
/// functions export through the real Prometheus exporter, and the shipped list is the catalogue.
@Suite struct MetricsCatalogueTests {
    @Test func everyRecordingFunctionExportsExactlyTheCataloguedNamesKindsAndLabels() throws {
        _ = PrometheusExport.registry  // the production exporter, bootstrapped once per process
        FleetMetrics.request(api: .twilio, status: 200, seconds: 0.1)
        FleetMetrics.request(api: .singular, status: 429, seconds: 0.1)
        FleetMetrics.job(resource: "calls", outcome: .succeeded, seconds: 1, records: 3, stagedBytes: 10)
        FleetMetrics.jobsInFlight(2)
        FleetMetrics.apiConcurrency(channel: "us", limit: 4)
        FleetMetrics.load(target: "wh", outcome: .succeeded)
        FleetMetrics.loadedTable(target: "wh", table: "twilio_calls", rows: 3, seconds: 0.2)
        FleetMetrics.loaderPaused(target: "wh", true)
        FleetMetrics.changedRecords(target: "wh", table: "twilio_calls", changed: 1, added: 1, removed: 1)
        FleetMetrics.loadedDay(target: "wh", table: "twilio_calls", channel: "us", day: Day("2026-12-01")!)
        FleetMetrics.queue("huskimo.extract", ready: 1, consumers: 1, unacked: 0, oldestReadyAge: 3, members: 3, online: 2)
        FleetMetrics.buildInfo(version: HuskimoVersion.current)
        FleetMetrics.unreconciledDays(target: "wh", count: 1)
        let text = PrometheusExport.text()  // what /metrics serves

        var kinds: [String: String] = [:]
        var labels: [String: Set<String>] = [:]
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE huskimo_") {
                let parts = line.split(separator: " ")
                kinds[String(parts[2])] = String(parts[3])
            } else if line.hasPrefix("huskimo_") {
                let name = String(line.prefix { $0 != "{" && $0 != " " })
                let base = ["_bucket", "_sum", "_count"].reduce(name) {
                    $0.hasSuffix($1) && kinds[$0] == nil ? String($0.dropLast($1.count)) : $0
                }
                if let open = line.firstIndex(of: "{"), let close = line.firstIndex(of: "}") {
                    let keys = line[line.index(after: open)..<close].split(separator: ",").map { String($0.prefix { $0 != "=" }) }
                    labels[base, default: []].formUnion(keys.filter { $0 != "le" })
                }
            }
        }
        let catalogue = Dictionary(uniqueKeysWithValues: FleetMetrics.catalogue.map { ($0.name, $0) })
        #expect(
            Set(kinds.keys) == Set(catalogue.keys),
            "exported \(Set(kinds.keys).symmetricDifference(catalogue.keys)) differ from the catalogue")
        for (name, kind) in kinds { #expect(catalogue[name]?.kind.rawValue == kind, "\(name) is a \(kind)") }
        for (name, keys) in labels { #expect(keys == Set(catalogue[name]?.labels ?? []), "\(name) labels \(keys)") }
    }

    @Test func theShippedListIsTheCatalogue() throws {
        let file = DeployContractTests.repo.appendingPathComponent("deploy/prometheus/metrics.json")
        #expect(
            try String(contentsOf: file, encoding: .utf8) == FleetMetrics.catalogueJSON,
            "regenerate with: huskimo-planner metrics > deploy/prometheus/metrics.json")
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(FleetMetrics.catalogueJSON.utf8)) as? [[String: Any]])
        #expect(
            parsed.count == FleetMetrics.catalogue.count && parsed.allSatisfy { ($0["name"] as? String)?.hasPrefix("huskimo_") == true })
    }
}
