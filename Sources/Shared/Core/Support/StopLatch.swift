import Foundation

/// A blocking sleep that a shutdown ends early: waits between retries (backoff, `Retry-After`) run on blocking
/// threads where task cancellation cannot reach, so the process that stops releases them through this latch
/// instead of sitting out a two-minute wait inside its grace period.
package final class StopLatch: @unchecked Sendable {
    // NSCondition guards `stopped`; every access holds it.
    private let condition = NSCondition()
    private var stopped = false

    package init() {}

    /// Ends every current and later ``sleep(_:)`` at once.
    package func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    package var isStopped: Bool {
        condition.lock()
        defer { condition.unlock() }
        return stopped
    }

    /// Sleeps `seconds`, or less if stopped meanwhile. Returns false when the sleep was cut short (or never began).
    @discardableResult
    package func sleep(_ seconds: Double) -> Bool {
        let deadline = Date(timeIntervalSinceNow: max(0, seconds))
        condition.lock()
        defer { condition.unlock() }
        while !stopped {
            if !condition.wait(until: deadline) { return true }
        }
        return false
    }
}
