import Testing
import TickwireKit
import TickwireTestSupport

/// docs/CLIENTS.md, "Heartbeat": a ping every 30 s; 45 s without a frame means a dead connection.
@Suite(.timeLimit(.minutes(1))) struct HeartbeatTests {
    @Test func sendsAPingEveryThirtySeconds() async throws {
        let gateway = try await ScriptedGateway.start()
        let clock = ManualClock()
        // A server that never answers would be dropped at 45 s: this test looks at the pings alone.
        let client = makeClient(gateway, clock: clock, silenceTimeout: .seconds(3600))
        let log = StateLog(client)
        let server = try await gateway.nextConnection()
        try await server.sendConnected()
        try await log.connected()
        clock.advance(by: .seconds(29))
        #expect(await server.next(timeout: .milliseconds(200)) == nil)
        clock.advance(by: .seconds(1))
        _ = try await server.expectFrame("ping")
        clock.advance(by: .seconds(30))
        _ = try await server.expectFrame("ping")
        client.close()
    }

    @Test func aSilentServerIsDroppedAfterFortyFiveSeconds() async throws {
        let gateway = try await ScriptedGateway.start()
        let clock = ManualClock()
        let client = makeClient(gateway, clock: clock)
        let log = StateLog(client)
        let server = try await gateway.nextConnection()
        try await server.sendConnected()
        try await log.connected()
        clock.advance(by: .seconds(44))
        #expect(client.state.isConnected)
        clock.advance(by: .seconds(1))
        let reconnecting = try await log.reconnecting()
        #expect(reconnecting.cause == .heartbeat)
        #expect(reconnecting.delay == .milliseconds(500))
        clock.advance(by: .milliseconds(500))
        _ = try await gateway.nextConnection()
        client.close()
    }

    @Test func anyFrameRestartsTheFortyFiveSeconds() async throws {
        let gateway = try await ScriptedGateway.start()
        let clock = ManualClock()
        let client = makeClient(gateway, clock: clock)
        let log = StateLog(client)
        let prices = Collected(client.prices(["BTC"]))
        let server = try await gateway.nextConnection()
        try await server.sendConnected()
        try await log.connected()
        try await server.acceptPriceSubscription()
        clock.advance(by: .seconds(40))
        try await server.send(.priceUpdate(FakeWebSocketServer.Connection.price("BTC", "1.00")))
        _ = try await prices.next()
        clock.advance(by: .seconds(40))
        #expect(client.state.isConnected)
        clock.advance(by: .seconds(5))
        #expect(try await log.reconnecting().cause == .heartbeat)
        client.close()
    }

    @Test func aHandshakeWithoutConnectedIsDroppedToo() async throws {
        let gateway = try await ScriptedGateway.start()
        let clock = ManualClock()
        let client = makeClient(gateway, clock: clock)
        let log = StateLog(client)
        _ = try await gateway.nextConnection()
        try await eventually("the silence timer is armed") { clock.pendingSleeps > 0 }
        clock.advance(by: .seconds(45))
        #expect(try await log.reconnecting().cause == .heartbeat)
        client.close()
    }

    @Test func aTokenProviderThatNeverAnswersIsATokenFailure() async throws {
        let gateway = try await ScriptedGateway.start()
        let clock = ManualClock()
        let client = TickwireClient(
            url: gateway.url, token: { try await Task.sleep(for: .seconds(3600)); return "never" },
            configuration: testConfiguration(clock: clock))
        let log = StateLog(client)
        try await log.next("connecting") { $0 == .connecting }
        // The state is published before the silence timer is armed: advancing sooner would miss it.
        try await eventually("the silence timer is armed") { clock.pendingSleeps > 0 }
        clock.advance(by: .seconds(45))
        let reconnecting = try await log.reconnecting()
        #expect(reconnecting.cause == .token)
        #expect(reconnecting.error?.code == "TOKEN_PROVIDER_FAILED")
        client.close()
    }

    /// `resume()` after the app wakes must not trust a socket that only looks open.
    @Test func resumeChecksTheConnectionAtOnce() async throws {
        let gateway = try await ScriptedGateway.start()
        let clock = ManualClock()
        let client = makeClient(gateway, clock: clock)
        let log = StateLog(client)
        let prices = Collected(client.prices(["BTC"]))
        let server = try await gateway.nextConnection()
        try await server.sendConnected()
        try await log.connected()
        try await server.acceptPriceSubscription()
        client.resume()
        let ping = try await server.expectFrame("ping")
        // Answered: the connection stays (the price after the pong shows the client read both).
        try await server.send(.pong(requestID: ping.requestID))
        try await server.send(.priceUpdate(FakeWebSocketServer.Connection.price("BTC", "2.00")))
        _ = try await prices.next()
        clock.advance(by: .seconds(5))
        // Not answered (a dead link that looks open): reconnects at once, not after 45 s. Had the
        // first check failed, this connection would be gone and no ping would come.
        client.resume()
        _ = try await server.expectFrame("ping")
        clock.advance(by: .seconds(5))
        let reconnecting = try await log.reconnecting()
        #expect(reconnecting.cause == .heartbeat)
        #expect(reconnecting.delay == .zero)
        _ = try await gateway.nextConnection()
        client.close()
    }
}
