import HuskimoConnectors
import HuskimoCore

/// When a failed job is tried again and when it is parked, for both workers: the delay-queue ladder and the
/// attempt limit (`queue.retry_delays`, `queue.max_attempts`), and the backoff of a loader waiting for its
/// warehouse. As swift-jobs' `JobRetryStrategy` and Sidekiq's retry set.
struct RetryPolicy: Sendable, Hashable {
    /// The delay queues' TTLs in seconds; the last rung repeats.
    package var delays: [Int]
    /// Attempts before a transiently failing job is parked.
    package var maxAttempts: Int

    package init(delays: [Int], maxAttempts: Int) {
        precondition(!delays.isEmpty && maxAttempts >= 1, "a retry policy needs a delay and at least one attempt")
        self.delays = delays
        self.maxAttempts = maxAttempts
    }

    package init(_ queue: QueueConfig) { self.init(delays: queue.retryDelays, maxAttempts: queue.maxAttempts) }

    /// What to do with a job whose attempt number `attempt` (0 for the first) just failed.
    package enum Decision: Sendable, Hashable {
        /// Publish it again as attempt `attempt`, after `delay` seconds (0: at once).
        case retry(attempt: Int, delay: Int)
        /// Park it in the failed queue, `attempts` attempts spent.
        case park(attempts: Int)
    }

    /// After a failure of class `errorClass`: transient ones are retried while attempts remain, permanent
    /// ones parked at once.
    func afterFailure(attempt: Int, errorClass: ErrorClass) -> Decision {
        let next = attempt + 1
        guard errorClass == .transient, next < maxAttempts else { return .park(attempts: next) }
        return .retry(attempt: next, delay: delay(attempt: next))
    }

    /// After a redelivery (the worker holding the job died): that counts as an attempt, so a job that kills
    /// workers ends parked instead of looping; while attempts remain it goes straight back to the work queue.
    func afterRedelivery(attempt: Int) -> Decision {
        switch afterFailure(attempt: attempt, errorClass: .transient) {
        case .retry(let next, _): return .retry(attempt: next, delay: 0)
        case .park(let attempts): return .park(attempts: attempts)
        }
    }

    /// The delay queue of attempt `attempt` (1-based after the first failure).
    package func delay(attempt: Int) -> Int { delays[min(max(attempt - 1, 0), delays.count - 1)] }

    /// A loader holding a batch while its warehouse is unavailable: 1 s doubling to a minute, with jitter.
    static let warehouseBackoff = Backoff(base: 1, max: 60)
}
