import Foundation
import HuskimoCore

/// Per-account concurrency that adapts to the API, like TCP's congestion window: a 429 halves the limit
/// (never below 1) — once per burst: 429s of requests that started before the last decrease do not halve it
/// again — and every `growAfter` successes in a row raise it by one (up to `maximum`). Callers block in
/// ``acquire()`` while the account is at its limit. Thread-safe.
public final class AdaptiveLimiter: @unchecked Sendable {  // all state under `condition`
    private let condition = NSCondition()
    private var limit: Int
    private var inFlight = 0
    private var successes = 0
    /// Bumped at every decrease; a request remembers the epoch it started in.
    private var epoch = 0
    public let maximum: Int
    private let growAfter: Int

    public init(initial: Int = 4, maximum: Int = 32, growAfter: Int = 20) {
        self.limit = max(1, min(initial, maximum))
        self.maximum = maximum
        self.growAfter = growAfter
    }

    public var currentLimit: Int { condition.withLock { limit } }

    /// Whether a request could start now without waiting.
    public var hasCapacity: Bool { condition.withLock { inFlight < limit } }

    /// Waits for a slot. - Returns: the epoch to hand back to ``release(throttled:epoch:)``.
    @discardableResult
    public func acquire() -> Int {
        condition.lock()
        while inFlight >= limit { condition.wait() }
        inFlight += 1
        let current = epoch
        condition.unlock()
        return current
    }

    public func release(throttled: Bool, epoch started: Int = Int.max) {
        condition.lock()
        inFlight -= 1
        if throttled {
            if started >= epoch {
                limit = max(1, limit / 2)
                epoch += 1
            }
            successes = 0
        } else {
            successes += 1
            if successes >= growAfter && limit < maximum {
                limit += 1
                successes = 0
            }
        }
        condition.broadcast()
        condition.unlock()
    }
}

/// The limiters of every account this process talks to, by account SID.
public final class AccountLimiters: @unchecked Sendable {  // `limiters` under `lock`
    private let lock = NSLock()
    private var limiters: [String: AdaptiveLimiter] = [:]
    private let initial: Int
    private let maximum: Int

    public init(initial: Int = 4, maximum: Int = 32) {
        self.initial = initial
        self.maximum = maximum
    }

    public func limiter(for account: String) -> AdaptiveLimiter {
        lock.withLock {
            if let existing = limiters[account] { return existing }
            let fresh = AdaptiveLimiter(initial: initial, maximum: maximum)
            limiters[account] = fresh
            return fresh
        }
    }
}
