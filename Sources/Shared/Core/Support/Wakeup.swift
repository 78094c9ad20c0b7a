import Synchronization

/// A one-slot wake-up call between tasks (one waiter at a time): ``notify()`` wakes the task in ``wait(timeout:)``, or the next one to
/// call it (a notification is never lost; several collapse into one). Lets a loop sleep until something happens
/// instead of polling on a short timer (each poll is a timer, a thread wake-up and a scheduled job).
package final class Wakeup: Sendable {
    private let state = Mutex<(pending: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    package init() {}

    package func notify() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if let waiter = s.waiter {
                s.waiter = nil
                return waiter
            }
            s.pending = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns after a notification, or after `timeout` seconds at the latest.
    package func wait(timeout: Double) async {
        let timer = Task {
            try? await Task.sleep(for: .milliseconds(Int(timeout * 1000)))
            if !Task.isCancelled { self.notify() }
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.pending {
                    s.pending = false
                    return true
                }
                precondition(s.waiter == nil, "Wakeup.wait has one waiter at a time")
                s.waiter = continuation
                return false
            }
            if now { continuation.resume() }
        }
        timer.cancel()
    }
}
