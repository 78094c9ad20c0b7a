/// An error from the RabbitMQ layer. `reason` is rabbitmq-c's text or the broker's reply text; it never
/// holds credentials or message bodies.
package struct AMQPError: ClassifiedError, Sendable {
    package struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String {
            case badURL, connect, login, channel, declare, publish, nacked, returned, consume, ack, connectionLost,
                consumerCancelled, timeout, closed
        }
        private let base: Base
        static let badURL = Code(base: .badURL)
        package static let connect = Code(base: .connect)
        static let login = Code(base: .login)
        package static let channel = Code(base: .channel)
        package static let declare = Code(base: .declare)
        package static let publish = Code(base: .publish)
        /// The broker refused a published message (basic.nack).
        static let nacked = Code(base: .nacked)
        /// A mandatory message was unroutable (basic.return): no queue is bound for its routing key.
        package static let returned = Code(base: .returned)
        package static let consume = Code(base: .consume)
        package static let ack = Code(base: .ack)
        static let connectionLost = Code(base: .connectionLost)
        static let consumerCancelled = Code(base: .consumerCancelled)
        package static let timeout = Code(base: .timeout)
        package static let closed = Code(base: .closed)
        package var description: String { base.rawValue }
    }

    package let code: Code
    package let reason: String
    package let errorClass: ErrorClass
    let file: String
    let line: UInt

    init(
        _ code: Code, _ reason: String, class errorClass: ErrorClass = .transient, file: String = #fileID,
        line: UInt = #line
    ) {
        self.code = code
        self.reason = reason
        self.errorClass = errorClass
        self.file = file
        self.line = line
    }

    package var description: String { "AMQPError.\(code): \(reason) (\(file):\(line))" }
}
