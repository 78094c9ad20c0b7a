import ServiceLifecycle

/// What a worker's loop asks of the process's lifecycle (the service group in `Commands/Lifecycle.swift` runs the
/// loops; the loops only look here).
enum WorkLoop {
    /// How long a worker's idle loop waits for a delivery before it looks again at shutdown and idle time: a
    /// delivery ends the wait at once, so this only bounds how late a shutdown or an idle exit is noticed (and how
    /// often an idle process wakes: once a second, bench/run.sh idle: under 0.04 % of a core).
    static func idleWait(exitWhenIdle: Double?) -> Double { min(1, max(0.05, (exitWhenIdle ?? 4) / 4)) }

    /// Whether the current task should stop taking work: a graceful shutdown has begun, or it was cancelled.
    static var stopping: Bool { Task.isShuttingDownGracefully || Task.isCancelled }
}
