internal import CRabbitMQ
import Foundation

/// Method ids of AMQP 0-9-1 (class << 16 | method). rabbitmq-c defines them as casting macros that Swift
/// does not import.
enum AMQPMethod {
    static let connectionClose: UInt32 = 0x000A_0032
    static let channelClose: UInt32 = 0x0014_0028
    static let channelCloseOk: UInt32 = 0x0014_0029
    static let basicCancel: UInt32 = 0x003C_001E
    static let basicReturn: UInt32 = 0x003C_0032
    static let basicAck: UInt32 = 0x003C_0050
    static let basicNack: UInt32 = 0x003C_0078
}

/// Basic-properties flag bits (`AMQP_BASIC_*_FLAG`).
enum AMQPFlag {
    static let contentType: UInt32 = 1 << 15
    static let headers: UInt32 = 1 << 13
    static let deliveryMode: UInt32 = 1 << 12
    static let messageID: UInt32 = 1 << 7
    static let timestamp: UInt32 = 1 << 6
}

/// One message handed to a consumer.
package struct AMQPDelivery: Sendable {
    package let deliveryTag: UInt64
    /// Which connection delivered it: an ack for an older connection is meaningless (the broker has
    /// already put the message back), so it is dropped.
    package let generation: Int
    package let exchange: String
    package let routingKey: String
    package let redelivered: Bool
    package let messageID: String?
    package let headers: AMQPTable
    package let body: [UInt8]

    package init(
        deliveryTag: UInt64, generation: Int, exchange: String, routingKey: String, redelivered: Bool,
        messageID: String?, headers: AMQPTable, body: [UInt8]
    ) {
        self.deliveryTag = deliveryTag
        self.generation = generation
        self.exchange = exchange
        self.routingKey = routingKey
        self.redelivered = redelivered
        self.messageID = messageID
        self.headers = headers
        self.body = body
    }
}

/// A message to publish.
package struct AMQPMessage: Sendable {
    package var exchange: String
    package var routingKey: String
    package var body: [UInt8]
    package var headers: AMQPTable
    package var messageID: String?
    var persistent: Bool
    /// Ask the broker to return the message if no queue is bound for it (the publish then fails).
    package var mandatory: Bool

    package init(
        exchange: String, routingKey: String, body: [UInt8], headers: AMQPTable = [:], messageID: String? = nil,
        persistent: Bool = true, mandatory: Bool = true
    ) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.body = body
        self.headers = headers
        self.messageID = messageID.map(AMQPMessage.boundedID)
        self.persistent = persistent
        self.mandatory = mandatory
    }

    /// AMQP's `message_id` holds at most 255 bytes: a longer id (a hostile load id, an unknown 300-byte channel name)
    /// keeps its first 160 bytes and gets its SHA-256 after them, so a message can always be published — parking
    /// never fails on the id. The full id travels in the body or a header.
    static func boundedID(_ id: String) -> String {
        guard id.utf8.count > 255 else { return id }
        var head = ""
        for scalar in id.unicodeScalars {
            guard head.utf8.count + String(scalar).utf8.count <= 160 else { break }
            head.unicodeScalars.append(scalar)
        }
        return head + "…sha256:" + Digest.sha256Hex(Array(id.utf8))
    }
}

/// One rabbitmq-c connection with one channel (number 1). Not thread-safe: its owner serialises every call.
/// Every blocking call has a timeout so shutdown cannot hang. After any error the connection is
/// `broken` and must be replaced; the owner (``QueueClient``, ``QueueConsumer``) reconnects.
final class AMQPConnection {
    private let state: amqp_connection_state_t
    private let channel: amqp_channel_t = 1
    private(set) var broken = false
    private var confirmsEnabled = false
    private var nextPublishTag: UInt64 = 1
    private var consumerTag: String?
    /// The broker's major version (its `version` server property: 3 for 3.x, 4 for 4.x; 0 when it sent none).
    private(set) var serverMajorVersion = 0
    /// Which node this connection reached (`host:port`), for logs.
    let endpoint: String

    /// Opens the socket, logs in and opens channel 1. On failure everything is freed here: `self.state` is
    /// assigned last, because a class whose stored properties are all set runs `deinit` even when its
    /// initialiser throws, and the connection must be destroyed exactly once.
    init(url: AMQPURL, connectTimeout: Double = 10) throws {
        endpoint = "\(url.host):\(url.port)"
        guard let state = amqp_new_connection() else { throw AMQPError(.connect, "out of memory") }
        // Without these, login and every RPC wait forever on a broker that accepts TCP but does not answer
        // (one still booting after a restart, say).
        var handshake = timeval(seconds: connectTimeout)
        amqp_set_handshake_timeout(state, &handshake)
        var rpc = timeval(seconds: 30)
        amqp_set_rpc_timeout(state, &rpc)
        let socket: OpaquePointer?
        if url.tls {
            socket = amqp_ssl_socket_new(state)
            if let socket {
                // The broker's certificate and name are verified, against the configured CA or the system's.
                amqp_ssl_socket_set_verify_peer(socket, 1)
                amqp_ssl_socket_set_verify_hostname(socket, 1)
                let ca = url.caCertFile ?? SystemCA.bundle
                if let ca, amqp_ssl_socket_set_cacert(socket, ca) != AMQP_STATUS_OK.rawValue {
                    amqp_destroy_connection(state)
                    throw AMQPError(.connect, "cannot read the CA bundle \(ca) (cacertfile)", class: .permanent)
                }
            }
        } else {
            socket = amqp_tcp_socket_new(state)
        }
        guard let socket else {
            amqp_destroy_connection(state)
            throw AMQPError(.connect, "cannot create socket")
        }
        var timeout = timeval(seconds: connectTimeout)
        let status = amqp_socket_open_noblock(socket, url.host, Int32(url.port), &timeout)
        guard status == AMQP_STATUS_OK.rawValue else {
            amqp_destroy_connection(state)
            // A certificate that does not verify will not verify on the next try either.
            let verification = [AMQP_STATUS_SSL_PEER_VERIFY_FAILED.rawValue, AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED.rawValue].contains(
                status)
            throw AMQPError(
                .connect,
                "cannot connect to \(url.host):\(url.port): \(AMQPConnection.text(status))"
                    + (verification ? " (the broker's certificate does not verify: set cacertfile=… in queue.url, or fix its name)" : ""),
                class: verification ? .permanent : .transient)
        }
        let reply = CRabbitMQ_login_plain(
            state, url.vhost, 0, 131072, Int32(url.heartbeatSeconds), url.user, url.password.reveal())
        if reply.reply_type != AMQP_RESPONSE_NORMAL {
            let reason = AMQPConnection.describe(reply)
            amqp_destroy_connection(state)
            throw AMQPError(
                .login, "login as \(url.user) to vhost \(url.vhost) failed: \(reason)",
                class: reason.contains("ACCESS_REFUSED") ? .permanent : .transient)
        }
        amqp_channel_open(state, 1)
        let open = amqp_get_rpc_reply(state)
        guard open.reply_type == AMQP_RESPONSE_NORMAL else {
            let reason = AMQPConnection.describe(open)
            amqp_destroy_connection(state)
            throw AMQPError(.channel, "channel.open: \(reason)")
        }
        if let properties = amqp_get_server_properties(state),
            let version = AMQPTableReader.table(properties.pointee)["version"]?.stringValue
        {
            serverMajorVersion = Int(version.prefix { $0.isNumber }) ?? 0
        }
        self.state = state
    }

    deinit {
        if !broken {
            amqp_channel_close(state, channel, Int32(AMQP_REPLY_SUCCESS))
            amqp_connection_close(state, Int32(AMQP_REPLY_SUCCESS))
        }
        amqp_destroy_connection(state)
    }

    // MARK: - Topology

    func declareExchange(_ name: String, type: String = "direct") throws {
        let arena = AMQPTableArena()
        amqp_exchange_declare(state, channel, arena.bytes(name), arena.bytes(type), 0, 1, 0, 0, amqp_table_t())
        try check(.declare, "exchange.declare \(name)")
    }

    /// Declares a durable queue; returns (ready messages, consumers).
    @discardableResult
    func declareQueue(
        _ name: String, arguments: AMQPTable = [:], passive: Bool = false
    ) throws -> (
        messages: Int, consumers: Int
    ) {
        let arena = AMQPTableArena()
        let ok = amqp_queue_declare(state, channel, arena.bytes(name), passive ? 1 : 0, 1, 0, 0, arena.table(arguments))
        try check(.declare, "queue.declare \(name)")
        guard let ok else { throw AMQPError(.declare, "queue.declare \(name): no reply") }
        return (Int(ok.pointee.message_count), Int(ok.pointee.consumer_count))
    }

    /// Declares `name` as an exclusive, auto-deleted queue of this connection: the broker lets one connection of the
    /// whole cluster hold a name, and frees it when that connection closes (or dies). - Returns: false when another
    /// connection holds it (405 RESOURCE_LOCKED: the channel the broker closed is opened again).
    func claimExclusive(_ name: String) throws -> Bool {
        let arena = AMQPTableArena()
        _ = amqp_queue_declare(state, channel, arena.bytes(name), 0, 0, 1, 1, amqp_table_t())
        let reply = amqp_get_rpc_reply(state)
        if reply.reply_type == AMQP_RESPONSE_NORMAL { return true }
        if reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION, reply.reply.id == AMQPMethod.channelClose,
            reply.reply.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee.reply_code == 405
        {
            var closeOK = amqp_channel_close_ok_t()
            guard amqp_send_method(state, channel, AMQPMethod.channelCloseOk, &closeOK) == AMQP_STATUS_OK.rawValue else {
                broken = true
                throw AMQPError(.channel, "channel.close-ok after queue.declare \(name) failed")
            }
            amqp_channel_open(state, channel)
            try check(.channel, "channel.open after queue.declare \(name)")
            return false
        }
        broken = true
        throw AMQPError(.declare, "queue.declare \(name): \(AMQPConnection.describe(reply))")
    }

    func bindQueue(_ queue: String, exchange: String, routingKey: String) throws {
        let arena = AMQPTableArena()
        amqp_queue_bind(state, channel, arena.bytes(queue), arena.bytes(exchange), arena.bytes(routingKey), amqp_table_t())
        try check(.declare, "queue.bind \(queue)")
    }

    func deleteQueue(_ name: String) throws {
        let arena = AMQPTableArena()
        amqp_queue_delete(state, channel, arena.bytes(name), 0, 0)
        try check(.declare, "queue.delete \(name)")
    }

    func deleteExchange(_ name: String) throws {
        let arena = AMQPTableArena()
        amqp_exchange_delete(state, channel, arena.bytes(name), 0)
        try check(.declare, "exchange.delete \(name)")
    }

    // MARK: - Publishing

    /// Publishes a batch and, with confirms on, waits until the broker has confirmed every message.
    /// - Throws: `.nacked` / `.returned` (permanent for this message) or a transient error; on a transient
    ///   error some messages may have been stored: publishers rely on idempotent consumers.
    func publish(_ messages: [AMQPMessage], timeout: Double = 30) throws {
        if !confirmsEnabled {
            amqp_confirm_select(state, channel)
            try check(.publish, "confirm.select")
            confirmsEnabled = true
        }
        let firstTag = nextPublishTag
        for message in messages {
            let arena = AMQPTableArena()
            var properties = amqp_basic_properties_t()
            properties._flags = AMQPFlag.contentType | AMQPFlag.deliveryMode | AMQPFlag.timestamp
            properties.content_type = arena.bytes("application/json")
            properties.delivery_mode = message.persistent ? 2 : 1
            properties.timestamp = UInt64(Date().timeIntervalSince1970)
            if !message.headers.isEmpty {
                properties._flags |= AMQPFlag.headers
                properties.headers = arena.table(message.headers)
            }
            if let id = message.messageID {
                properties._flags |= AMQPFlag.messageID
                properties.message_id = arena.bytes(id)
            }
            let status = message.body.withUnsafeBytes { body in
                amqp_basic_publish(
                    state, channel, arena.bytes(message.exchange), arena.bytes(message.routingKey),
                    message.mandatory ? 1 : 0, 0, &properties, CRabbitMQ_bytes(body.baseAddress, body.count))
            }
            guard status == AMQP_STATUS_OK.rawValue else {
                broken = true
                throw AMQPError(.publish, "basic.publish: \(AMQPConnection.text(status))")
            }
            nextPublishTag += 1
        }
        try waitForConfirms(from: firstTag, through: nextPublishTag - 1, timeout: timeout)
    }

    private func waitForConfirms(from first: UInt64, through last: UInt64, timeout: Double) throws {
        guard last >= first else { return }
        let deadline = Date().addingTimeInterval(timeout)
        var confirmed = first - 1  // every tag ≤ confirmed is settled
        var pendingAcks = Set<UInt64>()  // acks for single tags above `confirmed`
        var returned: String?
        var nacked = false
        while confirmed < last {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else {
                broken = true
                throw AMQPError(.timeout, "no publisher confirm within \(Int(timeout)) s")
            }
            var frame = amqp_frame_t()
            var tv = timeval(seconds: min(remaining, 1))
            let status = amqp_simple_wait_frame_noblock(state, &frame, &tv)
            if status == AMQP_STATUS_TIMEOUT.rawValue { continue }
            guard status == AMQP_STATUS_OK.rawValue else {
                broken = true
                throw AMQPError(.connectionLost, "waiting for confirms: \(AMQPConnection.text(status))")
            }
            guard frame.frame_type == UInt8(AMQP_FRAME_METHOD) else { continue }
            let method = frame.payload.method
            switch method.id {
            case AMQPMethod.basicAck, AMQPMethod.basicNack:
                let (tag, multiple): (UInt64, Bool)
                if method.id == AMQPMethod.basicAck {
                    let ack = method.decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
                    (tag, multiple) = (ack.delivery_tag, ack.multiple != 0)
                } else {
                    let nack = method.decoded.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
                    (tag, multiple) = (nack.delivery_tag, nack.multiple != 0)
                    if tag >= first { nacked = true }
                }
                if multiple {
                    confirmed = max(confirmed, tag)
                } else {
                    pendingAcks.insert(tag)
                }
                while pendingAcks.remove(confirmed + 1) != nil { confirmed += 1 }
            case AMQPMethod.basicReturn:
                let ret = method.decoded.assumingMemoryBound(to: amqp_basic_return_t.self).pointee
                returned = "unroutable: exchange \(ret.exchange.string) routing key \(ret.routing_key.string): \(ret.reply_text.string)"
                // The returned content (header + body frames) follows; read and drop it.
                var message = amqp_message_t()
                let reply = amqp_read_message(state, channel, &message, 0)
                if reply.reply_type == AMQP_RESPONSE_NORMAL { amqp_destroy_message(&message) }
            case AMQPMethod.channelClose, AMQPMethod.connectionClose:
                broken = true
                throw AMQPError(.connectionLost, "broker closed the channel: \(AMQPConnection.closeText(method))")
            default:
                continue
            }
        }
        if let returned { throw AMQPError(.returned, returned, class: .permanent) }
        if nacked { throw AMQPError(.nacked, "broker nacked a published message") }
    }

    // MARK: - Consuming

    func startConsuming(queue: String, prefetch: Int, arguments: AMQPTable = [:]) throws {
        amqp_basic_qos(state, channel, 0, UInt16(clamping: prefetch), 0)
        try check(.consume, "basic.qos")
        let arena = AMQPTableArena()
        let ok = amqp_basic_consume(state, channel, arena.bytes(queue), amqp_bytes_t(), 0, 0, 0, arena.table(arguments))
        try check(.consume, "basic.consume \(queue)")
        consumerTag = ok.map { $0.pointee.consumer_tag.string }
    }

    func cancelConsuming() throws {
        guard let tag = consumerTag else { return }
        let arena = AMQPTableArena()
        amqp_basic_cancel(state, channel, arena.bytes(tag))
        consumerTag = nil
        try check(.consume, "basic.cancel")
    }

    /// Waits up to `timeout` seconds for a delivery; nil when none came.
    /// Blocks until the broker has sent something, `wake` becomes readable, or `timeout` seconds pass, without
    /// spinning: returns at once when rabbitmq-c already holds unread bytes or frames. - Returns: `broker`, whether
    /// there is something to read from the broker (also on a socket error or hang-up, which the next read reports);
    /// `woken`, whether `wake` is readable.
    func waitReadable(wake: Int32, timeout: Double) -> (broker: Bool, woken: Bool) {
        if amqp_frames_enqueued(state) != 0 || amqp_data_in_buffer(state) != 0 { return (true, false) }
        let fd = amqp_get_sockfd(state)
        guard fd >= 0 else { return (true, false) }
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
        let n = poll(&fds, 2, Int32(max(0, min(timeout, 3600)) * 1000))
        return n < 0 ? (false, false) : (fds[0].revents != 0, fds[1].revents != 0)
    }

    func nextDelivery(timeout: Double, generation: Int) throws -> AMQPDelivery? {
        amqp_maybe_release_buffers(state)
        var envelope = amqp_envelope_t()
        var tv = timeval(seconds: timeout)
        let reply = amqp_consume_message(state, &envelope, &tv, 0)
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            defer { amqp_destroy_envelope(&envelope) }
            let props = envelope.message.properties
            let headers = props._flags & AMQPFlag.headers != 0 ? AMQPTableReader.table(props.headers) : [:]
            let id = props._flags & AMQPFlag.messageID != 0 ? props.message_id.string : nil
            return AMQPDelivery(
                deliveryTag: envelope.delivery_tag, generation: generation, exchange: envelope.exchange.string,
                routingKey: envelope.routing_key.string, redelivered: envelope.redelivered != 0, messageID: id,
                headers: headers, body: envelope.message.body.array)
        case AMQP_RESPONSE_LIBRARY_EXCEPTION where reply.library_error == AMQP_STATUS_TIMEOUT.rawValue:
            return nil
        case AMQP_RESPONSE_LIBRARY_EXCEPTION where reply.library_error == AMQP_STATUS_UNEXPECTED_STATE.rawValue:
            // A frame other than a delivery arrived: a cancel, a close, or a late confirm. Read it.
            var frame = amqp_frame_t()
            var zero = timeval(seconds: 0.5)
            let status = amqp_simple_wait_frame_noblock(state, &frame, &zero)
            guard status == AMQP_STATUS_OK.rawValue else {
                if status == AMQP_STATUS_TIMEOUT.rawValue { return nil }
                broken = true
                throw AMQPError(.connectionLost, "reading frame: \(AMQPConnection.text(status))")
            }
            if frame.frame_type == UInt8(AMQP_FRAME_METHOD) {
                switch frame.payload.method.id {
                case AMQPMethod.basicCancel:
                    broken = true
                    throw AMQPError(.consumerCancelled, "the broker cancelled the consumer (queue deleted or consumer_timeout)")
                case AMQPMethod.channelClose, AMQPMethod.connectionClose:
                    broken = true
                    throw AMQPError(.connectionLost, "broker closed: \(AMQPConnection.closeText(frame.payload.method))")
                default:
                    return nil
                }
            }
            return nil
        default:
            broken = true
            throw AMQPError(.connectionLost, "consume: \(AMQPConnection.describe(reply))")
        }
    }

    func ack(_ tag: UInt64, multiple: Bool = false) throws {
        let status = amqp_basic_ack(state, channel, tag, multiple ? 1 : 0)
        guard status == AMQP_STATUS_OK.rawValue else {
            broken = true
            throw AMQPError(.ack, "basic.ack: \(AMQPConnection.text(status))")
        }
    }

    func nack(_ tag: UInt64, requeue: Bool) throws {
        let status = amqp_basic_nack(state, channel, tag, 0, requeue ? 1 : 0)
        guard status == AMQP_STATUS_OK.rawValue else {
            broken = true
            throw AMQPError(.ack, "basic.nack: \(AMQPConnection.text(status))")
        }
    }

    func reject(_ tag: UInt64, requeue: Bool) throws {
        let status = amqp_basic_reject(state, channel, tag, requeue ? 1 : 0)
        guard status == AMQP_STATUS_OK.rawValue else {
            broken = true
            throw AMQPError(.ack, "basic.reject: \(AMQPConnection.text(status))")
        }
    }

    /// Fetches one message with basic.get (for draining parking-lot queues); nil when the queue is empty.
    func get(queue: String, generation: Int) throws -> AMQPDelivery? {
        let arena = AMQPTableArena()
        let reply = amqp_basic_get(state, channel, arena.bytes(queue), 0)
        guard reply.reply_type == AMQP_RESPONSE_NORMAL else {
            broken = true
            throw AMQPError(.consume, "basic.get \(queue): \(AMQPConnection.describe(reply))")
        }
        guard reply.reply.id == 0x003C_0047 else { return nil }  // basic.get-empty is 0x003C0048
        let ok = reply.reply.decoded.assumingMemoryBound(to: amqp_basic_get_ok_t.self).pointee
        var message = amqp_message_t()
        let read = amqp_read_message(state, channel, &message, 0)
        guard read.reply_type == AMQP_RESPONSE_NORMAL else {
            broken = true
            throw AMQPError(.consume, "basic.get \(queue) content: \(AMQPConnection.describe(read))")
        }
        defer { amqp_destroy_message(&message) }
        let props = message.properties
        return AMQPDelivery(
            deliveryTag: ok.delivery_tag, generation: generation, exchange: ok.exchange.string,
            routingKey: ok.routing_key.string, redelivered: ok.redelivered != 0,
            messageID: props._flags & AMQPFlag.messageID != 0 ? props.message_id.string : nil,
            headers: props._flags & AMQPFlag.headers != 0 ? AMQPTableReader.table(props.headers) : [:],
            body: message.body.array)
    }

    // MARK: - Errors

    private func check(_ code: AMQPError.Code, _ what: String) throws {
        let reply = amqp_get_rpc_reply(state)
        guard reply.reply_type != AMQP_RESPONSE_NORMAL else { return }
        broken = true
        let reason = AMQPConnection.describe(reply)
        // 404 NOT_FOUND, 406 PRECONDITION_FAILED (arguments differ), 403 ACCESS_REFUSED won't heal by retrying.
        let permanent =
            reason.contains("NOT_FOUND") || reason.contains("PRECONDITION_FAILED")
            || reason.contains("ACCESS_REFUSED")
        throw AMQPError(code, "\(what): \(reason)", class: permanent ? .permanent : .transient)
    }

    static func text(_ status: Int32) -> String { String(cString: amqp_error_string2(status)) }

    static func closeText(_ method: amqp_method_t) -> String {
        if method.id == AMQPMethod.connectionClose {
            let close = method.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            return "\(close.reply_code) \(close.reply_text.string)"
        }
        if method.id == AMQPMethod.channelClose {
            let close = method.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            return "\(close.reply_code) \(close.reply_text.string)"
        }
        return "method \(method.id)"
    }

    static func describe(_ reply: amqp_rpc_reply_t) -> String {
        switch reply.reply_type {
        case AMQP_RESPONSE_NONE: return "missing RPC reply"
        case AMQP_RESPONSE_LIBRARY_EXCEPTION: return text(reply.library_error)
        case AMQP_RESPONSE_SERVER_EXCEPTION: return closeText(reply.reply)
        default: return "ok"
        }
    }
}

extension timeval {
    init(seconds: Double) { self = CRabbitMQ_timeval(seconds) }
}
