import DequeModule
import NIOConcurrencyHelpers

/// A queue that one test task reads with a deadline while NIO threads write to it.
public final class Mailbox<Item: Sendable>: @unchecked Sendable {
    private let lock = NIOLock()
    private var items: Deque<Item> = []
    private var waiter: (id: Int, continuation: CheckedContinuation<Item?, Never>)?
    private var nextWaiterID = 0

    public init() {}

    public func push(_ item: Item) {
        lock.lock()
        if let waiter {
            self.waiter = nil
            lock.unlock()
            waiter.continuation.resume(returning: item)
            return
        }
        items.append(item)
        lock.unlock()
    }

    /// The next item, or nil when none arrives within `timeout`.
    public func next(timeout: Duration) async -> Item? {
        await withCheckedContinuation { continuation in
            lock.lock()
            if let item = items.popFirst() {
                lock.unlock()
                continuation.resume(returning: item)
                return
            }
            nextWaiterID += 1
            let id = nextWaiterID
            waiter = (id, continuation)
            lock.unlock()
            Task {
                try? await Task.sleep(for: timeout)
                self.lock.lock()
                guard let waiter = self.waiter, waiter.id == id else {
                    self.lock.unlock()
                    return
                }
                self.waiter = nil
                self.lock.unlock()
                waiter.continuation.resume(returning: nil)
            }
        }
    }

    public var count: Int { lock.withLock { items.count } }
}
