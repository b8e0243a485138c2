import NIOCore
import TickwireHTTPClient
import TickwireProtocol

/// A WebSocket source: its codec over a `MarketWebSocket`, reconnecting with full-jitter
/// backoff (1 s doubling to 30 s, back to 1 s after a connection that stayed up 10 s, so a
/// server that drops every connection after a day is rejoined at once) and resubscribing.
public struct WebSocketSource<Codec: WebSocketSourceCodec>: MarketDataSource {
    public let name: String
    public let codec: Codec
    let trust: HTTPClient.Trust
    let symbolMap: SymbolMap
    let column: SymbolMap.Column
    var backoff = SourceBackoff()

    public init(name: String, codec: Codec, symbolMap: SymbolMap, column: SymbolMap.Column, trust: HTTPClient.Trust = .system) {
        self.name = name
        self.codec = codec
        self.symbolMap = symbolMap
        self.column = column
        self.trust = trust
    }

    public func mappable(_ symbols: [String]) -> [String] {
        symbols.filter { symbolMap.name(of: $0, in: column) != nil }
    }

    public func run(symbols: [String], report: @escaping @Sendable (SourceEvent) async -> Void) async throws {
        let symbols = mappable(symbols)
        guard !symbols.isEmpty else { return }
        var backoff = self.backoff
        while !Task.isCancelled {
            let started = ContinuousClock.now
            do {
                try await MarketWebSocket.connect(
                    to: codec.url(for: symbols), headers: codec.headers, trust: trust, idleTimeout: codec.idleTimeout
                ) { session in
                    await report(.connected)
                    for message in codec.opening(for: symbols) { try await session.send(message) }
                    reading: for try await message in session.messages {
                        var quotes: [Quote] = []
                        var reconnect = false
                        for output in codec.read(message, symbols: symbols, received: .now()) {
                            switch output {
                            case .quote(let quote): quotes.append(quote)
                            case .reply(let text): try await session.send(text)
                            case .ignored: break
                            case .providerError(let text), .unreadable(let text): await report(.unreadable(text))
                            case .reconnect: reconnect = true
                            }
                        }
                        if !quotes.isEmpty { await report(.quotes(quotes)) }
                        if reconnect { break reading }
                    }
                }
                await report(.disconnected(reason: "the connection ended"))
            } catch is CancellationError {
                return
            } catch {
                await report(.disconnected(reason: "\(error)"))
            }
            if ContinuousClock.now - started >= .seconds(10) { backoff.reset() }
            try await Task.sleep(for: backoff.next())
        }
    }
}

/// Full jitter: each delay uniform in [0, step), the step doubling from 1 s to 30 s.
public struct SourceBackoff: Sendable {
    var step: Duration = .seconds(1)
    let initial: Duration
    let maximum: Duration
    var random: @Sendable () -> Double = { Double.random(in: 0..<1) }

    public init(initial: Duration = .seconds(1), maximum: Duration = .seconds(30)) {
        self.initial = initial
        self.maximum = maximum
        self.step = initial
    }

    public mutating func next() -> Duration {
        let delay = step * random()
        step = min(step * 2, maximum)
        return delay
    }

    public mutating func reset() {
        step = initial
    }
}
