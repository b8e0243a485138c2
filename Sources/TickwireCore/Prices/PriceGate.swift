import NIOCore
import TickwireProtocol

/// Applies the per-symbol `PriceWindow` to every price the broker delivers, on one
/// event loop, and hands released prices to the hub. Whatever a publisher does, a
/// client never gets more than one price of a symbol per window (SC-004).
public final class PriceGate: @unchecked Sendable {
    // Mutable state is confined to `eventLoop`.
    public let eventLoop: EventLoop
    private let hub: Hub
    private var windows: [PriceWindow]

    public init(eventLoop: EventLoop, hub: Hub, intervalNanoseconds: UInt64) {
        self.eventLoop = eventLoop
        self.hub = hub
        self.windows = Array(repeating: PriceWindow(intervalNanoseconds: intervalNanoseconds), count: hub.symbols.count)
    }

    /// Offers a price from any thread. Prices of symbols the gateway does not list are ignored.
    public func offer(_ price: PriceUpdate) {
        guard let index = hub.symbols.index(of: price.symbol) else { return }
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
            hub.broadcast(released, symbolIndex: index)
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
            hub.broadcast(price, symbolIndex: index)
        }
    }
}
