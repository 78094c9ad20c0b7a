import Foundation
import Synchronization
import Testing

/// Runs each test case of a suite on a thread outside Swift's cooperative pool.
///
/// The integration tests are synchronous: they block for minutes on child processes, sockets and the broker. Run
/// where Swift Testing runs them, on the cooperative pool (two threads on two cores), two such tests hold the whole
/// pool, and every other started test case waits for a thread while its time limit runs: CI saw a test case that
/// takes milliseconds fail "Time limit was exceeded: 120 seconds" behind two three-minute fleet tests, and events
/// reported minutes late. With this trait a test case's body runs on a thread of its own (Swift Testing's
/// parallelization width still bounds how many run at once), and the pool stays free for timers and events.
struct OwnThreadsTrait: SuiteTrait, TestTrait, TestScoping {
    var isRecursive: Bool { true }

    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        // The suite's own scope runs its children, which are scoped one by one.
        guard testCase != nil else { return try await function() }
        try await withTaskExecutorPreference(ThreadPoolExecutor.shared) { try await function() }
    }
}

extension Trait where Self == OwnThreadsTrait {
    /// Each test case runs on a thread of its own, not on the cooperative pool: see ``OwnThreadsTrait``.
    static var ownThreads: Self { OwnThreadsTrait() }
}

/// A task executor backed by a thread pool that grows whenever every thread is busy (a blocked job never
/// delays another) and keeps its idle threads for the next job.
final class ThreadPoolExecutor: TaskExecutor, @unchecked Sendable {  // state is guarded by `condition`
    static let shared = ThreadPoolExecutor()

    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    /// Threads waiting for work that no job has claimed yet.
    private var idle = 0
    /// Wake-ups handed to waiting threads (a wake-up without one is spurious and waits again).
    private var wakeUps = 0

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let spawn = condition.withLock {
            jobs.append(job)
            guard idle > 0 else { return true }
            // Claim a waiting thread for this job, so a second job enqueued before it wakes gets another.
            idle -= 1
            wakeUps += 1
            condition.signal()
            return false
        }
        if spawn {
            let thread = Thread { [self] in work() }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    private func work() {
        while true {
            let job = condition.withLock {
                while jobs.isEmpty {
                    idle += 1
                    while wakeUps == 0 { condition.wait() }
                    wakeUps -= 1
                }
                return jobs.removeFirst()
            }
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
