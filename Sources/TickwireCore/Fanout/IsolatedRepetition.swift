import NIOCore

extension NIOIsolatedEventLoop {
    /// Runs `body` on this loop after `initialDelay`, then every `delay` for as long as it returns true.
    /// Unlike `scheduleRepeatedTask`, the closure need not be `Sendable`: it never leaves the loop.
    public func repeatEvery(_ delay: TimeAmount, initialDelay: TimeAmount = .zero, _ body: @escaping () -> Bool) {
        scheduleTask(in: initialDelay) {
            if body() { self.repeatEvery(delay, initialDelay: delay, body) }
        }
    }
}
