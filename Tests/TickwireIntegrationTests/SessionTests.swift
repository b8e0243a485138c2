import Testing
import TickwireProtocol

@Suite(.timeLimit(.minutes(1)))
struct Heartbeat {
    @Test func silenceClosesWith4008() async throws {
        let server = try await TestServer.start(["--feed", "none", "--heartbeat-timeout", "1"])
        // Timed from before the connect: the server's silence clock starts later, at the upgrade.
        let start = ContinuousClock.now
        let socket = try await server.connectReady()
        #expect(try await socket.expectClose(timeout: .seconds(4)) == 4008)
        #expect(ContinuousClock.now - start >= .seconds(1))
    }

    @Test func pingsKeepTheConnectionAlive() async throws {
        let server = try await TestServer.start(["--feed", "none", "--heartbeat-timeout", "2"])
        let socket = try await server.connectReady()
        for _ in 0..<10 {
            try await socket.send(#"{"action":"ping"}"#)
            let pong = try await socket.nextEvent()
            #expect(pong.name == "pong" && pong.data["server_time"]?.stringValue != nil)
            try await Task.sleep(for: .milliseconds(400))
        }
    }

    @Test func webSocketPingFramesCountAsLivenessToo() async throws {
        let server = try await TestServer.start(["--feed", "none", "--heartbeat-timeout", "2"])
        let socket = try await server.connectReady()
        for _ in 0..<10 {
            try await socket.sendFrame(.ping, [])
            try await Task.sleep(for: .milliseconds(400))
        }
        try await socket.send(#"{"action":"ping"}"#)
        #expect(try await socket.nextEvent().name == "pong")
    }
}

@Suite(.timeLimit(.minutes(1)))
struct TokenLifetime {
    @Test func expiryDuringTheSessionSendsTokenExpiredAndCloses4001() async throws {
        let server = try await TestServer.start(["--feed", "none", "--jwt-leeway", "0"])
        // exp is whole seconds: a lifetime of 3 leaves at least 2 s to connect on a loaded machine.
        let socket = try await server.connectReady(token: Tokens.make(subject: "alice", lifetime: 3))
        let error = try await socket.expectEvent("error", timeout: .seconds(6))
        #expect(error.errorCode == "TOKEN_EXPIRED")
        #expect(try await socket.expectClose() == 4001)
    }

    @Test func refreshingWithAuthKeepsTheSessionPastTheOldExpiry() async throws {
        let server = try await TestServer.start(["--feed", "none", "--jwt-leeway", "0", "--heartbeat-timeout", "10"])
        // exp is whole seconds: a lifetime of 3 leaves at least 2 s to refresh on a loaded machine.
        let socket = try await server.connectReady(token: Tokens.make(subject: "alice", lifetime: 3))
        try await socket.send(#"{"action":"auth","token":"\#(Tokens.make(subject: "alice", lifetime: 600))","request_id":"r"}"#)
        let authenticated = try await socket.nextEvent()
        #expect(authenticated.name == "authenticated")
        #expect(authenticated.data["user_id"] == "alice" && authenticated.data["request_id"] == "r")
        let expiresAt = Timestamp(rfc3339: authenticated.data["expires_at"]?.stringValue ?? "")
        #expect(expiresAt.map { $0 > Timestamp.now().adding(milliseconds: 500_000) } == true)
        try await socket.expectNoEvent("error", for: .seconds(4))
        try await socket.send(#"{"action":"ping"}"#)
        #expect(try await socket.nextEvent().name == "pong")
    }

    @Test func aRefreshMustKeepTheSameUser() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let socket = try await server.connectReady(user: "alice")
        try await socket.send(#"{"action":"auth","token":"\#(Tokens.make(subject: "mallory"))"}"#)
        #expect(try await socket.nextEvent().errorCode == "FORBIDDEN")
        try await socket.send(#"{"action":"auth","token":"not-a-token"}"#)
        #expect(try await socket.nextEvent().errorCode == "INVALID_TOKEN")
        try await socket.send(#"{"action":"ping"}"#)
        #expect(try await socket.nextEvent().name == "pong", "a failed refresh keeps the current session")
    }
}

@Suite(.timeLimit(.minutes(1)))
struct RateLimits {
    func subscribe(_ socket: TestWebSocket) async throws -> Event {
        try await socket.send(#"{"action":"subscribe","channel":"prices","symbols":["BTC"]}"#)
        return try await socket.nextEvent()
    }

    @Test func theHundredAndFirstSubscriptionChangeStartsASuspension() async throws {
        let server = try await TestServer.start(["--feed", "none", "--rate-limit-window", "6"])
        let socket = try await server.connectReady()
        // All 101 frames go out at once; a 6 s window leaves a stalled test machine room to read them all.
        for _ in 0..<101 { try await socket.send(#"{"action":"subscribe","channel":"prices","symbols":["BTC"]}"#) }
        for _ in 0..<100 { #expect(try await socket.nextEvent().name == "subscribed") }
        let limited = try await socket.nextEvent()
        #expect(limited.errorCode == "RATE_LIMITED")
        let details = try #require(limited.data["details"]?.objectValue)
        #expect(details["limit"] == "subscriptions")
        let retryAfter = try #require(details["retry_after_ms"]?.integerValue)
        #expect(retryAfter > 5000 && retryAfter <= 6000)
        // During the suspension every subscription change is refused; pings still work.
        try await socket.send(#"{"action":"unsubscribe","channel":"prices"}"#)
        #expect(try await socket.nextEvent().errorCode == "RATE_LIMITED")
        try await socket.send(#"{"action":"ping"}"#)
        #expect(try await socket.nextEvent().name == "pong")
        try await Task.sleep(for: .milliseconds(6100))
        #expect(try await subscribe(socket).name == "subscribed")
    }

    @Test func theDefaultSuspensionLastsSixtySeconds() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let socket = try await server.connectReady()
        for _ in 0..<61 {
            try await socket.send(#"{"action":"ping"}"#)
            _ = try await socket.nextEvent()
        }
        try await socket.send(#"{"action":"ping"}"#)
        let limited = try await socket.nextEvent()
        #expect(limited.errorCode == "RATE_LIMITED")
        #expect(limited.data["details"]?.objectValue?["limit"] == "ping")
        let retryAfter = limited.data["details"]?.objectValue?["retry_after_ms"]?.integerValue ?? 0
        #expect(retryAfter > 55_000 && retryAfter <= 60_000)
    }

    @Test func aSuspendedPingStillCountsAsLiveness() async throws {
        let server = try await TestServer.start(["--feed", "none", "--heartbeat-timeout", "2"])
        let socket = try await server.connectReady()
        var limited = 0
        for _ in 0..<61 {
            try await socket.send(#"{"action":"ping"}"#)
            if try await socket.nextEvent().errorCode == "RATE_LIMITED" { limited += 1 }
        }
        #expect(limited == 1)
        for _ in 0..<10 {
            try await Task.sleep(for: .milliseconds(400))
            try await socket.send(#"{"action":"ping"}"#)
            #expect(try await socket.nextEvent().errorCode == "RATE_LIMITED")
        }
    }

    @Test func pricesKeepFlowingDuringASuspension() async throws {
        let server = try await TestServer.start(["--feed-tick", "0.05", "--price-interval", "0.1"])
        let socket = try await server.connectReady()
        for _ in 0..<101 {
            try await socket.send(#"{"action":"subscribe","channel":"prices","symbols":["BTC"]}"#)
        }
        _ = try await socket.expectEvent("error")
        let events = try await socket.collectEvents(for: .milliseconds(600))
        #expect(events.contains { $0.name == "price_update" })
    }

    @Test func moreThan600FramesAMinuteCloseWith1008() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let socket = try await server.connectReady()
        for _ in 0..<601 { try await socket.send(#"{"action":"noise"}"#) }
        #expect(try await socket.expectClose(timeout: .seconds(10)) == 1008)
    }
}
