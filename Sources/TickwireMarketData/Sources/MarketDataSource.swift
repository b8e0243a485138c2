import NIOCore
import TickwireProtocol

/// What a market-data source tells the feed.
public enum SourceEvent: Sendable, Equatable {
    case connected
    case disconnected(reason: String)
    /// Quotes known together (one message, one poll).
    case quotes([Quote])
    /// A message that could not be understood; the source goes on.
    case unreadable(String)
}

/// A source of real market data (an exchange's WebSocket, CoinGecko's API, a replay file):
/// it runs until cancelled, reconnecting on its own, and reports what happens.
public protocol MarketDataSource: Sendable {
    /// Its name in `--source` and in each price's `source` field.
    var name: String { get }
    /// The symbols it can map; the others it leaves to the other sources.
    func mappable(_ symbols: [String]) -> [String]
    func run(symbols: [String], report: @escaping @Sendable (SourceEvent) async -> Void) async throws
}

/// How one WebSocket source speaks: what to send once connected, and what each message means.
/// A value with no I/O, so every sample message of a provider's docs is a unit test.
public protocol WebSocketSourceCodec: Sendable {
    /// The source's connection: base URL plus whatever the symbols add (Binance puts them in the path).
    func url(for symbols: [String]) -> WebSocketURL
    /// Extra headers of the upgrade request (an API key).
    var headers: [(String, String)] { get }
    /// A connection silent this long is dead (the source's heartbeat cadence, with margin).
    var idleTimeout: TimeAmount { get }
    /// Sent right after the upgrade (subscriptions).
    func opening(for symbols: [String]) -> [String]
    /// One text message: what it means (`symbols`: those this connection asked for).
    func read(_ message: String, symbols: [String], received: Timestamp) -> [CodecOutput]
}

public enum CodecOutput: Sendable, Equatable {
    case quote(Quote)
    /// Send this (a reply the protocol expects: a subscription after a greeting, a pong).
    case reply(String)
    /// Part of the protocol, nothing to do (a heartbeat, a subscription ack).
    case ignored
    /// The provider reports an error (a refused subscription): logged, counted.
    case providerError(String)
    /// The provider asks for a new connection (Binance's `serverShutdown`): reconnect now.
    case reconnect
    /// Not a message of this protocol.
    case unreadable(String)
}
