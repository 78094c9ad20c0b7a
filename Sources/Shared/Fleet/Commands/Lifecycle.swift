import Dispatch
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals

/// The processes' lifecycle on swift-service-lifecycle: a `ServiceGroup` whose first SIGTERM or SIGINT starts a
/// graceful shutdown (stop taking work, finish what is in flight within the grace period, hand the rest back).
/// A second SIGTERM or SIGINT, or a SIGQUIT, exits at once with 143: what was in flight is unacked and the
/// broker hands it out again. (ServiceGroup refuses one signal for both graceful shutdown and cancellation,
/// hence ``SignalWatcher``, which also covers the time before and after the group runs.)
enum Lifecycle {
    /// One unit of a process (a worker loop, a poller, a monitor) as a `Service`.
    package struct Unit: Service {
        package let name: String
        let body: @Sendable () async throws -> Void

        package init(_ name: String, _ body: @escaping @Sendable () async throws -> Void) {
            self.name = name
            self.body = body
        }

        package func run() async throws { try await body() }
    }

    /// Runs `units` in one service group until they have all returned. The first one to return (a worker idle for
    /// `--exit-when-idle`, the run's monitor seeing the work done) shuts the others down gracefully, in reverse
    /// order of the list: put what must stop taking work first last.
    package static func run(_ units: [Unit], logger: Logger) async throws {
        let configuration = ServiceGroupConfiguration(
            services: units.map {
                .init(
                    service: $0, successTerminationBehavior: .gracefullyShutdownGroup,
                    failureTerminationBehavior: .gracefullyShutdownGroup, serviceName: $0.name)
            },
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await ServiceGroup(configuration: configuration).run()
    }
}

/// Watches SIGTERM, SIGINT and SIGQUIT for a command's whole life: remembers that the operator asked to stop (the
/// command then exits 1 where it would have exited 0), and exits the process at once on a second SIGTERM or SIGINT
/// or any SIGQUIT. Installed before anything else (planning, connecting), so no signal is lost or fatal before the
/// service group takes over the graceful part.
final class SignalWatcher: @unchecked Sendable {  // `sources` is written once, in init
    private var sources: [any DispatchSourceSignal] = []
    private let count = Atomic<Int>(0)

    package init() {
        for sig in [SIGTERM, SIGINT, SIGQUIT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [self] in
                if count.add(1, ordering: .relaxed).newValue >= 2 || sig == SIGQUIT {
                    FileHandle.standardError.write(Data("huskimo: \(sig == SIGQUIT ? "SIGQUIT" : "second signal"), exiting now\n".utf8))
                    exit(143)
                }
            }
            source.resume()
            sources.append(source)
        }
    }

    /// Whether a stop was asked for.
    package var interrupted: Bool { count.load(ordering: .relaxed) > 0 }
}
