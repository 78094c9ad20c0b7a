/// An error from the RabbitMQ layer. `reason` is rabbitmq-c's text or the broker's reply text; it never
/// holds credentials or message bodies.
public struct AMQPError: ClassifiedError, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String {
            case badURL, connect, login, channel, declare, publish, nacked, returned, consume, ack, connectionLost,
                consumerCancelled, timeout, closed
        }
        private let base: Base
        public static let badURL = Code(base: .badURL)
        public static let connect = Code(base: .connect)
        public static let login = Code(base: .login)
        public static let channel = Code(base: .channel)
        public static let declare = Code(base: .declare)
        public static let publish = Code(base: .publish)
        /// The broker refused a published message (basic.nack).
        public static let nacked = Code(base: .nacked)
        /// A mandatory message was unroutable (basic.return): no queue is bound for its routing key.
        public static let returned = Code(base: .returned)
        public static let consume = Code(base: .consume)
        public static let ack = Code(base: .ack)
        public static let connectionLost = Code(base: .connectionLost)
        public static let consumerCancelled = Code(base: .consumerCancelled)
        public static let timeout = Code(base: .timeout)
        public static let closed = Code(base: .closed)
        public var description: String { base.rawValue }
    }

    public let code: Code
    public let reason: String
    public let errorClass: ErrorClass
    let file: String
    let line: UInt

    init(_ code: Code, _ reason: String, class errorClass: ErrorClass = .transient, file: String = #fileID,
         line: UInt = #line) {
        self.code = code
        self.reason = reason
        self.errorClass = errorClass
        self.file = file
        self.line = line
    }

    public var description: String { "AMQPError.\(code): \(reason) (\(file):\(line))" }
}
