import NIOCore

/// What a connection receives, after fragments are joined and the rules of RFC 6455 applied.
public enum WebSocketEvent: Sendable {
    /// A complete text message; its bytes are well-formed UTF-8.
    case text(ByteBuffer)
    case binary(ByteBuffer)
    case ping(ByteBuffer)
    case pong(ByteBuffer)
    /// The peer's close frame. `code` is nil when the frame had no body.
    case close(code: UInt16?, reason: String)
}

/// Joins fragments into messages and enforces the message-level rules:
/// continuation frames only inside a fragmented message, no new message until the
/// current one ends, UTF-8 of text checked fragment by fragment (fail fast, 1007),
/// messages bounded by `maximumMessageSize` (1009), close bodies well-formed.
public struct WebSocketMessageAssembler: Sendable {
    public let maximumMessageSize: Int

    private var fragmentOpcode: WebSocketOpcode?
    private var fragments: ByteBuffer?
    private var utf8 = UTF8Validator()

    public init(maximumMessageSize: Int) {
        self.maximumMessageSize = maximumMessageSize
    }

    /// True while a fragmented message is being received.
    public var isAssembling: Bool { fragmentOpcode != nil }

    /// Feeds one frame; returns an event when the frame completes one.
    public mutating func receive(_ frame: WebSocketFrame) throws(WebSocketViolation) -> WebSocketEvent? {
        switch frame.opcode {
        case .ping: return .ping(frame.payload)
        case .pong: return .pong(frame.payload)
        case .close: return try Self.parseClose(frame.payload)
        case .text, .binary:
            guard fragmentOpcode == nil else {
                throw .protocolError("new data frame while a fragmented message is open")
            }
            if frame.fin {
                if frame.opcode == .text {
                    guard frame.payload.withUnsafeReadableBytes({ UTF8Validator.isValidBuffer($0) }) else {
                        throw WebSocketViolation(closeCode: 1007, reason: "text message is not valid UTF-8")
                    }
                    return .text(frame.payload)
                }
                return .binary(frame.payload)
            }
            fragmentOpcode = frame.opcode
            utf8 = UTF8Validator()
            try append(frame.payload)
            return nil
        case .continuation:
            guard let opcode = fragmentOpcode else {
                throw .protocolError("continuation frame without a message to continue")
            }
            try append(frame.payload)
            guard frame.fin else { return nil }
            let message = fragments ?? ByteBuffer()
            fragmentOpcode = nil
            fragments = nil
            if opcode == .text {
                guard utf8.isComplete else {
                    throw WebSocketViolation(closeCode: 1007, reason: "text message ends inside a UTF-8 sequence")
                }
                return .text(message)
            }
            return .binary(message)
        }
    }

    private mutating func append(_ payload: ByteBuffer) throws(WebSocketViolation) {
        let total = (fragments?.readableBytes ?? 0) + payload.readableBytes
        guard total <= maximumMessageSize else {
            throw WebSocketViolation(closeCode: 1009, reason: "message exceeds \(maximumMessageSize) bytes")
        }
        if fragmentOpcode == .text {
            let valid = payload.withUnsafeReadableBytes { utf8.consume($0) }
            guard valid else { throw WebSocketViolation(closeCode: 1007, reason: "text message is not valid UTF-8") }
        }
        if fragments == nil {
            fragments = payload
        } else {
            var payload = payload
            fragments!.writeBuffer(&payload)
        }
    }

    static func parseClose(_ payload: ByteBuffer) throws(WebSocketViolation) -> WebSocketEvent {
        var payload = payload
        guard payload.readableBytes > 0 else { return .close(code: nil, reason: "") }
        guard let code = payload.readInteger(as: UInt16.self) else {
            throw .protocolError("close frame body of one byte")
        }
        switch code {
        case 1000...1003, 1007...1014, 3000...4999: break
        default: throw .protocolError("invalid close code \(code)")
        }
        let reasonBytes = payload.readableBytesView
        guard UTF8Validator.isValid(reasonBytes) else {
            throw WebSocketViolation(closeCode: 1007, reason: "close reason is not valid UTF-8")
        }
        return .close(code: code, reason: String(decoding: reasonBytes, as: UTF8.self))
    }
}

extension UTF8Validator {
    static func isValidBuffer(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var validator = UTF8Validator()
        return validator.consume(bytes) && validator.isComplete
    }
}
