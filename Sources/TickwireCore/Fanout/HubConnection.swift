import NIOCore
import TickwireProtocol

/// What the fan-out needs from a client connection. Every method is called on the
/// connection's own event loop, from the `LoopHub` of that loop.
public protocol HubConnection: AnyObject {
    /// Queues a frame encoded once for many connections; flushes it at once when `flush` is true
    /// (a batch of one message: one pipeline traversal instead of a write and a later flush).
    /// Returns false when the connection did not take it (closing, or over its byte bound).
    func enqueueShared(_ frame: ByteBuffer, flush: Bool) -> Bool
    /// Queues a live notification (the session filters duplicates and holds it during a replay).
    func enqueueNotification(id: StreamID, frame: ByteBuffer, flush: Bool) -> Bool
    /// Set by the hub when the connection has unflushed frames from the current batch.
    var flushPending: Bool { get set }
    func flush()
    /// The periodic check: heartbeat, token expiry, close deadlines.
    func sweep(now: UInt64, wallClock: Timestamp)
    /// Close with 1001 (drain before shutdown).
    func goAway()
    /// Close with 4009: the loop dropped a notification for this connection's user, which its
    /// reconnect with `since` recovers from the store.
    func fellBehind()
}
