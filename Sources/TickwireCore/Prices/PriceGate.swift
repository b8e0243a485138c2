import NIOCore
import TickwireProtocol

/// Applies the per-symbol `PriceWindow` to a stream of prices, on one event loop,
/// and hands each released price to `release`. The gateway puts it between the
/// broker and its clients (whatever a publisher does, a client never gets more than
/// one price of a symbol per window: SC-004); `tickwire feed` puts it before publishing.
public final class PriceGate: @unchecked Sendable {
    // Mutable state is confined to `eventLoop`.
    public let eventLoop: EventLoop
    private let symbols: SymbolTable
    private let release: @Sendable (PriceUpdate, Int) -> Void
    private var windows: [PriceWindow]

    /// `release` is called on `eventLoop` with the price and its symbol's index in `symbols`.
    public init(
        eventLoop: EventLoop, symbols: SymbolTable, intervalNanoseconds: UInt64,
        release: @escaping @Sendable (PriceUpdate, Int) -> Void
    ) {
        self.eventLoop = eventLoop
        self.symbols = symbols
        self.release = release
        self.windows = Array(repeating: PriceWindow(intervalNanoseconds: intervalNanoseconds), count: symbols.count)
    }

    /// Offers a price from any thread. Prices of symbols not in the table are ignored.
    public func offer(_ price: PriceUpdate) {
        guard let index = symbols.index(of: price.symbol) else { return }
        if eventLoop.inEventLoop {
            offerOnLoop(price, index: index)
        } else {
            eventLoop.execute { self.offerOnLoop(price, index: index) }
        }
    }

    private func offerOnLoop(_ price: PriceUpdate, index: Int) {
        let now = NIODeadline.now().uptimeNanoseconds
        switch windows[index].offer(price, now: now) {
        case .release(let released):
            release(released, index)
        case .hold(let deadline?):
            eventLoop.scheduleTask(deadline: NIODeadline.uptimeNanoseconds(deadline)) {
                self.windowOpened(index: index)
            }
        case .hold(nil):
            break
        }
    }

    private func windowOpened(index: Int) {
        if let price = windows[index].windowOpened(now: NIODeadline.now().uptimeNanoseconds) {
            release(price, index)
        }
    }
}
