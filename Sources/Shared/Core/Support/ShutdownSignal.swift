import Dispatch
import Foundation
import Synchronization

/// SIGTERM / SIGINT turned into a flag that long-running loops poll: stop taking work, finish what is in
/// flight within the grace period, return the rest to the queue, exit 0.
public final class ShutdownSignal: @unchecked Sendable {  // `sources` is written once, by install()
    private let flag = Atomic<Bool>(false)
    private var sources: [any DispatchSourceSignal] = []

    public init() {}

    /// Installs handlers for SIGTERM and SIGINT (call once, from main).
    public func install() {
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [self] in
                if flag.exchange(true, ordering: .relaxed) {
                    // A second signal: the operator insists.
                    FileHandle.standardError.write(Data("huskimo: second signal, exiting now\n".utf8))
                    exit(143)
                }
            }
            source.resume()
            sources.append(source)
        }
    }

    public var requested: Bool { flag.load(ordering: .relaxed) }
    public func request() { flag.store(true, ordering: .relaxed) }
}
