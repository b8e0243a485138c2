import Testing
import TickwireKit
import TickwireTestSupport

/// docs/CLIENTS.md, "Backoff" and "Close codes".
@Suite(.timeLimit(.minutes(1))) struct ReconnectTests {
    @Test func backoffStartsAtOneSecondDoublesAndStopsAtThirty() {
        var backoff = Backoff()
        // Full jitter: the delay is the step times the random draw.
        let delays = (0..<8).map { _ in backoff.nextDelay(random: 0.5) }
        #expect(delays == [0.5, 1, 2, 4, 8, 15, 15, 15].map { Duration.milliseconds(Int64($0 * 1000)) })
        var top = Backoff()
        for _ in 0..<10 { #expect(top.nextDelay(random: 0.999_999) < .seconds(30)) }
        var bottom = Backoff()
        #expect(bottom.nextDelay(random: 0) == .zero)
        backoff.reset()
        #expect(backoff.step == .seconds(1))
    }

    @Test func failedAttemptsBackOffWithGrowingDelays() async throws {
        let gateway = try await ScriptedGateway.start()
        let clock = ManualClock()
        let client = makeClient(gateway, clock: clock)
        let log = StateLog(client)
        var delays: [Duration] = []
        for _ in 0..<4 {
            let server = try await gateway.nextConnection()
            await server.close(code: 1011)
            let reconnecting = try await log.reconnecting()
            #expect(reconnecting.code == 1011)
            delays.append(reconnecting.delay)
            clock.advance(by: reconnecting.delay)
        }
        #expect(delays == [.milliseconds(500), .seconds(1), .seconds(2), .seconds(4)])
        client.close()
    }

    @Test(arguments: [UInt16(1001), 1013, 4008, 4009])
    func shutdownFullHeartbeatAndTooSlowBackOff(code: UInt16) async throws {
        let gateway = try await ScriptedGateway.start()
        let clock = ManualClock()
        let client = makeClient(gateway, clock: clock)
        let log = StateLog(client)
        let server = try await gateway.nextConnection()
        try await server.sendConnected()
        try await log.connected()
        await server.close(code: code)
        let reconnecting = try await log.reconnecting()
        #expect(reconnecting.code == code)
        #expect(reconnecting.cause == .close)
        clock.advance(by: reconnecting.delay)
        _ = try await gateway.nextConnection()
        client.close()
    }

    @Test func aConnectionUpForTenSecondsResetsTheBackoff() async throws {
        let gateway = try await ScriptedGateway.start()
        let clock = ManualClock()
        let client = makeClient(gateway, clock: clock)
        let log = StateLog(client)
        for expected in [Duration.milliseconds(500), .seconds(1)] {
            let server = try await gateway.nextConnection()
            await server.close(code: 1011)
            let reconnecting = try await log.reconnecting()
            #expect(reconnecting.delay == expected)
            clock.advance(by: reconnecting.delay)
        }
        let server = try await gateway.nextConnection()
        try await server.sendConnected()
        try await log.connected()
        clock.advance(by: .seconds(10))
        await server.close(code: 1001)
        #expect(try await log.reconnecting().delay == .milliseconds(500))
        client.close()
    }

    @Test func aDropInTheMiddleOfAFrameReconnects() async throws {
        let gateway = try await ScriptedGateway.start()
        let clock = ManualClock()
        let client = makeClient(gateway, clock: clock)
        let log = StateLog(client)
        let prices = Collected(client.prices(["BTC"]))
        let server = try await gateway.nextConnection()
        try await server.sendConnected()
        try await log.connected()
        try await server.acceptPriceSubscription()
        try await server.dropMidFrame(String(repeating: "x", count: 2000))
        let reconnecting = try await log.reconnecting()
        #expect(reconnecting.code == 1006)
        #expect(reconnecting.cause == .network)
        clock.advance(by: reconnecting.delay)
        let again = try await gateway.nextConnection()
        try await again.sendConnected()
        try await again.acceptPriceSubscription(prices: ["BTC": "3.00"])
        #expect(try await prices.next().priceUSD == "3.00")
        client.close()
    }

    @Test func aRefusedConnectionSchedulesOneReconnect() async throws {
        let gateway = try await ScriptedGateway.start()
        let url = gateway.url
        await gateway.stop()
        let clock = ManualClock()
        let client = TickwireClient(url: url, token: "t", configuration: testConfiguration(clock: clock))
        let log = StateLog(client)
        let first = try await log.reconnecting()
        #expect(first.cause == .network)
        #expect(first.error?.code == "CONNECTION_FAILED")
        clock.advance(by: first.delay)
        let second = try await log.reconnecting()
        #expect(second.attempt == first.attempt + 1)
        client.close()
    }

    @Test func closeOneThousandFromTheServerStaysClosed() async throws {
        let gateway = try await ScriptedGateway.start()
        let clock = ManualClock()
        let client = makeClient(gateway, clock: clock)
        let log = StateLog(client)
        let server = try await gateway.nextConnection()
        try await server.sendConnected()
        try await log.connected()
        await server.close(code: 1000)
        let closed = try await log.closed()
        #expect(closed.reason == .server)
        clock.advance(by: .seconds(300))
        #expect(await gateway.staysUnconnected(for: .milliseconds(300)))
        // connect() opens again.
        client.connect()
        _ = try await gateway.nextConnection()
        client.close()
    }

    @Test func closeOneThousandAndEightWaitsAtLeastSixtySeconds() async throws {
        let gateway = try await ScriptedGateway.start()
        let clock = ManualClock()
        let client = makeClient(gateway, clock: clock)
        let log = StateLog(client)
        let server = try await gateway.nextConnection()
        try await server.send(.error(ProtocolViolation(.connectionLimit, "too many", details: ["max": 20]), requestID: nil))
        await server.close(code: 1008)
        let reconnecting = try await log.reconnecting()
        #expect(reconnecting.delay == .milliseconds(60_500))
        #expect(reconnecting.error?.code == "CONNECTION_LIMIT")
        // A network change does not shorten it.
        client.retryNow()
        clock.advance(by: .milliseconds(60_400))
        #expect(await gateway.staysUnconnected(for: .milliseconds(300)))
        clock.advance(by: .milliseconds(100))
        _ = try await gateway.nextConnection()
        client.close()
    }

    @Test func retryNowEndsABackoffWait() async throws {
        let gateway = try await ScriptedGateway.start()
        let clock = ManualClock()
        let client = makeClient(gateway, clock: clock, random: 0.9)
        let log = StateLog(client)
        let server = try await gateway.nextConnection()
        await server.close(code: 1011)
        #expect(try await log.reconnecting().delay == .milliseconds(900))
        client.retryNow()
        _ = try await gateway.nextConnection()
        client.close()
    }

    @Test func suspendClosesAndResumeConnectsAgain() async throws {
        let gateway = try await ScriptedGateway.start()
        let clock = ManualClock()
        let client = makeClient(gateway, clock: clock)
        let log = StateLog(client)
        let server = try await gateway.nextConnection()
        try await server.sendConnected()
        try await log.connected()
        client.suspend()
        #expect(try await log.closed().reason == .suspended)
        clock.advance(by: .seconds(120))
        #expect(await gateway.staysUnconnected(for: .milliseconds(300)))
        client.resume()
        let again = try await gateway.nextConnection()
        try await again.sendConnected()
        try await log.connected()
        client.close()
    }

    @Test func theAppSeesConnectingConnectedReconnectingClosed() async throws {
        let gateway = try await ScriptedGateway.start()
        let clock = ManualClock()
        let client = makeClient(gateway, clock: clock)
        let seen = Collected(client.states)
        let server = try await gateway.nextConnection()
        try await server.sendConnected(user: "bob")
        #expect(try await seen.next() == .connecting)
        guard case .connected(let user, _) = try await seen.next() else { throw KitTestFailure("expected connected") }
        #expect(user == "bob")
        await server.close(code: 1001)
        guard case .reconnecting = try await seen.next() else { throw KitTestFailure("expected reconnecting") }
        client.close()
        guard case .closed(let closed) = try await seen.next() else { throw KitTestFailure("expected closed") }
        #expect(closed.reason == .client)
    }
}
