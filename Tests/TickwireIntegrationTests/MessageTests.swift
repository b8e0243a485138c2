import Testing
import TickwireProtocol

@Suite(.timeLimit(.minutes(1)))
struct ClientFrames {
    @Test(arguments: [
        ("not json at all", "INVALID_MESSAGE"),
        (#"[1,2,3]"#, "INVALID_MESSAGE"),
        (#"{"channel":"prices"}"#, "INVALID_MESSAGE"),
        (#"{"action":42}"#, "INVALID_MESSAGE"),
        (#"{"action":"subscribe","channel":"prices","symbols":"BTC"}"#, "INVALID_MESSAGE"),
        (#"{"action":"subscribe","channel":"prices","symbols":["BTC-USD"]}"#, "INVALID_MESSAGE"),
        (#"{"action":"subscribe","channel":"notifications","user_id":7}"#, "INVALID_MESSAGE"),
        (#"{"action":"dance"}"#, "UNKNOWN_ACTION"),
        (#"{"action":"subscribe","channel":"gossip"}"#, "UNKNOWN_CHANNEL"),
    ])
    func badFramesGetAnErrorAndTheConnectionStaysOpen(frame: String, code: String) async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let socket = try await server.connectReady()
        try await socket.send(frame)
        let error = try await socket.nextEvent()
        #expect(error.errorCode == code)
        #expect(error.data["message"]?.stringValue?.isEmpty == false)
        #expect(error.data["details"]?.objectValue != nil)
        try await socket.send(#"{"action":"ping"}"#)
        #expect(try await socket.nextEvent().name == "pong")
    }

    @Test func requestIDIsEchoedOnRepliesAndErrors() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let socket = try await server.connectReady()
        try await socket.send(#"{"action":"ping","request_id":"p-1"}"#)
        #expect(try await socket.nextEvent().data["request_id"] == "p-1")
        try await socket.send(#"{"action":"ping","request_id":99}"#)
        #expect(try await socket.nextEvent().data["request_id"] == 99)
        try await socket.send(#"{"action":"fly","request_id":"f"}"#)
        let error = try await socket.nextEvent()
        #expect(error.errorCode == "UNKNOWN_ACTION" && error.data["request_id"] == "f")
        try await socket.send(#"{"action":"subscribe","channel":"prices","symbols":["ETH"],"request_id":"s"}"#)
        #expect(try await socket.expectEvent("subscribed").data["request_id"] == "s")
        try await socket.send(#"{"action":"unsubscribe","channel":"prices","request_id":"u"}"#)
        #expect(try await socket.expectEvent("unsubscribed").data["request_id"] == "u")
    }

    @Test func binaryFramesAreInvalidMessages() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let socket = try await server.connectReady()
        try await socket.sendFrame(.binary, [1, 2, 3])
        #expect(try await socket.nextEvent().errorCode == "INVALID_MESSAGE")
        try await socket.send(#"{"action":"ping"}"#)
        #expect(try await socket.nextEvent().name == "pong")
    }

    @Test func oversizedFramesGetMessageTooLargeAndClose1009() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let socket = try await server.connectReady()
        let padding = String(repeating: "x", count: 17000)
        try await socket.send(#"{"action":"ping","pad":"\#(padding)"}"#)
        #expect(try await socket.nextEvent().errorCode == "MESSAGE_TOO_LARGE")
        #expect(try await socket.expectClose() == 1009)
    }

    @Test func framesUpToTheLimitAreFine() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let socket = try await server.connectReady()
        let prefix = #"{"action":"ping","pad":""#
        let padding = String(repeating: "x", count: 16384 - prefix.utf8.count - 2)
        try await socket.send(prefix + padding + "\"}")
        #expect(try await socket.nextEvent().name == "pong")
    }

    @Test func protocolErrorsCloseWith1002AndBadUTF8With1007() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let unmasked = try await server.connectReady()
        try await unmasked.sendFrame(.text, Array(#"{"action":"ping"}"#.utf8), masked: false)
        #expect(try await unmasked.expectClose() == 1002)

        let badUTF8 = try await server.connectReady()
        try await badUTF8.sendFrame(.text, [0x7B, 0xC3, 0x28, 0x7D])
        #expect(try await badUTF8.expectClose() == 1007)

        let continuation = try await server.connectReady()
        try await continuation.sendFrame(.continuation, Array("x".utf8))
        #expect(try await continuation.expectClose() == 1002)
    }

    @Test func fragmentedMessagesAreJoined() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let socket = try await server.connectReady()
        try await socket.sendFrame(.text, Array(#"{"action":"#.utf8), fin: false)
        try await socket.sendFrame(.ping, [1])
        try await socket.sendFrame(.continuation, Array(#""ping","request_id":"frag"}"#.utf8))
        #expect(try await socket.nextEvent().data["request_id"] == "frag")
    }
}
