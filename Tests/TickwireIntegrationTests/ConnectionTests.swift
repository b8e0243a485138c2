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

    /// A connection that served an HTTP request may still upgrade (Node's WebSocket reuses the
    /// connections `fetch()` kept alive; NIO's upgrader considers a connection's first request only).
    @Test func aKeptAliveConnectionCanUpgradeAfterAnHTTPRequest() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let socket = try await RawSocket.connect(port: server.port)
        try await socket.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try await socket.read(until: #"{"status":"ok"}"#).hasPrefix("HTTP/1.1 200"))
        try await socket.send(
            "GET /ws?token=\(Tokens.make(subject: "alice")) HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        let answer = try await socket.read(until: #""event":"connected""#)
        #expect(answer.hasPrefix("HTTP/1.1 101 Switching Protocols"))
    }

    /// Without a token the connection has 5 s to send `auth`; silence gets MISSING_TOKEN and 4001.
    @Test func missingTokenGetsAnErrorThenClose4001AfterTheAuthWindow() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let start = ContinuousClock.now
        let socket = try await TestWebSocket.connect(port: server.port, token: nil)
        let error = try await socket.nextEvent(timeout: .seconds(10))
        #expect(error.errorCode == "MISSING_TOKEN")
        #expect(ContinuousClock.now - start >= .seconds(4.5))
        #expect(try await socket.expectClose() == 4001)
    }

    /// Behind proxies that log URLs, the token goes in the first message instead of the query.
    @Test func aFirstAuthMessageAuthenticatesAConnectionWithoutAToken() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let socket = try await TestWebSocket.connect(port: server.port, token: nil)
        try await socket.send(#"{"action":"auth","token":"\#(Tokens.make(subject: "bob"))","request_id":"a1"}"#)
        let connected = try await socket.nextEvent()
        #expect(connected.name == "connected")
        #expect(connected.data["user_id"] == "bob")
        try await socket.send(#"{"action":"subscribe","channel":"notifications","user_id":"bob"}"#)
        #expect(try await socket.nextEvent().name == "subscribed")
    }

    @Test func nothingButAuthMayComeBeforeIt() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let early = try await TestWebSocket.connect(port: server.port, token: nil)
        try await early.send(#"{"action":"subscribe","channel":"prices","symbols":["BTC"]}"#)
        #expect(try await early.nextEvent().errorCode == "MISSING_TOKEN")
        #expect(try await early.expectClose() == 4001)

        let binary = try await TestWebSocket.connect(port: server.port, token: nil)
        try await binary.sendFrame(.binary, [1, 2, 3])
        #expect(try await binary.nextEvent().errorCode == "MISSING_TOKEN")
        #expect(try await binary.expectClose() == 4001)

        let forged = try await TestWebSocket.connect(port: server.port, token: nil)
        try await forged.send(#"{"action":"auth","token":"not.a.jwt"}"#)
        #expect(try await forged.nextEvent().errorCode == "INVALID_TOKEN")
        #expect(try await forged.expectClose() == 4001)
    }

    /// A refused client that never answers our close frame must not keep its slot for the 10 s
    /// close handshake: 5 such clients once kept a `--max-connections 5` gateway full for 10 s.
    @Test func refusedTokensGiveTheirSlotBackWithinASecond() async throws {
        let server = try await TestServer.start(["--feed", "none", "--max-connections", "5"])
        var refused: [TestWebSocket] = []
        for _ in 0..<5 { refused.append(try await server.connect(token: "bad.token.here", answersClose: false)) }
        let start = ContinuousClock.now
        var admittedAt: Duration?
        while ContinuousClock.now - start < .seconds(8) {
            let client = try await server.connect()
            if case .text(let text) = try await client.next(), try Event(text).name == "connected" {
                admittedAt = ContinuousClock.now - start
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        let waited = try #require(admittedAt, "a valid client never got in")
        #expect(waited < .seconds(3), "waited \(waited)")
        #expect(try await server.metric(#"tickwire_connections_refused_total{reason="token"}"#) == 5)
        #expect(try await server.metric(#"tickwire_disconnects_total{code="4001"}"#) == 5)
    }

    @Test func aUserPastTheirConnectionLimitIsRefusedWith1008() async throws {
        let server = try await TestServer.start(["--feed", "none", "--max-connections-per-user", "2"])
        let first = try await server.connectReady(user: "alice")
        _ = try await server.connectReady(user: "alice")
        let third = try await server.connect(user: "alice")
        let error = try await third.nextEvent()
        #expect(error.errorCode == "CONNECTION_LIMIT")
        #expect(error.data["details"]?.objectValue?["max"] == 2)
        #expect(try await third.expectClose() == 1008)
        _ = try await server.connectReady(user: "bob")
        #expect(try await first.close() == 1000)
        try await eventually("alice's slot is free again") {
            let again = try await server.connect(user: "alice")
            return try await again.nextEvent().name == "connected"
        }
        #expect(try await server.metric(#"tickwire_connections_refused_total{reason="user_limit"}"#) == 1)
    }

    /// Clients that keep a quiet connection alive with protocol pings (OkHttp, Go, Python's
    /// `websockets`) must get each pong at once, not when some later write happens to flush it.
    @Test func protocolPingsOnAQuietConnectionArePongedAtOnce() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let socket = try await server.connectReady()
        for index in 0..<5 {
            let payload = Array("keepalive-\(index)".utf8)
            try await socket.sendFrame(.ping, payload)
            let answer = try await socket.next(timeout: .seconds(2))
            guard case .pong(let echoed) = answer else { throw TestFailure("expected a pong, got \(answer)") }
            #expect(echoed == payload)
        }
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
