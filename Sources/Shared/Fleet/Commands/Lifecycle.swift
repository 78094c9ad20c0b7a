import Dispatch
import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization
import UnixSignals

/// The processes' lifecycle on swift-service-lifecycle: a `ServiceGroup` whose first SIGTERM or SIGINT starts a
/// graceful shutdown (stop taking work, finish what is in flight within the grace period, hand the rest back),
/// SIGQUIT cancels, and a second SIGTERM or SIGINT exits at once (the operator insists; unacked work goes back to
/// the broker). ServiceGroup refuses one signal for both graceful shutdown and cancellation, hence the watcher.
public enum Lifecycle {
    /// Whether the current task should stop taking work: a graceful shutdown has begun, or it was cancelled.
    public static var stopping: Bool { Task.isShuttingDownGracefully || Task.isCancelled }

    /// One unit of a process (a worker loop, a poller, a monitor) as a `Service`.
    public struct Unit: Service {
        public let name: String
        let body: @Sendable () async throws -> Void

        public init(_ name: String, _ body: @escaping @Sendable () async throws -> Void) {
            self.name = name
            self.body = body
        }

        public func run() async throws { try await body() }
    }

    /// Runs `units` in one service group until they have all returned. The first one to return (a worker idle for
    /// `--exit-when-idle`, the run's monitor seeing the work done) shuts the others down gracefully.
    public static func run(_ units: [Unit], logger: Logger) async throws {
        let configuration = ServiceGroupConfiguration(
            services: units.map {
                .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup,
                      failureTerminationBehavior: .gracefullyShutdownGroup, serviceName: $0.name)
            },
            gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [.sigquit], logger: logger)
        let insistence = SecondSignalWatcher()
        try await ServiceGroup(configuration: configuration).run()
        insistence.cancel()
    }
}

/// Exits the process on the second SIGTERM or SIGINT (the first one is the service group's graceful shutdown).
final class SecondSignalWatcher: @unchecked Sendable {  // `sources` is written once, in init
    private let sources: [any DispatchSourceSignal]
    private let count = Atomic<Int>(0)

    init() {
        var sources: [any DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT] {
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            sources.append(source)
        }
        self.sources = sources
        for source in sources {
            source.setEventHandler { [self] in
                if count.add(1, ordering: .relaxed).newValue >= 2 {
                    FileHandle.standardError.write(Data("huskimo: second signal, exiting now\n".utf8))
                    exit(143)
                }
            }
            source.resume()
        }
    }

    func cancel() { for source in sources { source.cancel() } }
}
