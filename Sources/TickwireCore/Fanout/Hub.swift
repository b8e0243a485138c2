import NIOConcurrencyHelpers
import NIOCore
import TickwireProtocol
import TickwireWebSocket

/// The gateway-wide side of fan-out: one `LoopHub` per event loop, and the
/// encode-once step. A broadcast is encoded here into one complete WebSocket
/// frame, and that buffer is handed to every loop.
public final class Hub: Sendable {
    public let symbols: SymbolTable
    public let metrics: GatewayMetrics
    public let interest: InterestTracker
    private let loopsByID: [ObjectIdentifier: LoopHub]
    public let loops: [LoopHub]
    /// The latest released price of each symbol, published for readers off the client loops
    /// (`GET /api/v1/prices`): a flood of them takes this lock, never a loop's time.
    private let latest: NIOLockedValueBox<[PriceUpdate?]>

    /// Deliveries a loop may have queued before the oldest are dropped (see `LoopInbox`).
    public static let defaultInboxLimit = 65_536

    public init(
        eventLoops: [EventLoop], symbols: SymbolTable, metrics: GatewayMetrics, inboxLimit: Int = Hub.defaultInboxLimit
    ) {
        self.symbols = symbols
        self.metrics = metrics
        let interest = InterestTracker()
        self.interest = interest
        self.loops = eventLoops.enumerated().map { index, eventLoop in
            LoopHub(
                eventLoop: eventLoop, index: index, symbols: symbols, metrics: metrics, interest: interest,
                inboxLimit: inboxLimit)
        }
        self.loopsByID = Dictionary(uniqueKeysWithValues: loops.map { (ObjectIdentifier($0.eventLoop), $0) })
        self.latest = NIOLockedValueBox(Array(repeating: nil, count: symbols.count))
    }

    /// The registry of the loop a connection lives on.
    public func loopHub(for eventLoop: EventLoop) -> LoopHub {
        guard let loopHub = loopsByID[ObjectIdentifier(eventLoop)] else {
            preconditionFailure("event loop \(eventLoop) is not one of the hub's loops")
        }
        return loopHub
    }

    /// Sends released prices to every subscriber of their symbols on every loop: each frame is
    /// encoded once, stamped with its release time, and each loop gets the whole batch in one hop.
    public func broadcast(_ prices: [PriceGate.Released]) {
        guard !prices.isEmpty else { return }
        let releasedAt = NIODeadline.now()
        let deliveries = prices.map { released in
            Delivery.price(
                symbol: released.symbolIndex, price: released.price,
                frame: Self.encodeFrame(.priceUpdate(released.price), sentAt: released.releasedAt), releasedAt: releasedAt)
        }
        latest.withLockedValue { latest in
            for released in prices { latest[released.symbolIndex] = released.price }
        }
        for loop in loops { loop.enqueue(deliveries) }
    }

    /// The latest released price of every symbol that has one, in symbol order.
    public func latestPrices() -> [PriceUpdate] {
        latest.withLockedValue { $0.compactMap { $0 } }
    }

    /// Sends a notification to every connection of the user that subscribed: only the loops
    /// where the user has one get it.
    public func deliver(_ notification: NotificationEnvelope, toUser userID: String) {
        let targets = interest.loops(interestedIn: .notifications(userID: userID))
        guard !targets.isEmpty else { return }
        let frame = Self.encodeFrame(.notification(notification))
        let delivery = Delivery.notification(
            userID: userID, id: notification.id, frame: frame, publishedAt: notification.timestamp)
        for index in targets { loops[index].enqueue([delivery]) }
    }

    /// Fills every loop's snapshot map with prices known before any were broadcast (a gateway
    /// joining a running cluster reads them from the broker).
    public func seedLatest(_ prices: [PriceUpdate]) {
        let indexed = prices.compactMap { price in symbols.index(of: price.symbol).map { ($0, price) } }
        latest.withLockedValue { latest in
            for (index, price) in indexed where latest[index] == nil { latest[index] = price }
        }
        for loop in loops {
            loop.eventLoop.execute { loop.seedLatest(indexed) }
        }
    }

    public func startSweeping(every interval: TimeAmount) {
        for loop in loops {
            loop.eventLoop.execute { loop.startSweeping(every: interval) }
        }
    }

    /// Closes every connection with 1001, spread over `duration` so that their reconnects
    /// do not all land at once.
    public func goAway(over duration: TimeAmount) async {
        await withTaskGroup(of: Void.self) { group in
            for loop in loops {
                group.addTask {
                    let future = loop.eventLoop.flatSubmit { () -> EventLoopFuture<Void> in
                        loop.stopSweeping()
                        return loop.goAway(over: duration)
                    }
                    try? await future.get()
                }
            }
        }
    }

    /// A server message as a complete, unmasked text frame.
    public static func encodeFrame(_ message: ServerMessage, sentAt: Timestamp = .now()) -> ByteBuffer {
        let json = message.encode(sentAt: sentAt)
        return WebSocketFrameWriter.frame(opcode: .text, payload: json, allocator: ByteBufferAllocator())
    }
}
