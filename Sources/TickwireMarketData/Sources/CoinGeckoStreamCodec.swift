import NIOCore
import TickwireProtocol

/// CoinGecko's WebSocket (`wss://stream.coingecko.com/v1`, paid plans: Analyst and above), the
/// `CGSimplePrice` channel, ActionCable style: the server greets (`welcome`), the client
/// subscribes (`identifier` is JSON inside a string), waits for `confirm_subscription`, then
/// sends `set_tokens` (its `data` is JSON inside a string too; acknowledged with code 2000).
/// Prices are pushed as `{"c":"C1","i":coin id,"p":price,"pp":change %,"v":volume,"t":seconds}`,
/// keys in any order, `p` a number or a string, `t` a fraction of a second, `null` when unknown.
public struct CoinGeckoStreamCodec: WebSocketSourceCodec {
    public static let defaultURL = "wss://stream.coingecko.com/v1"
    static let identifier = #"{"channel":"CGSimplePrice"}"#
    let base: WebSocketURL
    let key: String?
    let names: SymbolMap.Names

    public init(url: WebSocketURL, key: String?, symbolMap: SymbolMap) {
        self.base = url
        self.key = key
        self.names = symbolMap.names(in: .coingecko)
    }

    public func url(for symbols: [String]) -> WebSocketURL { base }
    public var headers: [(String, String)] { key.map { [("x-cg-pro-api-key", $0)] } ?? [] }
    /// A connection silent this long is dead (the source's heartbeat or ping cadence, with margin).
    public var idleTimeout: TimeAmount = .seconds(30)
    public func opening(for symbols: [String]) -> [String] { [] }

    public func read(_ message: String, symbols requested: [String], received: Timestamp) -> [CodecOutput] {
        guard var object = ProviderMessage.object(message) else {
            return [.unreadable("coingecko-ws: not a message: \(message.prefix(200))")]
        }
        // ActionCable may wrap a channel's message in {"identifier":..., "message": {...}}.
        if case .object(let inner)? = object["message"], inner["c"] != nil { object = inner }
        switch object["type"]?.stringValue {
        case "welcome":
            return [.reply(JSONValue.object(["command": "subscribe", "identifier": .string(Self.identifier)]).jsonText)]
        case "confirm_subscription":
            let ids = names.names(of: requested).map { JSONValue.string($0) }
            let data = JSONValue.object(["coin_id": .array(ids), "vs_currencies": ["usd"], "action": "set_tokens"]).jsonText
            return [.reply(JSONValue.object(["command": "message", "identifier": .string(Self.identifier), "data": .string(data)]).jsonText)]
        case "reject_subscription":
            return [.providerError("coingecko-ws: the subscription to CGSimplePrice was rejected (a paid plan is required)")]
        case "ping", "disconnect":
            return [.ignored]
        default:
            break
        }
        if let code = object["code"] {
            // 3000: the greeting; 2000: tokens set. Anything else is an error (over the limit, a bad key).
            guard code == .number("2000") || code == .number("3000") else {
                return [.providerError("coingecko-ws: code \(code.jsonText) \(object["message"]?.stringValue ?? "")")]
            }
            return [.ignored]
        }
        guard object["c"]?.stringValue == "C1" else { return [.ignored] }
        guard let coin = object["i"]?.stringValue, let symbol = names.symbolByName[coin] else {
            return [.unreadable("coingecko-ws: a price of an unknown coin: \(message.prefix(200))")]
        }
        guard let price = object["p"]?.decimal else { return [.ignored] }  // `null`: nothing known yet
        let change = object["pp"]?.decimal
        let time = object["t"]?.decimal.flatMap { Int64(($0 * DecimalNumber(1000)).rounded(fractionDigits: 0).plain) }
            .map { Timestamp(millisecondsSinceEpoch: $0) } ?? received
        return [.quote(Quote(
            symbol: symbol, source: "coingecko-ws", price: price, change24h: change, volume24h: object["v"]?.decimal,
            time: time, isStaleAtSource: change == nil))]
    }
}
