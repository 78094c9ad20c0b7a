import Foundation

/// Runs blocking C calls (`curl_easy_perform`, `PQexec`, `amqp_consume_message`) on threads of their own,
/// never on Swift's cooperative pool, so a slow server cannot starve the tasks that drive the fleet.
///
/// One thread per call, not a dispatch queue: libdispatch caps a concurrent queue at the number of cores
/// (2 here) and cannot tell that its threads are blocked on a socket, so six "concurrent" jobs ran two at a
/// time. Calls are job- or request-sized, so a thread's start-up cost (tens of µs) does not matter.
package enum Blocking {
    /// Runs `body` on a thread of its own and returns its result to the caller's task.
    package static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let thread = Thread { continuation.resume(with: Result { try body() }) }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }
}
