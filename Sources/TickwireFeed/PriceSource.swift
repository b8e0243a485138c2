import TickwireProtocol

/// Where prices come from: a simulation, or a market data API. A source emits
/// prices as they arrive; what happens next (the window, the broker) is not its concern.
public protocol PriceSource: Sendable {
    /// Short name, written into each price's `source` field.
    var name: String { get }
    /// Emits prices for `symbols` until the task is cancelled; prices known at the same moment
    /// (one poll, one tick) come in one batch.
    func run(symbols: [String], emit: @escaping @Sendable ([PriceUpdate]) async -> Void) async throws
}
