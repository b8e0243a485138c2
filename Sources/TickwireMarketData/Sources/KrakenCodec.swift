import NIOCore
import TickwireProtocol

/// Kraken's WebSocket v2 (`wss://ws.kraken.com/v2`, no key): the `ticker` channel, a snapshot
/// then an update per trade. Prices arrive as JSON numbers, read from their text; the change is
/// `change_pct`; the USD volume is `volume` (base units) times `vwap`. `heartbeat` comes about
/// every second when nothing else does: the liveness watchdog.
public struct KrakenCodec: WebSocketSourceCodec {
    public static let defaultURL = "wss://ws.kraken.com/v2"
    let base: WebSocketURL
    let names: SymbolMap.Names

    public init(url: WebSocketURL, symbolMap: SymbolMap) {
        self.base = url
        self.names = symbolMap.names(in: .kraken)
    }

    public func url(for symbols: [String]) -> WebSocketURL { base }
    public var headers: [(String, String)] { [] }
    /// A connection silent this long is dead (the source's heartbeat or ping cadence, with margin).
    public var idleTimeout: TimeAmount = .seconds(10)

    public func opening(for symbols: [String]) -> [String] {
        let pairs = names.names(of: symbols).map { JSONValue.string($0) }
        return [JSONValue.object(["method": "subscribe", "params": ["channel": "ticker", "symbol": .array(pairs)]]).jsonText]
    }

    public func read(_ message: String, symbols _: [String], received: Timestamp) -> [CodecOutput] {
        guard let object = ProviderMessage.object(message) else { return [.unreadable("kraken: not a message: \(message.prefix(200))")] }
        if let method = object["method"]?.stringValue {
            if object["success"] == .bool(false) || method == "error" {
                let symbol = object["symbol"]?.stringValue.map { " (\($0))" } ?? ""
                return [.providerError("kraken: \(object["error"]?.stringValue ?? "an error")\(symbol)")]
            }
            return [.ignored]  // acks, pongs
        }
        switch object["channel"]?.stringValue {
        case "ticker":
            guard case .array(let entries)? = object["data"], !entries.isEmpty else {
                return [.unreadable("kraken: a ticker without data: \(message.prefix(200))")]
            }
            return entries.map { entry in quote(entry.objectValue ?? [:], received: received) }
        case "heartbeat", "status":
            return [.ignored]
        case .some:
            return [.ignored]
        case nil:
            return [.unreadable("kraken: neither a channel nor a method: \(message.prefix(200))")]
        }
    }

    func quote(_ entry: JSONObject, received: Timestamp) -> CodecOutput {
        guard let pair = entry["symbol"]?.stringValue, let symbol = names.symbolByName[pair], let price = entry["last"]?.decimal else {
            return .unreadable("kraken: a ticker entry without symbol or last price")
        }
        let volume = entry["volume"]?.decimal.map { $0 * (entry["vwap"]?.decimal ?? price) }
        let time = entry["timestamp"]?.stringValue.flatMap(Timestamp.init(rfc3339:)) ?? received
        return .quote(Quote(
            symbol: symbol, source: "kraken", price: price, change24h: entry["change_pct"]?.decimal, volume24h: volume, time: time))
    }
}
