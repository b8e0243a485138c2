import NIOCore

/// Builds complete frames (header and payload in one buffer).
///
/// A server frame is unmasked, so its bytes are the same for every recipient:
/// the gateway builds a broadcast frame once and writes that one buffer to every
/// subscriber (a `ByteBuffer` copy is a reference count, not a byte copy).
public enum WebSocketFrameWriter {
    /// Header length for a payload of `length` bytes, without mask.
    @inlinable
    public static func headerLength(payloadLength length: Int) -> Int {
        length < 126 ? 2 : (length <= 0xFFFF ? 4 : 10)
    }

    /// A final frame with `payload`, masked with `maskingKey` when given (clients must mask).
    public static func frame(
        opcode: WebSocketOpcode, fin: Bool = true, payload: some Collection<UInt8>,
        maskingKey: (UInt8, UInt8, UInt8, UInt8)? = nil, allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        let length = payload.count
        var buffer = allocator.buffer(capacity: headerLength(payloadLength: length) + 4 + length)
        writeHeader(opcode: opcode, fin: fin, length: length, masked: maskingKey != nil, into: &buffer)
        if let maskingKey {
            buffer.writeBytes([maskingKey.0, maskingKey.1, maskingKey.2, maskingKey.3])
            let mask = [maskingKey.0, maskingKey.1, maskingKey.2, maskingKey.3]
            var index = 0
            buffer.writeBytes(payload.map { byte -> UInt8 in
                defer { index += 1 }
                return byte ^ mask[index & 3]
            })
        } else {
            buffer.writeBytes(payload)
        }
        return buffer
    }

    /// A frame from a `ByteBuffer` payload.
    public static func frame(
        opcode: WebSocketOpcode, fin: Bool = true, payload: ByteBuffer,
        maskingKey: (UInt8, UInt8, UInt8, UInt8)? = nil, allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        payload.withUnsafeReadableBytes { bytes in
            frame(opcode: opcode, fin: fin, payload: bytes, maskingKey: maskingKey, allocator: allocator)
        }
    }

    /// A close frame: the status code and a UTF-8 reason (truncated to fit the 125-byte control limit).
    public static func closeFrame(
        code: UInt16?, reason: String = "", maskingKey: (UInt8, UInt8, UInt8, UInt8)? = nil,
        allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        var payload: [UInt8] = []
        if let code {
            payload.append(UInt8(code >> 8))
            payload.append(UInt8(code & 0xFF))
            payload.append(contentsOf: truncatedUTF8(reason, maximumBytes: 123))
        }
        return frame(opcode: .close, payload: payload, maskingKey: maskingKey, allocator: allocator)
    }

    /// The longest prefix of `text` that fits in `maximumBytes` without splitting a character.
    static func truncatedUTF8(_ text: String, maximumBytes: Int) -> [UInt8] {
        var result: [UInt8] = []
        for character in text {
            let bytes = Array(String(character).utf8)
            if result.count + bytes.count > maximumBytes { break }
            result.append(contentsOf: bytes)
        }
        return result
    }

    public static func writeHeader(
        opcode: WebSocketOpcode, fin: Bool, length: Int, masked: Bool, into buffer: inout ByteBuffer
    ) {
        buffer.writeInteger((fin ? 0x80 : 0) | opcode.rawValue)
        let maskBit: UInt8 = masked ? 0x80 : 0
        if length < 126 {
            buffer.writeInteger(maskBit | UInt8(length))
        } else if length <= 0xFFFF {
            buffer.writeInteger(maskBit | 126)
            buffer.writeInteger(UInt16(length))
        } else {
            buffer.writeInteger(maskBit | 127)
            buffer.writeInteger(UInt64(length))
        }
    }
}
