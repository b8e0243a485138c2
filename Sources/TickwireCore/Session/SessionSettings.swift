import TickwireProtocol

/// Per-connection limits (PROTOCOL.md sections 3 and 7).
public struct SessionLimits: Sendable {
    public var maximumSymbolsPerConnection = 100
    public var subscriptionChangesPerWindow = 100
    public var pingsPerWindow = 60
    public var framesPerWindow = 600
    /// The sliding window of every limit above.
    public var windowNanoseconds: UInt64 = 60_000_000_000
    /// How long a kind of action stays refused after it overflowed its window.
    public var suspensionNanoseconds: UInt64 = 60_000_000_000
    /// Live notifications held back while a `since` replay is read.
    public var maximumBufferedDuringReplay = 1000

    public init() {}
}

/// What every session of a gateway shares. One instance per process.
public final class SessionSettings: Sendable {
    public let symbols: SymbolTable
    public let verifier: JWTVerifier
    public let limits: SessionLimits
    /// Silence after which the server closes with 4008.
    public let heartbeatTimeoutNanoseconds: UInt64
    /// The ping interval advertised to clients in `connected`.
    public let heartbeatIntervalMilliseconds: Int

    public init(
        symbols: SymbolTable, verifier: JWTVerifier, limits: SessionLimits = SessionLimits(),
        heartbeatTimeoutNanoseconds: UInt64 = 60_000_000_000, heartbeatIntervalMilliseconds: Int = 30_000
    ) {
        self.symbols = symbols
        self.verifier = verifier
        self.limits = limits
        self.heartbeatTimeoutNanoseconds = heartbeatTimeoutNanoseconds
        self.heartbeatIntervalMilliseconds = heartbeatIntervalMilliseconds
    }
}
