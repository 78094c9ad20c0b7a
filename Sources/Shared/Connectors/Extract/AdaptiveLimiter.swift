import Foundation
import HuskimoCore

/// Per-account concurrency learnt from the API's own answer. Twilio's 429 (20429) means "too many concurrent
/// requests for this account", and it is precise: a request refused while `n` of ours were in flight (itself
/// included) shows the account takes fewer than `n` at once, so the limit becomes `n − 1` (never below 1, never
/// raised by a 429). Several 429s of one burst agree instead of halving again and again, and a request that was
/// refused after others had already finished does not cut the limit below what the account just served.
/// Every `growAfter` successes in a row at the limit probe one more (up to `maximum`): accounts can be given more
/// room, and another worker sharing the account may have gone. Callers block in ``acquire()`` while the account is
/// at its limit; a refused request simply waits for the next free slot. Thread-safe.
package final class AdaptiveLimiter: @unchecked Sendable {  // all state under `condition`
    private let condition = NSCondition()
    private var limit: Int
    private var inFlight = 0
    private var successes = 0
    let maximum: Int
    private let growAfter: Int

    /// A slot: how many of ours were in flight when it was taken (itself included).
    package struct Ticket: Sendable { package let inFlight: Int }

    package init(initial: Int = 4, maximum: Int = 32, growAfter: Int = 20) {
        self.limit = max(1, min(initial, maximum))
        self.maximum = maximum
        self.growAfter = growAfter
    }

    package var currentLimit: Int { condition.withLock { limit } }

    /// Whether a request could start now without waiting.
    package var hasCapacity: Bool { condition.withLock { inFlight < limit } }

    /// Waits for a slot.
    func acquire() -> Ticket {
        condition.lock()
        while inFlight >= limit { condition.wait() }
        inFlight += 1
        let ticket = Ticket(inFlight: inFlight)
        condition.unlock()
        return ticket
    }

    /// Gives the slot back; `throttled`: the API refused the request as one too many (429).
    package func release(_ ticket: Ticket, throttled: Bool) {
        condition.lock()
        inFlight -= 1
        if throttled {
            limit = max(1, min(limit, ticket.inFlight - 1))
            successes = 0
        } else if ticket.inFlight >= limit {  // only a success at the limit says the limit is not too low
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
package final class AccountLimiters: @unchecked Sendable {  // `limiters` under `lock`
    private let lock = NSLock()
    private var limiters: [String: AdaptiveLimiter] = [:]
    private let initial: Int
    private let maximum: Int

    package init(initial: Int = 4, maximum: Int = 32) {
        self.initial = initial
        self.maximum = maximum
    }

    package func limiter(for account: String) -> AdaptiveLimiter {
        lock.withLock {
            if let existing = limiters[account] { return existing }
            let fresh = AdaptiveLimiter(initial: initial, maximum: maximum)
            limiters[account] = fresh
            return fresh
        }
    }
}
