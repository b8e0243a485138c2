import Foundation
import TickwireKit
import TickwireTestSupport

struct KitTestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// An in-test gateway on a real socket: each WebSocket the client opens arrives in order, and the
/// test plays the server's side frame by frame (silence, drops, close codes) as a real gateway
/// cannot be made to on demand.
final class ScriptedGateway: Sendable {
    let server: FakeWebSocketServer
    private let accepted: Mailbox<FakeWebSocketServer.Connection>

    static func start() async throws -> ScriptedGateway {
        let accepted = Mailbox<FakeWebSocketServer.Connection>()
        let server = try await FakeWebSocketServer.start { connection in accepted.push(connection) }
        return ScriptedGateway(server: server, accepted: accepted)
    }

    private init(server: FakeWebSocketServer, accepted: Mailbox<FakeWebSocketServer.Connection>) {
        self.server = server
        self.accepted = accepted
    }

    var url: URL { URL(string: server.url + "/ws")! }

    /// The client's next connection.
    func nextConnection(timeout: Duration = .seconds(5)) async throws -> FakeWebSocketServer.Connection {
        guard let connection = await accepted.next(timeout: timeout) else {
            throw KitTestFailure("the client did not connect within \(timeout)")
        }
        return connection
    }

    /// True when the client opened no connection within `duration` (real time).
    func staysUnconnected(for duration: Duration) async -> Bool {
        await accepted.next(timeout: duration) == nil
    }

    func stop() async { await server.stop() }
}

extension FakeWebSocketServer.Connection {
    func send(_ message: ServerMessage) async throws {
        try await send(String(decoding: message.encode(sentAt: .now()), as: UTF8.self))
    }

    /// `connected` for `user`, with a token that expires `lifetime` seconds after the server's now.
    func sendConnected(user: String = "alice", lifetime: Int64 = 3600, heartbeatMilliseconds: Int = 30_000) async throws {
        let now = Timestamp.now()
        try await send(
            .connected(
                .init(
                    connectionID: UUID().uuidString.lowercased(), userID: user, heartbeatIntervalMilliseconds: heartbeatMilliseconds,
                    heartbeatTimeoutMilliseconds: 60_000, expiresAt: now.adding(milliseconds: lifetime * 1000))))
    }

    /// The client's next frame, parsed; pings are skipped unless `action` is "ping".
    func expectFrame(_ action: String, timeout: Duration = .seconds(5)) async throws -> JSONObject {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard let text = await next(timeout: deadline - ContinuousClock.now) else { break }
            guard case .object(let object) = try? JSONParser.parse(text) else { continue }
            if object["action"]?.stringValue == action { return object }
            if object["action"]?.stringValue != "ping" {
                throw KitTestFailure("expected \(action), the client sent \(text)")
            }
        }
        throw KitTestFailure("the client sent no \(action) within \(timeout)")
    }

    /// Answers the client's next price subscription with the whole set it asked for, and returns it.
    @discardableResult
    func acceptPriceSubscription(held: [String] = [], prices: [String: String] = [:]) async throws -> [String] {
        let frame = try await expectFrame("subscribe")
        let symbols = frame["symbols"]?.arrayValue?.compactMap(\.stringValue) ?? []
        try await send(.subscribedPrices(symbols: held + symbols, requestID: frame.requestID))
        let batch = symbols.compactMap { symbol in prices[symbol].map { Self.price(symbol, $0) } }
        if !batch.isEmpty { try await send(.priceBatch(batch)) }
        return symbols
    }

    /// Answers the next notifications subscription; returns its `since`.
    func acceptNotificationSubscription(recovered: Bool = true) async throws -> String? {
        let frame = try await expectFrame("subscribe")
        guard frame["channel"]?.stringValue == "notifications" else { throw KitTestFailure("expected notifications: \(frame)") }
        try await send(
            .subscribedNotifications(userID: frame["user_id"]?.stringValue ?? "", recovered: recovered, requestID: frame.requestID))
        return frame["since"]?.stringValue
    }

    func sendNotification(_ id: String, title: String = "Hello") async throws {
        let envelope = NotificationEnvelope(
            id: StreamID(id)!, kind: .notification,
            data: [
                "notification_id": .string("n-\(id)"), "type": "info", "title": .string(title), "message": "m",
                "priority": "normal",
            ], timestamp: .now())
        try await send(.notification(envelope))
    }

    static func price(_ symbol: String, _ value: String) -> PriceUpdate {
        PriceUpdate(symbol: symbol, priceUSD: value, change24h: "1.5", volume24h: "1000", timestamp: .now(), source: "test")
    }
}

extension JSONObject {
    var requestID: RequestID? {
        switch self["request_id"] {
        case .string(let text)?: .string(text)
        case let value? where value.integerValue != nil: .integer(value.integerValue!)
        default: nil
        }
    }
}

/// Every state the client announces, read by the test with deadlines.
final class StateLog: Sendable {
    let states = Mailbox<ConnectionState>()

    init(_ client: TickwireClient) {
        let stream = client.states
        Task { [states] in for await state in stream { states.push(state) } }
    }

    /// The next announced state that satisfies `predicate`, skipping others.
    @discardableResult
    func next(
        _ what: String, timeout: Duration = .seconds(5), where predicate: (ConnectionState) -> Bool
    ) async throws -> ConnectionState {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard let state = await states.next(timeout: deadline - ContinuousClock.now) else { break }
            if predicate(state) { return state }
        }
        throw KitTestFailure("no \(what) state within \(timeout)")
    }

    func connected() async throws {
        try await next("connected") { $0.isConnected }
    }

    func reconnecting() async throws -> ConnectionState.Reconnecting {
        let state = try await next("reconnecting") { if case .reconnecting = $0 { true } else { false } }
        guard case .reconnecting(let reconnecting) = state else { throw KitTestFailure("unreachable") }
        return reconnecting
    }

    func closed() async throws -> ConnectionState.Closed {
        let state = try await next("closed") { if case .closed = $0 { true } else { false } }
        guard case .closed(let closed) = state else { throw KitTestFailure("unreachable") }
        return closed
    }
}

/// Collects what a stream yields, for a test to read with deadlines.
final class Collected<Element: Sendable>: Sendable {
    let items = Mailbox<Element>()
    let task: Task<Void, Never>

    init(_ stream: AsyncStream<Element>, ended: (@Sendable () -> Void)? = nil) {
        let items = items
        task = Task {
            for await item in stream { items.push(item) }
            ended?()
        }
    }

    func next(timeout: Duration = .seconds(5)) async throws -> Element {
        guard let item = await items.next(timeout: timeout) else { throw KitTestFailure("nothing arrived within \(timeout)") }
        return item
    }
}

/// A client of `gateway` on a manual clock, with jitter fixed at `random`.
func makeClient(
    _ gateway: ScriptedGateway, token: String = "token-1", clock: ManualClock, random: Double = 0.5,
    store: any NotificationIDStore = InMemoryNotificationIDStore(), tokenTransport: TickwireClient.Configuration.TokenTransport = .header,
    silenceTimeout: Duration = .seconds(45)
) -> TickwireClient {
    TickwireClient(
        url: gateway.url, token: token,
        configuration: testConfiguration(
            clock: clock, random: random, store: store, tokenTransport: tokenTransport, silenceTimeout: silenceTimeout))
}

func testConfiguration(
    clock: ManualClock, random: Double = 0.5, store: any NotificationIDStore = InMemoryNotificationIDStore(),
    tokenTransport: TickwireClient.Configuration.TokenTransport = .header, silenceTimeout: Duration = .seconds(45)
) -> TickwireClient.Configuration {
    var configuration = TickwireClient.Configuration()
    configuration.silenceTimeout = silenceTimeout
    configuration.clock = clock
    configuration.random = { random }
    configuration.notificationIDStore = store
    configuration.tokenTransport = tokenTransport
    return configuration
}
