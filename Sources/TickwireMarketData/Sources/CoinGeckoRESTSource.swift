import NIOCore
import TickwireHTTPClient
import TickwireProtocol

/// CoinGecko's `GET /api/v3/simple/price`, polled. CoinGecko refreshes that cache every 60 s
/// (keyless and demo) or 20 s (paid plans), so polling faster only spends quota: the interval
/// defaults to the plan's. A 429 waits its `Retry-After` when it has one, else backs off
/// (doubling, up to 10 minutes); a `null` 24 h change marks the price stale, as CoinGecko says.
public struct CoinGeckoRESTSource: MarketDataSource {
    public enum Plan: String, Sendable, CaseIterable {
        /// `https://api.coingecko.com/api/v3`; with a key, the `x-cg-demo-api-key` header. Also keyless.
        case demo
        /// `https://pro-api.coingecko.com/api/v3` with `x-cg-pro-api-key`.
        case pro

        public var defaultURL: String {
            self == .pro ? "https://pro-api.coingecko.com/api/v3" : "https://api.coingecko.com/api/v3"
        }

        /// CoinGecko's cache refresh for `/simple/price` on this plan.
        public var defaultPollInterval: Duration { self == .pro ? .seconds(20) : .seconds(60) }

        var keyHeader: String { self == .pro ? "x-cg-pro-api-key" : "x-cg-demo-api-key" }
    }

    public let name = "coingecko-rest"
    let base: String
    let plan: Plan
    let key: String?
    let pollInterval: Duration
    let symbolMap: SymbolMap
    let trust: HTTPClient.Trust

    public init(
        url: String? = nil, plan: Plan = .demo, key: String? = nil, pollInterval: Duration? = nil, symbolMap: SymbolMap,
        trust: HTTPClient.Trust = .system
    ) {
        self.base = url ?? plan.defaultURL
        self.plan = plan
        self.key = key
        self.pollInterval = pollInterval ?? plan.defaultPollInterval
        self.symbolMap = symbolMap
        self.trust = trust
    }

    public func mappable(_ symbols: [String]) -> [String] {
        symbols.filter { symbolMap.name(of: $0, in: .coingecko) != nil }
    }

    /// The request for these symbols.
    func target(for symbols: [String]) throws -> HTTPClient.Target {
        let ids = symbols.compactMap { symbolMap.name(of: $0, in: .coingecko) }.joined(separator: ",")
        return try HTTPClient.Target(url: base).appending(
            path: "/simple/price?ids=\(ids)&vs_currencies=usd&include_24hr_change=true&include_24hr_vol=true"
                + "&include_last_updated_at=true&precision=full")
    }

    public func run(symbols: [String], report: @escaping @Sendable (SourceEvent) async -> Void) async throws {
        let symbols = mappable(symbols)
        guard !symbols.isEmpty else { return }
        let target = try target(for: symbols)
        let headers = [("Accept", "application/json")] + (key.map { [(plan.keyHeader, $0)] } ?? [])
        var failures = 0
        var connected = false
        while !Task.isCancelled {
            var wait = pollInterval
            do {
                let response = try await HTTPClient.request(target, method: .GET, headers: headers, trust: trust, timeout: .seconds(15))
                switch response.status {
                case 200:
                    failures = 0
                    if !connected { await report(.connected) }
                    connected = true
                    let read = Self.read(response.body, symbols: symbolMap, received: .now())
                    if !read.quotes.isEmpty { await report(.quotes(read.quotes)) }
                    for problem in read.problems { await report(.unreadable(problem)) }
                case 429:
                    failures += 1
                    wait = Self.retryAfter(response.headers["retry-after"].first, now: .now())
                        ?? min(pollInterval * (1 << min(failures, 4)), .seconds(600))
                    await report(.unreadable("coingecko-rest: rate limited (429): next poll in \(wait)"))
                default:
                    throw HTTPFailure(status: response.status, body: response.body)
                }
            } catch is CancellationError {
                return
            } catch {
                failures += 1
                if connected || failures == 1 { await report(.disconnected(reason: "\(error)")) }
                connected = false
                wait = min(.seconds(1 << min(failures, 6)), pollInterval)
            }
            try await Task.sleep(for: wait)
        }
    }

    struct HTTPFailure: Error, CustomStringConvertible {
        var status: Int
        var body: String
        var description: String { "coingecko-rest answered \(status): \(body.prefix(200))" }
    }

    /// `{"bitcoin":{"usd":67187.3358936566,"usd_24h_vol":...,"usd_24h_change":3.63,"last_updated_at":1711356300}}`.
    static func read(_ body: String, symbols symbolMap: SymbolMap, received: Timestamp) -> (quotes: [Quote], problems: [String]) {
        guard let object = ProviderMessage.object(body) else { return ([], ["coingecko-rest: not JSON: \(body.prefix(200))"]) }
        let symbolByCoin = symbolMap.names(in: .coingecko).symbolByName
        var quotes: [Quote] = []
        var problems: [String] = []
        for member in object.members {
            let coin = member.key
            guard let symbol = symbolByCoin[coin], let entry = member.value.objectValue else { continue }
            guard let price = entry["usd"]?.decimal else {
                problems.append("coingecko-rest: no usd price for \(coin)")
                continue
            }
            let change = entry["usd_24h_change"]?.decimal
            let time = entry["last_updated_at"]?.decimal.flatMap { Int64($0.rounded(fractionDigits: 0).plain) }
                .map { Timestamp(millisecondsSinceEpoch: $0 * 1000) } ?? received
            quotes.append(Quote(
                symbol: symbol, source: "coingecko-rest", price: price, change24h: change,
                volume24h: entry["usd_24h_vol"]?.decimal, time: time, isStaleAtSource: change == nil))
        }
        return (quotes, problems)
    }

    /// `Retry-After`: seconds, or an HTTP date (RFC 9110 section 10.2.3).
    static func retryAfter(_ value: String?, now: Timestamp) -> Duration? {
        guard let value = value?.trimmingWhitespace(), !value.isEmpty else { return nil }
        if let seconds = Int64(value), seconds >= 0 { return .seconds(min(seconds, 3600)) }
        guard let date = HTTPDate.parse(value) else { return nil }
        let milliseconds = max(0, date.millisecondsSinceEpoch - now.millisecondsSinceEpoch)
        return .milliseconds(min(milliseconds, 3_600_000))
    }
}

/// The IMF-fixdate of HTTP (`Sun, 06 Nov 1994 08:49:37 GMT`), the form `Retry-After` uses.
enum HTTPDate {
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func parse(_ text: String) -> Timestamp? {
        let parts = text.split(separator: " ")
        guard parts.count == 6, parts[5] == "GMT", let day = Int(parts[1]),
            let month = months.firstIndex(of: String(parts[2])), let year = Int(parts[3])
        else { return nil }
        func padded(_ value: Int, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return Timestamp(rfc3339: "\(padded(year, 4))-\(padded(month + 1, 2))-\(padded(day, 2))T\(parts[4])Z")
    }
}
