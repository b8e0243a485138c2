import NIOCore
import Testing

@testable import TickwireWebSocket

let allocator = ByteBufferAllocator()
let key: (UInt8, UInt8, UInt8, UInt8) = (0x12, 0x34, 0x56, 0x78)

@Suite struct FrameParsing {
    let server = WebSocketFrameParser(role: .server, maximumFrameSize: 16384)

    @Test func roundTripsMaskedFramesOfEveryLengthClass() throws {
        for length in [0, 1, 125, 126, 65535, 65536] {
            let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0) }
            var buffer = WebSocketFrameWriter.frame(opcode: .binary, payload: payload, maskingKey: key, allocator: allocator)
            let parser = WebSocketFrameParser(role: .server, maximumFrameSize: 1 << 20)
            let frame = try #require(try parser.nextFrame(from: &buffer))
            #expect(Array(frame.payload.readableBytesView) == payload)
            #expect(frame.fin && frame.opcode == .binary && buffer.readableBytes == 0)
        }
    }

    @Test func waitsForTheWholeFrameAtEveryByteBoundary() throws {
        let whole = WebSocketFrameWriter.frame(opcode: .text, payload: Array("hello".utf8), maskingKey: key, allocator: allocator)
        for cut in 0..<whole.readableBytes {
            var partial = whole.getSlice(at: 0, length: cut)!
            #expect(try server.nextFrame(from: &partial) == nil)
            #expect(partial.readableBytes == cut)
        }
        var complete = whole
        #expect(try server.nextFrame(from: &complete).map { String(buffer: $0.payload) } == "hello")
    }

    @Test func refusesOversizedFramesFromTheHeaderAlone() {
        var header = allocator.buffer(capacity: 8)
        WebSocketFrameWriter.writeHeader(opcode: .text, fin: true, length: 20000, masked: true, into: &header)
        #expect(throws: WebSocketViolation(closeCode: 1009, reason: "frame of 20000 bytes exceeds 16384")) {
            try server.nextFrame(from: &header)
        }
    }

    @Test func refusesProtocolErrors() {
        func violation(_ bytes: [UInt8], role: WebSocketFrameParser.Role = .server) -> UInt16? {
            var buffer = allocator.buffer(bytes: bytes)
            do {
                _ = try WebSocketFrameParser(role: role, maximumFrameSize: 1 << 20).nextFrame(from: &buffer)
                return nil
            } catch { return error.closeCode }
        }
        #expect(violation([0x81, 0x00]) == 1002)  // unmasked client frame
        #expect(violation([0xC1, 0x80, 0, 0, 0, 0]) == 1002)  // RSV1
        #expect(violation([0x83, 0x80, 0, 0, 0, 0]) == 1002)  // reserved opcode 3
        #expect(violation([0x8B, 0x80, 0, 0, 0, 0]) == 1002)  // reserved control opcode 11
        #expect(violation([0x09, 0x80, 0, 0, 0, 0]) == 1002)  // fragmented ping
        #expect(violation([0x89, 0xFE, 0x00, 0x7E]) == 1002)  // ping of 126 bytes
        #expect(violation([0x81, 0x81, 0, 0, 0, 0, 0x41], role: .client) == 1002)  // masked server frame
        #expect(violation([0x81, 0xFE, 0x00, 0x05]) == 1002)  // 16-bit length under 126
    }
}

@Suite struct MessageAssembly {
    func frame(_ opcode: WebSocketOpcode, _ bytes: [UInt8], fin: Bool = true) -> WebSocketFrame {
        WebSocketFrame(fin: fin, opcode: opcode, payload: allocator.buffer(bytes: bytes))
    }

    @Test func joinsFragmentsAndLetsControlFramesInterleave() throws {
        var assembler = WebSocketMessageAssembler(maximumMessageSize: 100)
        #expect(try assembler.receive(frame(.text, Array("he".utf8), fin: false)) == nil)
        guard case .ping = try assembler.receive(frame(.ping, [1])) else { Issue.record("expected ping"); return }
        #expect(try assembler.receive(frame(.continuation, Array("l".utf8), fin: false)) == nil)
        guard case .text(let text) = try assembler.receive(frame(.continuation, Array("lo".utf8))) else {
            Issue.record("expected text"); return
        }
        #expect(String(buffer: text) == "hello")
        #expect(!assembler.isAssembling)
    }

    @Test func failsFastOnInvalidUTF8InAnyFragment() {
        var assembler = WebSocketMessageAssembler(maximumMessageSize: 100)
        _ = try? assembler.receive(frame(.text, [0xCE, 0xBA], fin: false))
        #expect(throws: WebSocketViolation(closeCode: 1007, reason: "text message is not valid UTF-8")) {
            try assembler.receive(frame(.continuation, [0xED, 0xA0, 0x80], fin: false))
        }
    }

    @Test func aCharacterMaySpanFragments() throws {
        var assembler = WebSocketMessageAssembler(maximumMessageSize: 100)
        #expect(try assembler.receive(frame(.text, [0xF0, 0x9F], fin: false)) == nil)
        guard case .text(let text) = try assembler.receive(frame(.continuation, [0x98, 0x80])) else {
            Issue.record("expected text"); return
        }
        #expect(String(buffer: text) == "😀")
    }

    @Test func refusesBrokenSequences() {
        var assembler = WebSocketMessageAssembler(maximumMessageSize: 100)
        #expect(throws: WebSocketViolation.self) { try assembler.receive(frame(.continuation, [1])) }
        _ = try? assembler.receive(frame(.text, [0x41], fin: false))
        #expect(throws: WebSocketViolation.self) { try assembler.receive(frame(.text, [0x41])) }
        var small = WebSocketMessageAssembler(maximumMessageSize: 4)
        _ = try? small.receive(frame(.binary, [1, 2, 3], fin: false))
        #expect(throws: WebSocketViolation(closeCode: 1009, reason: "message exceeds 4 bytes")) {
            try small.receive(frame(.continuation, [4, 5]))
        }
    }

    @Test func validatesCloseBodies() throws {
        var assembler = WebSocketMessageAssembler(maximumMessageSize: 100)
        guard case .close(let code, let reason) = try assembler.receive(frame(.close, [0x03, 0xE8, 0x6F, 0x6B])) else {
            Issue.record("expected close"); return
        }
        #expect(code == 1000 && reason == "ok")
        #expect(throws: WebSocketViolation.self) { try assembler.receive(frame(.close, [0x03])) }
        for invalid: UInt16 in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
            #expect(throws: WebSocketViolation.self) {
                try assembler.receive(frame(.close, [UInt8(invalid >> 8), UInt8(invalid & 0xFF)]))
            }
        }
        #expect(throws: WebSocketViolation(closeCode: 1007, reason: "close reason is not valid UTF-8")) {
            try assembler.receive(frame(.close, [0x03, 0xE8, 0xFF]))
        }
    }
}

@Suite struct UTF8Validation {
    @Test func agreesWithTheStandardLibraryOnEveryTwoAndThreeByteSequence() {
        for first in UInt8(0x80)...0xFF {
            for second in UInt8(0)...0xFF {
                let bytes = [first, second]
                #expect(UTF8Validator.isValid(bytes) == (String(validating: bytes, as: UTF8.self) != nil))
            }
        }
        for first in UInt8(0xE0)...0xF4 {
            for second in stride(from: 0x70, through: 0xC0, by: 8).map(UInt8.init) {
                let bytes = [first, second, 0x80]
                #expect(UTF8Validator.isValid(bytes) == (String(validating: bytes, as: UTF8.self) != nil), "\(bytes)")
            }
        }
    }

    @Test func longASCIIRunsWithATrailingBadByte() {
        #expect(UTF8Validator.isValid(Array(repeating: UInt8(0x41), count: 1000)))
        #expect(!UTF8Validator.isValid(Array(repeating: UInt8(0x41), count: 999) + [0xFF]))
    }
}

@Suite struct Handshake {
    @Test func acceptValueMatchesRFC6455Example() {
        #expect(WebSocketHandshake.acceptValue(forKey: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    @Test func keysAreBase64Of16Bytes() {
        #expect(WebSocketHandshake.isValidKey(WebSocketHandshake.randomKey()))
        #expect(!WebSocketHandshake.isValidKey("short"))
    }

    @Test func aHeadEndsAfterItsBlankLineOnceItHasAllArrived() {
        let head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
        #expect(WebSocketHandshake.headLength(in: ByteBuffer(string: head + "\u{81}\u{2}hi")) == head.utf8.count)
        #expect(WebSocketHandshake.headLength(in: ByteBuffer(string: String(head.dropLast(1)))) == nil)
        #expect(WebSocketHandshake.headLength(in: ByteBuffer(string: "\r\n\r")) == nil)
        #expect(WebSocketHandshake.headLength(in: ByteBuffer(string: "\r\n\r\n")) == 4)
    }
}
