import TickwireProtocol

/// The per-symbol update window (SC-004): at most one price per `interval`. A price
/// arriving inside the window replaces the held one, and the newest held price is
/// released when the window opens again, so the latest value always arrives and is
/// never more than one interval late.
public struct PriceWindow: Sendable {
    public enum Decision: Sendable, Equatable {
        /// Send this price now; the window is closed until `now + interval`.
        case release(PriceUpdate)
        /// Held; call `windowOpened` at `deadline` (nil when a release is already scheduled).
        case hold(deadline: UInt64?)
    }

    public let intervalNanoseconds: UInt64
    private var lastRelease: UInt64?
    private var held: PriceUpdate?
    private var releaseScheduled = false

    public init(intervalNanoseconds: UInt64) {
        self.intervalNanoseconds = intervalNanoseconds
    }

    public mutating func offer(_ price: PriceUpdate, now: UInt64) -> Decision {
        if let lastRelease, now < lastRelease + intervalNanoseconds {
            held = price
            if releaseScheduled { return .hold(deadline: nil) }
            releaseScheduled = true
            return .hold(deadline: lastRelease + intervalNanoseconds)
        }
        lastRelease = now
        held = nil
        return .release(price)
    }

    /// The scheduled release: returns the held price, if any, and starts a new window.
    public mutating func windowOpened(now: UInt64) -> PriceUpdate? {
        releaseScheduled = false
        guard let price = held else { return nil }
        held = nil
        lastRelease = now
        return price
    }
}
