import NIOCore

/// RFC 6455 opcodes.
public enum WebSocketOpcode: UInt8, Sendable {
    case continuation = 0x0
    case text = 0x1
    case binary = 0x2
    case close = 0x8
    case ping = 0x9
    case pong = 0xA

    public var isControl: Bool { rawValue & 0x8 != 0 }
}

/// One decoded frame, payload already unmasked.
public struct WebSocketFrame: Sendable {
    public var fin: Bool
    public var opcode: WebSocketOpcode
    public var payload: ByteBuffer

    public init(fin: Bool, opcode: WebSocketOpcode, payload: ByteBuffer) {
        self.fin = fin
        self.opcode = opcode
        self.payload = payload
    }
}

/// A frame that breaks RFC 6455: the connection must be failed with `closeCode`.
public struct WebSocketViolation: Error, Sendable, Equatable {
    public var closeCode: UInt16
    public var reason: String

    public init(closeCode: UInt16, reason: String) {
        self.closeCode = closeCode
        self.reason = reason
    }

    public static func protocolError(_ reason: String) -> WebSocketViolation {
        WebSocketViolation(closeCode: 1002, reason: reason)
    }
}
