/// Exponential backoff with full jitter, as swift-jobs' and Sidekiq's retry policies: attempt `n`
/// (0-based) waits a random time in `[base·2ⁿ/2, base·2ⁿ]`, capped at `max`.
package struct Backoff: Sendable, Hashable {
    package var base: Double
    package var max: Double

    package init(base: Double = 0.2, max: Double = 30) {
        self.base = base
        self.max = max
    }

    /// Reconnecting to a broker or server that went away: 0.2 s doubling to 5 s.
    static let reconnect = Backoff(base: 0.2, max: 5)

    /// The ceiling for attempt `n` before jitter.
    func ceiling(attempt: Int) -> Double {
        let exponent = Swift.min(attempt, 30)
        return Swift.min(max, base * Double(1 << exponent))
    }

    /// A jittered delay for attempt `n` in seconds.
    package func delay(attempt: Int) -> Double {
        let ceiling = ceiling(attempt: attempt)
        return Double.random(in: (ceiling / 2)...ceiling)
    }
}
