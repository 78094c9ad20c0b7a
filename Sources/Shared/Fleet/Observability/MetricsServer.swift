import CoreMetrics
import Foundation
import HuskimoConnectors
import HuskimoCore
import Prometheus

/// Serves `--metrics-port`: `/metrics` (Prometheus text format), `/healthz` (200 while the process runs) and
/// `/readyz` (200 while `ready()` says so, else 503: a worker not connected to its broker is not ready).
package final class MetricsServer: Sendable {
    private let server: HTTPServer
    package var port: Int { server.port }

    /// Starts serving on `host:port` (port 0: any free port). Loopback by default: widen it (`--metrics-host
    /// 0.0.0.0`) only where a scraper on another host needs it.
    package init(host: String = "127.0.0.1", port: Int, ready: @escaping @Sendable () -> Bool) throws {
        let registry = PrometheusExport.registry
        var limits = HTTPServer.Limits()
        limits.maxPerAddress = 48  // of 64: the kubelet's probes and the scraper always find a slot besides one host's
        server = HTTPServer(limits: limits) { request in
            switch request.path {
            case "/metrics":
                return .ok(
                    status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
                    body: registry.emitToBuffer())
            case "/healthz":
                return .ok(status: 200, headers: [("Content-Type", "text/plain")], body: Array("ok\n".utf8))
            case "/readyz":
                let ok = ready()
                return .ok(
                    status: ok ? 200 : 503, headers: [("Content-Type", "text/plain")], body: Array((ok ? "ready\n" : "not ready\n").utf8))
            default:
                return .ok(status: 404, headers: [("Content-Type", "text/plain")], body: Array("not found\n".utf8))
            }
        }
        try server.start(host: host, port: port)
    }

    package func stop() { server.stop() }
}

/// The Prometheus exporter behind the swift-metrics façade: bootstrapped once per process, on first use.
enum PrometheusExport {
    /// Histogram buckets for durations that are not request-sized.
    static let longDurations: [Duration] = [
        .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(5), .seconds(15), .seconds(60),
        .seconds(300), .seconds(900), .seconds(3600),
    ]

    static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = [
            "huskimo_job_duration_seconds": longDurations,
            "huskimo_load_duration_seconds": longDurations,
        ]
        MetricsSystem.bootstrap(factory)
        return registry
    }()

    /// What `/metrics` serves now (Prometheus text format).
    static func text() -> String { String(decoding: registry.emitToBuffer(), as: UTF8.self) }
}
