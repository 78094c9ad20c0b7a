import Foundation
import Synchronization

/// The nodes of one RabbitMQ cluster (`queue.url` as a list), each with its credentials and the same vhost, and
/// where this process connects next. Every process starts at its own place in the list (its pid), so a fleet's
/// connections spread over the nodes; a node that refuses the connection or does not answer within
/// ``connectTimeout`` is skipped, and the next connection after a loss goes to the node after the one that was lost.
/// A node that refuses the credentials or whose certificate does not verify is a configuration error: thrown at
/// once, not retried on the others.
package final class AMQPNodes: Sendable {
    package let urls: [AMQPURL]
    private let next: Atomic<Int>

    package init(_ urls: [AMQPURL], start: Int = Int(getpid())) {
        precondition(!urls.isEmpty, "at least one node")
        self.urls = urls
        self.next = Atomic(start % urls.count)
    }

    package convenience init(_ url: AMQPURL) { self.init([url], start: 0) }

    /// The first node's URL: the vhost and credentials the fleet's names and the management API go by.
    package var primary: AMQPURL { urls[0] }

    /// Seconds a node gets to accept and log in before the next is tried (one node: the connection's own 10 s).
    package var connectTimeout: Double { urls.count > 1 ? 3 : 10 }

    /// A live connection to the first node that answers, starting at this process's place in the list.
    /// - Throws: the last node's error when none answers (transient), or the first permanent one.
    func connect() throws -> AMQPConnection {
        var last: (any Error)?
        let first = next.load(ordering: .relaxed)
        for offset in 0..<urls.count {
            let index = (first + offset) % urls.count
            do {
                let connection = try AMQPConnection(url: urls[index], connectTimeout: connectTimeout)
                // The one after it is where the next connection starts, once this one is lost.
                next.store((index + 1) % urls.count, ordering: .relaxed)
                return connection
            } catch let error as AMQPError where !error.isRetriable {
                throw error
            } catch {
                last = error
            }
        }
        throw last ?? AMQPError(.connect, "no node to connect to")
    }
}
