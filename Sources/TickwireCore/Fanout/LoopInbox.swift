import DequeModule

/// The deliveries waiting for one event loop, bounded so that a loop that falls behind
/// cannot grow without limit. Past `limit`, the oldest price goes first: the window's next
/// release of that symbol supersedes it. A notification is never dropped silently: when
/// only notifications are left to drop, the oldest goes and its user is marked, so the
/// loop cuts that user's connections (4009) before it delivers anything newer to them,
/// and their reconnect with `since` recovers it from the store.
struct LoopInbox {
    let limit: Int
    private var prices = Deque<Delivery>()
    private var notifications = Deque<Delivery>()
    private var usersToCut: Set<String> = []
    private var droppedPrices = 0
    private var droppedNotifications = 0

    init(limit: Int) {
        self.limit = max(1, limit)
    }

    var depth: Int { prices.count + notifications.count }
    var isEmpty: Bool { depth == 0 && usersToCut.isEmpty }

    mutating func add(_ delivery: Delivery) {
        switch delivery {
        case .price: prices.append(delivery)
        case .notification: notifications.append(delivery)
        }
        guard depth > limit else { return }
        if prices.popFirst() != nil {
            droppedPrices += 1
        } else if case .notification(let userID, _, _, _)? = notifications.popFirst() {
            droppedNotifications += 1
            usersToCut.insert(userID)
        }
    }

    /// What a drain must do, in this order: cut the marked users, then deliver.
    struct Batch {
        var usersToCut: Set<String>
        /// Prices, then notifications, each in arrival order.
        var deliveries: [Delivery]
        var depth: Int
        var droppedPrices: Int
        var droppedNotifications: Int
    }

    /// Takes everything queued, leaving the inbox empty.
    mutating func take() -> Batch {
        var deliveries = Array(prices)
        deliveries.append(contentsOf: notifications)
        let batch = Batch(
            usersToCut: usersToCut, deliveries: deliveries, depth: depth, droppedPrices: droppedPrices,
            droppedNotifications: droppedNotifications)
        self = LoopInbox(limit: limit)
        return batch
    }
}
