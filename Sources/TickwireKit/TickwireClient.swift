#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NIOConcurrencyHelpers
@_exported import TickwireProtocol

/// A connection to a Tickwire gateway that stays up: it reconnects with jittered backoff, keeps
/// the heartbeat, refreshes the token, resubscribes and catches up on missed notifications, by the
/// rules of docs/CLIENTS.md. Prices, notifications, states, errors and gaps arrive as
/// `AsyncStream`s, which end when the client is closed.
///
/// ```swift
/// let client = TickwireClient(url: URL(string: "wss://example.com/ws")!, token: { try await api.freshToken() })
/// for await price in client.prices(["BTC", "ETH"]) { print(price.symbol, price.priceUSD) }
/// ```
///
/// The client connects as soon as it is created, and closes when `close()` is called or the last
/// reference to it goes away.
public final class TickwireClient: Sendable {
    private let engine: ClientEngine
    private let commands: AsyncStream<ClientCommand>.Continuation
    private let observers: ClientObservers
    private let nextStreamID = NIOLockedValueBox(0)

    /// A client with a fixed token. When the gateway refuses it (4001), the client stops:
    /// `.closed(.unauthorized)`. Use a token provider for sessions longer than one token's life.
    public convenience init(url: URL, token: String, configuration: Configuration = Configuration()) {
        self.init(url: url, source: .fixed(token), configuration: configuration)
    }

    /// A client that asks `token` for a token on every connect, after a refusal, and before the
    /// current one expires.
    public convenience init(
        url: URL, token: @escaping @Sendable () async throws -> String, configuration: Configuration = Configuration()
    ) {
        self.init(url: url, source: .provider({ _ in try await token() }), configuration: configuration)
    }

    /// Like `init(url:token:)`, telling the provider why it is asked (after a refusal, skip any cache).
    public convenience init(
        url: URL, tokenProvider: @escaping @Sendable (TokenReason) async throws -> String,
        configuration: Configuration = Configuration()
    ) {
        self.init(url: url, source: .provider(tokenProvider), configuration: configuration)
    }

    private init(url: URL, source: TokenSource, configuration: Configuration) {
        observers = ClientObservers()
        let (stream, continuation) = AsyncStream.makeStream(of: ClientCommand.self, bufferingPolicy: .unbounded)
        commands = continuation
        do {
            let gateway = try GatewayAddress(url)
            let engine = ClientEngine(gateway: gateway, token: source, configuration: configuration, observers: observers)
            self.engine = engine
            Task { await engine.run(stream) }
        } catch {
            // A URL the client cannot use is not retried: closed at once, with the reason.
            let gateway = try! GatewayAddress(URL(string: "ws://invalid.invalid/")!)
            engine = ClientEngine(gateway: gateway, token: source, configuration: configuration, observers: observers)
            let failure = TickwireError.client("INVALID_URL", error.description)
            observers.states.send(.closed(.init(reason: .client, code: nil, error: failure)))
            observers.finish()
            continuation.finish()
        }
    }

    deinit {
        commands.yield(.close)
        commands.finish()
    }

    // MARK: - Streams

    /// Prices of `symbols` (upper-cased; 1 to 15 letters or digits each): the latest price of each
    /// as soon as the gateway confirms it, then every update, `stale` included. Several streams may
    /// share symbols; a symbol is unsubscribed when no stream holds it. Ending the consuming task
    /// ends the stream. A symbol that is not valid is reported on `errors` and skipped; one the
    /// gateway does not list gets its `UNKNOWN_SYMBOL` error on `errors`.
    public func prices(_ symbols: [String]) -> AsyncStream<PriceUpdate> {
        var valid: [String] = []
        for symbol in symbols {
            if let normalized = Symbol.normalize(symbol) {
                if !valid.contains(normalized) { valid.append(normalized) }
            } else {
                observers.errors.send(.client("INVALID_SYMBOL", "\"\(symbol)\" is not a symbol: expected 1 to 15 letters or digits"))
            }
        }
        let id = makeStreamID()
        let (stream, continuation) = AsyncStream.makeStream(of: PriceUpdate.self, bufferingPolicy: .bufferingNewest(1024))
        continuation.onTermination = { [commands] _ in commands.yield(.removePrices(id: id)) }
        // A client that could never run (a URL it cannot use) ends the stream at once.
        if case .terminated = commands.yield(.addPrices(id: id, symbols: valid, continuation)) { continuation.finish() }
        return stream
    }

    /// The notifications of the token's user (`transaction_update`, `balance_update`,
    /// `notification`), each id once and in order, caught up after every reconnect and, with a
    /// persistent `notificationIDStore`, after a relaunch.
    public func notifications() -> AsyncStream<WalletEvent> {
        let id = makeStreamID()
        let (stream, continuation) = AsyncStream.makeStream(of: WalletEvent.self, bufferingPolicy: .unbounded)
        continuation.onTermination = { [commands] _ in commands.yield(.removeNotifications(id: id)) }
        if case .terminated = commands.yield(.addNotifications(id: id, continuation)) { continuation.finish() }
        return stream
    }

    /// The connection's state: the current one first, then every change.
    public var states: AsyncStream<ConnectionState> { observers.states.stream() }

    /// The current state.
    public var state: ConnectionState { observers.states.current ?? .connecting }

    /// Every `error` frame the server sends, with its `requestID`, and the client's own errors.
    public var errors: AsyncStream<TickwireError> { observers.errors.stream() }

    /// Each time the server could not replay everything after the last id: events may be missing,
    /// so reload the user's state from the wallet's own API.
    public var gaps: AsyncStream<NotificationGap> { observers.gaps.stream() }

    // MARK: - Life cycle

    /// For an app going to the background: closes the connection (1000) and stays closed
    /// (`.closed(.suspended)`) until `resume()`. Subscriptions are kept.
    public func suspend() { commands.yield(.suspend) }

    /// For an app coming to the foreground: connects again after `suspend()`; otherwise checks
    /// the connection at once (a ping that must be answered within `livenessTimeout`) rather than
    /// trusting a socket that only looks open, and ends a backoff wait.
    public func resume() { commands.yield(.resume) }

    /// For a network change: ends a backoff wait (not the one after a 1008 close) and checks a
    /// connection that looks up, as `resume()` does.
    public func retryNow() { commands.yield(.retryNow) }

    /// Connects again after the server closed with 1000 or the token was refused.
    public func connect() { commands.yield(.connect) }

    /// Closes the connection (1000) for good: every stream ends.
    public func close() { commands.yield(.close) }

    private func makeStreamID() -> Int {
        nextStreamID.withLockedValue { id in
            id += 1
            return id
        }
    }
}

extension PriceUpdate {
    /// `priceUSD` as a `Decimal`, exact (it is a decimal string on the wire).
    public var priceUSDDecimal: Decimal? { Decimal(string: priceUSD) }
    /// `change24h` (a percent) as a `Decimal`.
    public var change24hDecimal: Decimal? { Decimal(string: change24h) }
    public var volume24hDecimal: Decimal? { volume24h.flatMap { Decimal(string: $0) } }
}
