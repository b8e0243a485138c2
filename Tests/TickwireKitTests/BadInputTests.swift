import Foundation
import Testing
import TickwireKit
import TickwireTestSupport

/// What the app or the server gets wrong reaches the app as an error; nothing crashes or stops.
@Suite(.timeLimit(.minutes(1))) struct BadInputTests {
    @Test func aURLTheClientCannotUseClosesItAtOnceWithTheReason() async throws {
        let client = TickwireClient(url: URL(string: "ftp://example.com/ws")!, token: "t")
        guard case .closed(let closed) = client.state else { throw KitTestFailure("expected closed, got \(client.state)") }
        #expect(closed.error?.code == "INVALID_URL")
        var states: [ConnectionState] = []
        for await state in client.states { states.append(state) }
        #expect(states.count == 1)
        for await _ in client.prices(["BTC"]) { Issue.record("a price from a closed client") }
    }

    @Test func anInvalidSymbolIsReportedAndTheOthersFlow() async throws {
        let gateway = try await ScriptedGateway.start()
        let client = makeClient(gateway, clock: ManualClock())
        let errors = Collected(client.errors)
        _ = Collected(client.prices(["BTC", "no-dash!", "ETH"]))
        #expect(try await errors.next().code == "INVALID_SYMBOL")
        let server = try await gateway.nextConnection()
        try await server.sendConnected()
        #expect(try await server.acceptPriceSubscription() == ["BTC", "ETH"])
        client.close()
    }

    @Test func aFrameTheClientCannotReadIsReportedAndSkipped() async throws {
        let gateway = try await ScriptedGateway.start()
        let client = makeClient(gateway, clock: ManualClock())
        let errors = Collected(client.errors)
        let prices = Collected(client.prices(["BTC"]))
        let server = try await gateway.nextConnection()
        try await server.sendConnected()
        try await server.acceptPriceSubscription()
        try await server.send("not json")
        try await server.send(#"{"event":"price_update","data":{"symbol":"BTC","price_usd":1.5},"timestamp":"2025-10-14T10:30:00.123Z"}"#)
        try await server.send(#"{"event":"a_future_event","data":{},"timestamp":"2025-10-14T10:30:00.123Z"}"#)
        try await server.send(.priceUpdate(FakeWebSocketServer.Connection.price("BTC", "2.00")))
        #expect(try await errors.next().code == "INVALID_FRAME")
        #expect(try await errors.next().code == "INVALID_FRAME")
        #expect(try await prices.next().priceUSD == "2.00")
        #expect(client.state.isConnected)
        client.close()
    }
}
