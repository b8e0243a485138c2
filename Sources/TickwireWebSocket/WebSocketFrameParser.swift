import NIOCore

/// Splits a byte stream into WebSocket frames.
///
/// It checks everything a frame header can get wrong before waiting for the
/// payload, so an oversized frame is refused from its first bytes: reserved bits
/// (no extension is negotiated), reserved opcodes, the masking rule of the side it
/// parses for, control frames that are fragmented or longer than 125 bytes, and
/// lengths over `maximumFrameSize` (close code 1009).
public struct WebSocketFrameParser: Sendable {
    public enum Role: Sendable {
        /// Parsing what clients send: every frame must be masked.
        case server
        /// Parsing what servers send: no frame may be masked.
        case client
    }

    public let role: Role
    public let maximumFrameSize: Int

    public init(role: Role, maximumFrameSize: Int) {
        self.role = role
        self.maximumFrameSize = maximumFrameSize
    }

    /// Takes the next complete frame off the front of `buffer`, or returns nil and consumes
    /// nothing when the frame has not fully arrived.
    public func nextFrame(from buffer: inout ByteBuffer) throws(WebSocketViolation) -> WebSocketFrame? {
        let start = buffer.readerIndex
        guard buffer.readableBytes >= 2,
            let first = buffer.getInteger(at: start, as: UInt8.self),
            let second = buffer.getInteger(at: start + 1, as: UInt8.self)
        else { return nil }

        let fin = first & 0x80 != 0
        guard first & 0x70 == 0 else { throw .protocolError("reserved bits set without a negotiated extension") }
        guard let opcode = WebSocketOpcode(rawValue: first & 0x0F) else {
            throw .protocolError("reserved opcode \(first & 0x0F)")
        }
        let masked = second & 0x80 != 0
        switch role {
        case .server where !masked: throw .protocolError("client frames must be masked")
        case .client where masked: throw .protocolError("server frames must not be masked")
        default: break
        }

        var headerLength = 2
        var length = Int(second & 0x7F)
        if opcode.isControl {
            guard fin else { throw .protocolError("fragmented control frame") }
            guard length <= 125 else { throw .protocolError("control frame longer than 125 bytes") }
        }
        if length == 126 {
            guard let extended = buffer.getInteger(at: start + 2, as: UInt16.self) else { return nil }
            length = Int(extended)
            headerLength = 4
            guard length >= 126 else { throw .protocolError("length not minimally encoded") }
        } else if length == 127 {
            guard let extended = buffer.getInteger(at: start + 2, as: UInt64.self) else { return nil }
            guard extended >> 63 == 0 else { throw .protocolError("frame length has its top bit set") }
            guard extended <= UInt64(Int.max) else { throw WebSocketViolation(closeCode: 1009, reason: "frame too large") }
            length = Int(extended)
            headerLength = 10
            guard length > 0xFFFF else { throw .protocolError("length not minimally encoded") }
        }
        guard length <= maximumFrameSize else {
            throw WebSocketViolation(closeCode: 1009, reason: "frame of \(length) bytes exceeds \(maximumFrameSize)")
        }

        var maskingKey: (UInt8, UInt8, UInt8, UInt8)? = nil
        if masked {
            guard let key = buffer.getInteger(at: start + headerLength, as: UInt32.self) else { return nil }
            maskingKey = (UInt8(key >> 24), UInt8(key >> 16 & 0xFF), UInt8(key >> 8 & 0xFF), UInt8(key & 0xFF))
            headerLength += 4
        }
        guard buffer.readableBytes >= headerLength + length else { return nil }

        buffer.moveReaderIndex(forwardBy: headerLength)
        var payload = buffer.readSlice(length: length)!
        if let maskingKey {
            payload = Self.unmasked(payload, key: maskingKey, allocator: ByteBufferAllocator())
        }
        return WebSocketFrame(fin: fin, opcode: opcode, payload: payload)
    }

    /// Copies and unmasks: the slice shares storage with the read buffer, so writing in place would copy anyway.
    static func unmasked(_ payload: ByteBuffer, key: (UInt8, UInt8, UInt8, UInt8), allocator: ByteBufferAllocator)
        -> ByteBuffer
    {
        var output = allocator.buffer(capacity: payload.readableBytes)
        payload.withUnsafeReadableBytes { source in
            _ = output.writeWithUnsafeMutableBytes(minimumWritableBytes: source.count) { target in
                let mask = [key.0, key.1, key.2, key.3]
                var index = 0
                let count = source.count
                let key64 = UInt64(littleEndianBytes: mask + mask)
                while index + 8 <= count {
                    let word = source.loadUnaligned(fromByteOffset: index, as: UInt64.self) ^ key64
                    target.storeBytes(of: word, toByteOffset: index, as: UInt64.self)
                    index += 8
                }
                while index < count {
                    target[index] = source[index] ^ mask[index & 3]
                    index += 1
                }
                return count
            }
        }
        return output
    }
}

extension UInt64 {
    /// Reads eight bytes in memory order (as `loadUnaligned` would on a little-endian machine).
    init(littleEndianBytes bytes: [UInt8]) {
        var value: UInt64 = 0
        withUnsafeMutableBytes(of: &value) { raw in
            for index in 0..<8 { raw[index] = bytes[index] }
        }
        self = value
    }
}
