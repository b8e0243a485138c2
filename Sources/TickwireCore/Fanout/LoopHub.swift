import NIOConcurrencyHelpers
import NIOCore
import TickwireProtocol

/// The subscriptions of the connections that live on one event loop.
///
/// Everything but the inbox is touched only on `eventLoop` (checked on each access), so the
/// hot path takes no lock per subscriber: a broadcast reaches this loop as one `Delivery` in
/// the inbox, and one drain writes the shared frame to every local subscriber, then flushes
/// each touched connection once.
public final class LoopHub: Sendable {
    public let eventLoop: EventLoop
    /// This loop's place in the hub, as the interest tracker knows it.
    let index: Int
    let symbols: SymbolTable
    let metrics: GatewayMetrics
    let interest: InterestTracker

    /// What only `eventLoop` touches.
    private struct Local {
        var connections: [ObjectIdentifier: HubConnection] = [:]
        var priceSubscribers: [[ObjectIdentifier: HubConnection]]
        var userSubscribers: [String: [HubConnection]] = [:]
        var latest: [PriceUpdate?]
        /// Connections written to in the current drain, flushed at its end.
        var touched: [HubConnection] = []
        var sweepTask: RepeatedTask?
    }
    private let local: NIOLoopBoundBox<Local>

    private struct Inbox {
        var queued: LoopInbox
        var drainScheduled = false
    }
    private let inbox: NIOLockedValueBox<Inbox>

    init(
        eventLoop: EventLoop, index: Int, symbols: SymbolTable, metrics: GatewayMetrics, interest: InterestTracker,
        inboxLimit: Int
    ) {
        self.eventLoop = eventLoop
        self.index = index
        self.inbox = NIOLockedValueBox(Inbox(queued: LoopInbox(limit: inboxLimit)))
        self.symbols = symbols
        self.metrics = metrics
        self.interest = interest
        self.local = NIOLoopBoundBox.makeBoxSendingValue(
            Local(priceSubscribers: Array(repeating: [:], count: symbols.count), latest: Array(repeating: nil, count: symbols.count)),
            eventLoop: eventLoop)
    }

    public var connectionCount: Int { local.value.connections.count }

    /// Deliveries waiting for the next drain (from any thread).
    var queuedDeliveries: Int { inbox.withLockedValue { $0.queued.depth } }

    // MARK: Registration (on the loop)

    public func register(_ connection: HubConnection) {
        local.value.connections[ObjectIdentifier(connection)] = connection
    }

    /// Removes the connection and all its subscriptions.
    public func unregister(_ connection: HubConnection, subscribedTo subscribed: SymbolSet, userID: String?) {
        local.value.connections[ObjectIdentifier(connection)] = nil
        removePriceSubscriptions(connection, Array(subscribed))
        if let userID { removeUser(connection, userID: userID) }
    }

    public func addPriceSubscriptions(_ connection: HubConnection, _ indices: [Int]) {
        let id = ObjectIdentifier(connection)
        for symbol in indices where local.value.priceSubscribers[symbol].updateValue(connection, forKey: id) == nil {
            if local.value.priceSubscribers[symbol].count == 1 { interest.change(.prices(symbol: symbols[symbol]), loop: index, active: true) }
        }
    }

    public func removePriceSubscriptions(_ connection: HubConnection, _ indices: [Int]) {
        let id = ObjectIdentifier(connection)
        for symbol in indices where local.value.priceSubscribers[symbol].removeValue(forKey: id) != nil {
            if local.value.priceSubscribers[symbol].isEmpty { interest.change(.prices(symbol: symbols[symbol]), loop: index, active: false) }
        }
    }

    public func addUser(_ connection: HubConnection, userID: String) {
        var list = local.value.userSubscribers[userID] ?? []
        guard !list.contains(where: { $0 === connection }) else { return }
        list.append(connection)
        local.value.userSubscribers[userID] = list
        if list.count == 1 { interest.change(.notifications(userID: userID), loop: index, active: true) }
    }

    public func removeUser(_ connection: HubConnection, userID: String) {
        guard var list = local.value.userSubscribers[userID], let position = list.firstIndex(where: { $0 === connection }) else { return }
        list.remove(at: position)
        if list.isEmpty {
            local.value.userSubscribers[userID] = nil
            interest.change(.notifications(userID: userID), loop: index, active: false)
        } else {
            local.value.userSubscribers[userID] = list
        }
    }

    /// The latest released price of each symbol that has one, in the given order.
    public func snapshot(_ indices: [Int]) -> [PriceUpdate] {
        return indices.compactMap { local.value.latest[$0] }
    }

    func seedLatest(_ prices: [(Int, PriceUpdate)]) {
        for (index, price) in prices where local.value.latest[index] == nil { local.value.latest[index] = price }
    }

    // MARK: Delivery

    /// Called from any thread. Batches deliveries until the loop drains them.
    func enqueue(_ deliveries: [Delivery]) {
        let mustSchedule = inbox.withLockedValue { inbox in
            for delivery in deliveries { inbox.queued.add(delivery) }
            defer { inbox.drainScheduled = true }
            return !inbox.drainScheduled
        }
        if mustSchedule {
            eventLoop.execute { self.drain() }
        }
    }

    private func drain() {
        let batch = inbox.withLockedValue { inbox in
            inbox.drainScheduled = false
            return inbox.queued.take()
        }
        metrics.recordInbox(loop: index, depth: batch.depth, droppedPrices: batch.droppedPrices,
                            droppedNotifications: batch.droppedNotifications)
        // First the users whose notification was dropped: nothing newer may reach them before the cut.
        for userID in batch.usersToCut {
            for connection in local.value.userSubscribers[userID] ?? [] { connection.fellBehind() }
        }
        var priceFrames = 0
        var notificationFrames = 0
        // One message (the usual case under fan-out): flush each write at once. Several: write all,
        // then flush each touched connection once.
        let flushEach = batch.deliveries.count == 1
        for item in batch.deliveries {
            switch item {
            case .price(let symbol, let price, let frame, let releasedAt):
                local.value.latest[symbol] = price
                let subscribers = local.value.priceSubscribers[symbol]
                guard !subscribers.isEmpty else { continue }
                for connection in subscribers.values where connection.enqueueShared(frame, flush: flushEach) {
                    if !flushEach { markTouched(connection) }
                    priceFrames += 1
                }
                metrics.recordPriceDelivery(since: releasedAt)
            case .notification(let userID, let id, let frame, let publishedAt):
                guard let subscribers = local.value.userSubscribers[userID] else { continue }
                for connection in subscribers where connection.enqueueNotification(id: id, frame: frame, flush: flushEach) {
                    if !flushEach { markTouched(connection) }
                    notificationFrames += 1
                }
                metrics.recordNotificationDelivery(since: publishedAt)
            }
        }
        for connection in local.value.touched {
            connection.flushPending = false
            connection.flush()
        }
        local.value.touched.removeAll(keepingCapacity: true)
        metrics.countBroadcastFrames(prices: priceFrames, notifications: notificationFrames)
    }

    private func markTouched(_ connection: HubConnection) {
        if !connection.flushPending {
            connection.flushPending = true
            local.value.touched.append(connection)
        }
    }

    // MARK: Sweep and drain

    func startSweeping(every interval: TimeAmount) {
        local.value.sweepTask = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [unowned self] _ in
            let now = NIODeadline.now().uptimeNanoseconds
            let wallClock = Timestamp.now()
            for connection in Array(local.value.connections.values) {
                connection.sweep(now: now, wallClock: wallClock)
            }
        }
    }

    func stopSweeping() {
        local.value.sweepTask?.cancel()
        local.value.sweepTask = nil
    }

    /// Closes every connection with 1001, spread evenly over `duration`.
    func goAway(over duration: TimeAmount) -> EventLoopFuture<Void> {
        let victims = Array(local.value.connections.values)
        let promise = eventLoop.makePromise(of: Void.self)
        guard !victims.isEmpty else {
            promise.succeed()
            return promise.futureResult
        }
        // One close every `duration / N`, batched to at most one wakeup per 10 ms.
        let tick = max(TimeAmount.milliseconds(10), .nanoseconds(duration.nanoseconds / Int64(victims.count)))
        let perTick = max(1, Int((Double(victims.count) * Double(tick.nanoseconds) / Double(max(1, duration.nanoseconds))).rounded()))
        var next = 0
        eventLoop.assumeIsolated().repeatEvery(tick) {
            let end = min(victims.count, next + perTick)
            for connection in victims[next..<end] { connection.goAway() }
            next = end
            guard next >= victims.count else { return true }
            promise.succeed()
            return false
        }
        return promise.futureResult
    }
}
