import NIOConcurrencyHelpers
import Testing
import TickwireKit
import TickwireTestSupport

/// docs/CLIENTS.md, "Token" and the 4001 row of "Close codes".
@Suite(.timeLimit(.minutes(1))) struct TokenTests {
    /// Records why the provider was asked, and hands out numbered tokens.
    final class Provider: Sendable {
        let reasons = NIOLockedValueBox<[TokenReason]>([])

        func token(_ reason: TokenReason) -> String {
            reasons.withLockedValue { reasons in
                reasons.append(reason)
                return "token-\(reasons.count)"
            }
        }
    }

    @Test func theTokenTravelsInTheHeaderTheQueryOrTheFirstMessage() async throws {
        let gateway = try await ScriptedGateway.start()
        let clock = ManualClock()
        let header = makeClient(gateway, token: "abc.def", clock: clock)
        #expect(try await gateway.nextConnection().header("Authorization") == "Bearer abc.def")
        header.close()
        let query = makeClient(gateway, token: "abc.def", clock: clock, tokenTransport: .query)
        #expect(try await gateway.nextConnection().target == "/ws?token=abc.def")
        query.close()
        let message = makeClient(gateway, token: "abc.def", clock: clock, tokenTransport: .firstMessage)
        let server = try await gateway.nextConnection()
        #expect(server.header("Authorization") == nil)
        #expect(try await server.expectFrame("auth")["token"] == "abc.def")
        message.close()
    }

    @Test func a4001AsksForANewTokenAndGivesUpAfterThreeRefusals() async throws {
        let gateway = try await ScriptedGateway.start()
        let clock = ManualClock()
        let provider = Provider()
        let client = TickwireClient(url: gateway.url, tokenProvider: { provider.token($0) }, configuration: testConfiguration(clock: clock))
        let log = StateLog(client)
        var offered: [String?] = []
        for attempt in 1...3 {
            let server = try await gateway.nextConnection()
            offered.append(server.header("Authorization"))
            try await server.send(.error(ProtocolViolation(.invalidToken, "bad signature"), requestID: nil))
            await server.close(code: 4001)
            if attempt < 3 {
                let reconnecting = try await log.reconnecting()
                #expect(reconnecting.code == 4001)
                #expect(reconnecting.error?.code == "INVALID_TOKEN")
                clock.advance(by: reconnecting.delay)
            }
        }
        let closed = try await log.closed()
        #expect(closed.reason == .unauthorized)
        #expect(closed.error?.code == "INVALID_TOKEN")
        #expect(offered == ["Bearer token-1", "Bearer token-2", "Bearer token-3"])
        #expect(provider.reasons.withLockedValue { $0 } == [.connect, .refused, .refused])
        // connect() starts over.
        client.connect()
        let server = try await gateway.nextConnection()
        try await server.sendConnected()
        try await log.connected()
        client.close()
    }

    @Test func aFixedTokensFirstRefusalIsFinal() async throws {
        let gateway = try await ScriptedGateway.start()
        let clock = ManualClock()
        let client = makeClient(gateway, clock: clock)
        let log = StateLog(client)
        let server = try await gateway.nextConnection()
        try await server.send(.error(ProtocolViolation(.tokenExpired, "expired"), requestID: nil))
        await server.close(code: 4001)
        let closed = try await log.closed()
        #expect(closed.reason == .unauthorized)
        #expect(closed.error?.code == "TOKEN_EXPIRED")
        clock.advance(by: .seconds(120))
        #expect(await gateway.staysUnconnected(for: .milliseconds(300)))
        client.close()
    }

    @Test func theTokenIsRefreshedAMinuteBeforeItExpiresWithAuth() async throws {
        let gateway = try await ScriptedGateway.start()
        let clock = ManualClock()
        let provider = Provider()
        // The scripted server stays silent for minutes: the 45 s rule is not what this test is about.
        let client = TickwireClient(
            url: gateway.url, tokenProvider: { provider.token($0) },
            configuration: testConfiguration(clock: clock, silenceTimeout: .seconds(3600)))
        let log = StateLog(client)
        let server = try await gateway.nextConnection()
        try await server.sendConnected(lifetime: 300)
        try await log.connected()
        clock.advance(by: .seconds(239))
        await #expect(throws: KitTestFailure.self) { try await server.expectFrame("auth", timeout: .milliseconds(300)) }
        clock.advance(by: .seconds(1))
        let auth = try await server.expectFrame("auth")
        #expect(auth["token"] == "token-2")
        #expect(provider.reasons.withLockedValue { $0 } == [.connect, .refresh])
        // Accepted for another 300 s: the next refresh comes 240 s later, on the same connection.
        let now = Timestamp.now()
        try await server.send(.authenticated(userID: "alice", expiresAt: now.adding(milliseconds: 300_000), requestID: auth.requestID))
        var refreshed: JSONObject?
        for _ in 0..<10 where refreshed == nil {
            clock.advance(by: .seconds(30))
            refreshed = try? await server.expectFrame("auth", timeout: .milliseconds(300))
        }
        #expect(refreshed?["token"] == "token-3")
        #expect(client.state.isConnected)
        client.close()
    }

    @Test func aShortTokenIsRefreshedHalfway() async throws {
        let gateway = try await ScriptedGateway.start()
        let clock = ManualClock()
        let provider = Provider()
        let client = TickwireClient(url: gateway.url, tokenProvider: { provider.token($0) }, configuration: testConfiguration(clock: clock))
        let log = StateLog(client)
        let server = try await gateway.nextConnection()
        try await server.sendConnected(lifetime: 60)
        try await log.connected()
        clock.advance(by: .seconds(30))
        #expect(try await server.expectFrame("auth")["token"] == "token-2")
        client.close()
    }

    @Test func aRefusedRefreshIsReportedAndTheConnectionStays() async throws {
        let gateway = try await ScriptedGateway.start()
        let clock = ManualClock()
        let provider = Provider()
        let client = TickwireClient(url: gateway.url, tokenProvider: { provider.token($0) }, configuration: testConfiguration(clock: clock))
        let log = StateLog(client)
        let errors = Collected(client.errors)
        let server = try await gateway.nextConnection()
        try await server.sendConnected(lifetime: 60)
        try await log.connected()
        clock.advance(by: .seconds(30))
        let auth = try await server.expectFrame("auth")
        try await server.send(.error(ProtocolViolation(.forbidden, "another user"), requestID: auth.requestID))
        let error = try await errors.next()
        #expect(error.code == "FORBIDDEN")
        #expect(error.requestID == auth.requestID)
        // Tried again halfway to the expiry.
        clock.advance(by: .seconds(15))
        #expect(try await server.expectFrame("auth")["token"] == "token-3")
        #expect(client.state.isConnected)
        client.close()
    }
}
