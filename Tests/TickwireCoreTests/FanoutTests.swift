import NIOCore
import NIOEmbedded
import Testing
import TickwireProtocol

@testable import TickwireCore

/// A connection that records what the fan-out does to it.
final class RecordingConnection: HubConnection {
    enum Event: Equatable {
        case price(String)
        case notification(StreamID)
        case fellBehind
    }
    var events: [Event] = []
    var flushPending = false
    private var cut = false

    func enqueueShared(_ frame: ByteBuffer, flush: Bool) -> Bool {
        guard !cut else { return false }
        events.append(.price(String(buffer: frame)))
        return true
    }

    func enqueueNotification(id: StreamID, frame: ByteBuffer, flush: Bool) -> Bool {
        guard !cut else { return false }
        events.append(.notification(id))
        return true
    }

    func flush() {}
    func sweep(now: UInt64, wallClock: Timestamp) {}
    func goAway() {}
    func fellBehind() {
        cut = true
        events.append(.fellBehind)
    }
}

@Suite struct LoopInboxes {
    func price(_ symbol: Int) -> Delivery {
        .price(
            symbol: symbol, price: PriceUpdate(symbol: "S\(symbol)", priceUSD: "1", change24h: "0", volume24h: nil, timestamp: .now()),
            frame: ByteBuffer(string: "p\(symbol)"), releasedAt: .now())
    }

    func notification(_ user: String, _ id: UInt64) -> Delivery {
        .notification(userID: user, id: StreamID(milliseconds: id, sequence: 0), frame: ByteBuffer(), publishedAt: .now())
    }

    @Test func pastTheBoundTheOldestPriceGoesFirst() {
        var inbox = LoopInbox(limit: 3)
        inbox.add(price(1))
        inbox.add(notification("alice", 1))
        inbox.add(price(2))
        inbox.add(price(3))
        #expect(inbox.depth == 3)
        let batch = inbox.take()
        #expect(batch.droppedPrices == 1 && batch.droppedNotifications == 0 && batch.usersToCut.isEmpty)
        #expect(batch.deliveries.count == 3)
        #expect(inbox.isEmpty)
    }

    @Test func aNotificationIsDroppedOnlyWithItsUserMarkedForTheCut() {
        var inbox = LoopInbox(limit: 2)
        inbox.add(notification("alice", 1))
        inbox.add(notification("bob", 2))
        inbox.add(notification("carol", 3))
        let batch = inbox.take()
        #expect(batch.droppedNotifications == 1)
        #expect(batch.usersToCut == ["alice"])
        #expect(batch.deliveries.count == 2)
    }
}

@Suite struct Fanout {
    func notification(_ id: UInt64) -> NotificationEnvelope {
        NotificationEnvelope(id: StreamID(milliseconds: id, sequence: 0), kind: .notification, data: [:], timestamp: .now())
    }

    /// A user's notification goes only to the loops where that user has a subscribed connection.
    @Test func notificationsGoOnlyToLoopsWithTheUser() {
        let loops = [EmbeddedEventLoop(), EmbeddedEventLoop(), EmbeddedEventLoop()]
        let hub = Hub(eventLoops: loops, symbols: SymbolTable(["BTC"]), metrics: GatewayMetrics(loops: 3))
        let alice = RecordingConnection()
        hub.loops[1].register(alice)
        hub.loops[1].addUser(alice, userID: "alice")
        hub.deliver(notification(1), toUser: "alice")
        #expect(hub.loops.map(\.queuedDeliveries) == [0, 1, 0])
        loops[1].run()
        #expect(alice.events == [.notification(StreamID(milliseconds: 1, sequence: 0))])
        hub.loops[1].removeUser(alice, userID: "alice")
        hub.deliver(notification(2), toUser: "alice")
        #expect(hub.loops.map(\.queuedDeliveries) == [0, 0, 0])
    }

    /// A loop that fell behind drops the oldest notification only by cutting its user first:
    /// nothing newer reaches that user's connections, whose reconnect with `since` recovers it.
    @Test func aDroppedNotificationCutsItsUsersConnectionsBeforeAnythingNewer() {
        let loop = EmbeddedEventLoop()
        let hub = Hub(eventLoops: [loop], symbols: SymbolTable(["BTC"]), metrics: GatewayMetrics(), inboxLimit: 2)
        let alice = RecordingConnection()
        let bob = RecordingConnection()
        for (connection, user) in [(alice, "alice"), (bob, "bob")] {
            hub.loops[0].register(connection)
            hub.loops[0].addUser(connection, userID: user)
        }
        hub.deliver(notification(1), toUser: "alice")
        hub.deliver(notification(2), toUser: "bob")
        hub.deliver(notification(3), toUser: "alice")
        loop.run()
        #expect(alice.events == [.fellBehind])
        #expect(bob.events == [.notification(StreamID(milliseconds: 2, sequence: 0))])
    }

    /// `GET /api/v1/prices` reads what the hub published: no loop has to run for it, so a flood of
    /// such requests costs the client loops nothing.
    @Test func theLatestPricesAreReadableWithoutAnyLoopRunning() {
        let loops = [EmbeddedEventLoop(), EmbeddedEventLoop()]
        let hub = Hub(eventLoops: loops, symbols: SymbolTable(["BTC", "ETH"]), metrics: GatewayMetrics(loops: 2))
        let eth = PriceUpdate(symbol: "ETH", priceUSD: "3000.5", change24h: "1.2", volume24h: nil, timestamp: .now())
        hub.broadcast([PriceGate.Released(price: eth, symbolIndex: 1, releasedAt: .now())])
        hub.seedLatest([PriceUpdate(symbol: "BTC", priceUSD: "90000", change24h: "0", volume24h: nil, timestamp: .now())])
        #expect(hub.latestPrices().map(\.symbol) == ["BTC", "ETH"])
        #expect(hub.latestPrices().last?.priceUSD == "3000.5")
        #expect(hub.loops.map(\.queuedDeliveries) == [1, 1], "the loops have not run")
    }
}
