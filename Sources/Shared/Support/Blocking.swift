import Dispatch

/// Runs blocking C calls (`curl_easy_perform`, `PQexec`, `amqp_consume_message`) on threads of their own,
/// never on Swift's cooperative pool, so a slow server cannot starve the tasks that drive the fleet.
public enum Blocking {
    private static let queue = DispatchQueue(label: "huskimo.blocking", qos: .userInitiated, attributes: .concurrent)

    /// Runs `body` on a blocking-work thread and returns its result to the caller's task.
    public static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            queue.async {
                continuation.resume(with: Result { try body() })
            }
        }
    }
}
