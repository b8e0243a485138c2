import NIOCore

/// A handler's one pending deadline: arming it again replaces it, and it is cancelled when the
/// handler leaves or the channel closes. Used by `HTTPTimeoutHandler` and `FirstRequestHandler`.
struct ScheduledDeadline {
    private var scheduled: Scheduled<Void>?

    var isArmed: Bool { scheduled != nil }

    /// Runs `expired` after `timeout` on the handler's loop, unless cancelled or armed again first.
    mutating func arm(in timeout: TimeAmount, context: ChannelHandlerContext, _ expired: @escaping () -> Void) {
        scheduled?.cancel()
        scheduled = context.eventLoop.assumeIsolated().scheduleTask(in: timeout, expired)
    }

    /// Marks it run (called first thing by `expired`).
    mutating func passed() {
        scheduled = nil
    }

    mutating func cancel() {
        scheduled?.cancel()
        scheduled = nil
    }
}
