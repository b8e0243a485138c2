import Foundation
import Testing
import TickwireProtocol

@Suite(.timeLimit(.minutes(1)))
struct Connecting {
    @Test func connectedIsTheFirstFrameWithItsFields() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let socket = try await server.connect(user: "alice")
        let connected = try await socket.nextEvent()
        #expect(connected.name == "connected")
        let connectionID = try #require(connected.data["connection_id"]?.stringValue)
        #expect(UUID(uuidString: connectionID) != nil)
        #expect(connected.data["user_id"] == "alice")
        #expect(connected.data["heartbeat_interval_ms"] == 30000)
        #expect(connected.data["heartbeat_timeout_ms"] == 60000)
        let serverTime = try #require(connected.data["server_time"]?.stringValue)
        #expect(Timestamp(rfc3339: serverTime) != nil && serverTime.hasSuffix("Z") && serverTime.count == 24)
        let expiresAt = try #require(connected.data["expires_at"]?.stringValue)
        #expect(Timestamp(rfc3339: expiresAt)! > Timestamp.now())
        #expect(connected.object["timestamp"]?.stringValue?.count == 24)
    }

    @Test func missingTokenGetsAnErrorThenClose4001() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let socket = try await TestWebSocket.connect(port: server.port, token: nil)
        let error = try await socket.nextEvent()
        #expect(error.errorCode == "MISSING_TOKEN")
        #expect(try await socket.expectClose() == 4001)
    }

    @Test func bearerHeaderWorksAndTheQueryWins() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let byHeader = try await TestWebSocket.connect(
            port: server.port, headers: [("Authorization", "Bearer \(Tokens.make(subject: "bob"))")])
        #expect(try await byHeader.nextEvent().data["user_id"] == "bob")
        let both = try await TestWebSocket.connect(
            port: server.port, token: Tokens.make(subject: "carol"), headers: [("Authorization", "Bearer garbage")])
        #expect(try await both.nextEvent().data["user_id"] == "carol")
    }

    @Test func originsOutsideTheAllowlistAreRefusedBeforeTheUpgrade() async throws {
        let server = try await TestServer.start(["--feed", "none", "--allowed-origins", "https://wallet.example.com"])
        await #expect(throws: HandshakeRefused.self) {
            _ = try await server.connect(headers: [("Origin", "https://evil.example.com")])
        }
        do {
            _ = try await server.connect(headers: [("Origin", "https://evil.example.com")])
        } catch let refused as HandshakeRefused {
            #expect(refused.status == 403)
        }
        let allowed = try await server.connect(headers: [("Origin", "https://wallet.example.com")])
        #expect(try await allowed.nextEvent().name == "connected")
        let nonBrowser = try await server.connect()
        #expect(try await nonBrowser.nextEvent().name == "connected")
    }

    @Test func pastMaxConnectionsNewClientsAreClosedWith1013() async throws {
        let server = try await TestServer.start(["--feed", "none", "--max-connections", "2"])
        let first = try await server.connectReady()
        _ = try await server.connectReady()
        let third = try await server.connect()
        #expect(try await third.expectClose() == 1013)
        #expect(try await first.close() == 1000)
        try await eventually("a place frees up") {
            guard let socket = try? await server.connect() else { return false }
            return (try? await socket.nextEvent().name) == "connected"
        }
    }

    @Test func plainHTTPOnTheWebSocketPathIs426AndUnknownPathsAre404() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        #expect(try await server.http("GET", "/ws").status == 426)
        #expect(try await server.http("GET", "/nope").status == 404)
        await #expect(throws: HandshakeRefused.self) { _ = try await server.connect(path: "/elsewhere") }
        await #expect(throws: HandshakeRefused.self) { _ = try await server.connect(path: "/echo") }
    }

    @Test func clientCloseIsEchoedWith1000() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let socket = try await server.connectReady()
        #expect(try await socket.close(code: 1000) == 1000)
        try await eventually("the server sees the disconnect") {
            try await server.metric(#"tickwire_connections_active"#) == 0
        }
    }

    @Test func logsNeverContainTheTokenOrTheQueryString() async throws {
        let server = try await TestServer.start(["--feed", "none", "--log-level", "trace"])
        let token = Tokens.make(subject: "secretive")
        let socket = try await TestWebSocket.connect(port: server.port, path: "/ws?marker=QUERYMARK", token: token)
        _ = try await socket.nextEvent()
        try await socket.send(#"{"action":"subscribe","channel":"prices","symbols":["BTC"]}"#)
        _ = try await socket.expectEvent("subscribed")
        _ = try await socket.close()
        let bad = try await TestWebSocket.connect(port: server.port, token: token + "x")
        _ = try await bad.expectClose()
        try await Task.sleep(for: .milliseconds(200))
        #expect(!server.stderr.contains(token.prefix(40)))
        #expect(!server.stderr.contains("QUERYMARK"))
        #expect(!server.stdout.contains(token.prefix(40)))
    }
}
