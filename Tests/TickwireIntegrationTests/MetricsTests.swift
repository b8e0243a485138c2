import Foundation
import Testing
import TickwireProtocol

/// What `/metrics` says after each kind of close and refusal, read as an operator would.
@Suite(.timeLimit(.minutes(1)))
struct MetricsTellTheTruth {
    func disconnects(_ server: TestServer, _ code: String) async throws -> Double {
        try await server.metric(#"tickwire_disconnects_total{code="\#(code)"}"#) ?? 0
    }

    @Test func everyCloseIsCountedUnderItsRealCode() async throws {
        let server = try await TestServer.start(["--feed", "none", "--max-connections", "6"])

        let normal = try await server.connectReady(user: "normal")
        #expect(try await normal.close(code: 1000) == 1000)
        try await eventually("1000 counted") { try await disconnects(server, "1000") == 1 }

        // What Node's ws.close() sends: a close frame without a status code (RFC 6455: 1005, not 1006).
        let noStatus = try await server.connectReady(user: "no-status")
        try await noStatus.sendFrame(.close, [])
        try await noStatus.expectEnd()
        try await eventually("1005 counted") { try await disconnects(server, "1005") == 1 }

        let dropped = try await server.connectReady(user: "dropped")
        dropped.disconnect()
        try await eventually("1006 counted") { try await disconnects(server, "1006") == 1 }

        let badToken = try await server.connect(token: "bad.token.here", answersClose: false)
        #expect(try await badToken.nextEvent().errorCode == "INVALID_TOKEN")
        try await eventually("4001 counted at once, not after the close handshake") {
            try await disconnects(server, "4001") == 1
        }

        // 601 frames inside the window: 1008, counted when it happens, though the client never answers.
        let flooder = try await server.connect(user: "flooder", answersClose: false)
        for _ in 0..<601 { try await flooder.sendFrame(.ping, []) }
        #expect(try await flooder.expectClose() == 1008)
        try await eventually(timeout: .milliseconds(500), "1008 counted right away") {
            try await disconnects(server, "1008") == 1
        }

        #expect(try await server.metric(#"tickwire_connections_refused_total{reason="token"}"#) == 1)
        #expect(try await server.metric("tickwire_connects_total") == 5)
        try await eventually("every socket released") { try await server.metric("tickwire_connections_active") == 0 }
    }

    @Test func aFullGatewayCountsItsRefusals() async throws {
        let server = try await TestServer.start(["--feed", "none", "--max-connections", "1"])
        _ = try await server.connectReady()
        let refused = try await server.connect(user: "late", answersClose: false)
        #expect(try await refused.expectClose() == 1013)
        #expect(try await server.metric(#"tickwire_connections_refused_total{reason="full"}"#) == 1)
        #expect(try await disconnects(server, "1013") == 1)
        #expect(try await server.metric("tickwire_connects_total") == 2)
    }

    /// A subscribe the server refuses (an unknown symbol, another user's notifications) is still a subscribe.
    @Test func refusedSubscribesAreCountedAsSubscribes() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let socket = try await server.connectReady()
        try await socket.send(#"{"action":"subscribe","channel":"prices","symbols":["NOPE"]}"#)
        #expect(try await socket.nextEvent().errorCode == "UNKNOWN_SYMBOL")
        try await socket.send(#"{"action":"subscribe","channel":"notifications","user_id":"someone-else"}"#)
        #expect(try await socket.nextEvent().errorCode == "FORBIDDEN")
        try await socket.send("not json")
        #expect(try await socket.nextEvent().errorCode == "INVALID_MESSAGE")
        #expect(try await server.metric(#"tickwire_messages_received_total{action="subscribe"}"#) == 2)
        #expect(try await server.metric(#"tickwire_messages_received_total{action="invalid"}"#) == 1)
    }
}
