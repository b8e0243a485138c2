import NIOCore
import TickwireProtocol

/// Applies the per-symbol `PriceWindow` to a stream of prices, on one event loop,
/// and hands each released price to `release`. The gateway puts it between the
/// broker and its clients (whatever a publisher does, a client never gets more than
/// one price of a symbol per window: SC-004); `tickwire feed` puts it before publishing.
public final class PriceGate: Sendable {
    /// A price the window let through, with its symbol's index in the table and the moment it was
    /// let through: the hand-over waits for the end of the loop turn, the stamp does not.
    public struct Released: Sendable {
        public var price: PriceUpdate
        public var symbolIndex: Int
        public var releasedAt: Timestamp
    }

    public let eventLoop: EventLoop
    private let symbols: SymbolTable
    private let release: @Sendable ([Released]) -> Void

    private struct State {
        var windows: [PriceWindow]
        /// Prices released in this event-loop turn, handed over together at its end: a feed that moves
        /// many symbols at once reaches every subscriber in one batch (one flush per connection).
        var released: [Released] = []
    }
    /// Touched on `eventLoop` only (checked on every access).
    private let state: NIOLoopBoundBox<State>

    /// `release` is called on `eventLoop` with the prices released in one loop turn.
    public init(
        eventLoop: EventLoop, symbols: SymbolTable, intervalNanoseconds: UInt64,
        release: @escaping @Sendable ([Released]) -> Void
    ) {
        self.eventLoop = eventLoop
        self.symbols = symbols
        self.release = release
        self.state = NIOLoopBoundBox.makeBoxSendingValue(
            State(windows: Array(repeating: PriceWindow(intervalNanoseconds: intervalNanoseconds), count: symbols.count)),
            eventLoop: eventLoop)
    }

    /// Offers prices from any thread, in one hop. Prices of symbols not in the table are ignored.
    public func offer(_ prices: [PriceUpdate]) {
        let indexed = prices.compactMap { price in symbols.index(of: price.symbol).map { (price, $0) } }
        guard !indexed.isEmpty else { return }
        if eventLoop.inEventLoop {
            for (price, index) in indexed { offerOnLoop(price, index: index) }
        } else {
            eventLoop.execute { for (price, index) in indexed { self.offerOnLoop(price, index: index) } }
        }
    }

    private func offerOnLoop(_ price: PriceUpdate, index: Int) {
        let now = NIODeadline.now().uptimeNanoseconds
        switch state.value.windows[index].offer(price, now: now) {
        case .release(let price):
            stage(price, index)
        case .hold(let deadline?):
            eventLoop.scheduleTask(deadline: NIODeadline.uptimeNanoseconds(deadline)) {
                self.windowOpened(index: index)
            }
        case .hold(nil):
            break
        }
    }

    private func windowOpened(index: Int) {
        if let price = state.value.windows[index].windowOpened(now: NIODeadline.now().uptimeNanoseconds) {
            stage(price, index)
        }
    }

    private func stage(_ price: PriceUpdate, _ index: Int) {
        if state.value.released.isEmpty {
            // Tasks already queued on this loop (more offers) run first, then the batch goes out.
            eventLoop.execute { self.handOver() }
        }
        state.value.released.append(Released(price: price, symbolIndex: index, releasedAt: .now()))
    }

    private func handOver() {
        let batch = state.value.released
        state.value.released.removeAll(keepingCapacity: true)
        release(batch)
    }
}
