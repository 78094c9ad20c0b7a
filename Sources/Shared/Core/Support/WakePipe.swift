import Foundation

/// A self-pipe: ``signal()`` from any thread makes ``readFD`` readable, so a thread blocked in poll(2) on it and a
/// socket wakes up; ``drain()`` empties it. Signals collapse (a full pipe already says "wake up").
final class WakePipe: Sendable {
    let readFD: Int32
    private let writeFD: Int32

    package init() {
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) == 0 {
            for fd in fds {
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            }
        } else {
            fds = [-1, -1]
        }
        readFD = fds[0]
        writeFD = fds[1]
    }

    package func signal() {
        var byte: UInt8 = 1
        _ = write(writeFD, &byte, 1)  // EAGAIN: the pipe is full, the reader wakes anyway
    }

    package func drain() {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { buffer in
            while read(readFD, buffer.baseAddress, buffer.count) > 0 {}
        }
    }

    deinit {
        if readFD >= 0 { close(readFD) }
        if writeFD >= 0 { close(writeFD) }
    }
}
