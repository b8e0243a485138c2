import NIOCore
import TickwireProtocol

/// Binance's combined market streams (`wss://stream.binance.com:9443/stream?streams=...`, no key):
/// `<symbol>@ticker`, a 24 h rolling ticker each second. `c` is the last price, `P` the change in
/// percent, `q` the quote volume: the pairs are against USDT, taken as USD. The server pings every
/// 20 s (answered by the connection), drops every connection after 24 h, and may announce a
/// shutdown (`serverShutdown`): both mean reconnect at once.
public struct BinanceCodec: WebSocketSourceCodec {
    public static let defaultURL = "wss://stream.binance.com:9443"
    /// A connection carries at most this many streams.
    public static let maximumStreams = 1024
    let base: WebSocketURL
    let names: SymbolMap.Names

    public init(url: WebSocketURL, symbolMap: SymbolMap) {
        self.base = url
        self.names = symbolMap.names(in: .binance) { $0.lowercased() }
    }

    public func url(for symbols: [String]) -> WebSocketURL {
        let streams = names.names(of: symbols).map { "\($0)@ticker" }.joined(separator: "/")
        let prefix = base.target == "/" ? "" : base.target
        return base.with(target: "\(prefix)/stream?streams=\(streams)")
    }

    public var headers: [(String, String)] { [] }
    /// A connection silent this long is dead (the source's heartbeat or ping cadence, with margin).
    public var idleTimeout: TimeAmount = .seconds(30)
    public func opening(for symbols: [String]) -> [String] { [] }

    public func read(_ message: String, symbols _: [String], received: Timestamp) -> [CodecOutput] {
        guard let object = ProviderMessage.object(message) else { return [.unreadable("binance: not a message: \(message.prefix(200))")] }
        if let code = object["code"], let text = object["msg"]?.stringValue {
            return [.providerError("binance: \(text) (code \(code.jsonText))")]
        }
        guard let data = object["data"]?.objectValue ?? (object["e"] != nil ? object : nil) else {
            return object["result"] != nil ? [.ignored] : [.unreadable("binance: not a stream event: \(message.prefix(200))")]
        }
        switch data["e"]?.stringValue {
        case "24hrTicker":
            guard let pair = data["s"]?.stringValue, let symbol = names.symbolByName[pair.lowercased()], let price = data["c"]?.decimal else {
                return [.unreadable("binance: a ticker without symbol or last price: \(message.prefix(200))")]
            }
            let time = data["E"]?.decimal.flatMap { Int64($0.plain) }.map { Timestamp(millisecondsSinceEpoch: $0) } ?? received
            return [.quote(Quote(
                symbol: symbol, source: "binance", price: price, change24h: data["P"]?.decimal, volume24h: data["q"]?.decimal, time: time))]
        case "serverShutdown":
            return [.reconnect]
        default:
            return [.ignored]
        }
    }
}
