/// Every key and channel Tickwire uses in Redis (PROTOCOL.md section 10), under an optional prefix.
///
/// On a Redis Cluster (`hashTagged`) the symbol or user id goes in braces, a hash tag: a user's
/// stream and channel then share a slot, so the publish script touches both on one node, and a
/// symbol's latest price sits with its channel.
public struct RedisKeys: Sendable {
    public let prefix: String
    public let hashTagged: Bool

    public init(prefix: String = "", hashTagged: Bool = false) {
        self.prefix = prefix
        self.hashTagged = hashTagged
    }

    private func tag(_ name: String) -> String { hashTagged ? "{\(name)}" : name }

    public func priceChannel(_ symbol: String) -> String { "\(prefix)prices:\(tag(symbol))" }
    /// One server: a hash of symbol to price. A cluster: `latestPrice(symbol)` keys instead.
    public var latestPrices: String { "\(prefix)prices:latest" }
    /// A cluster's key for the newest price of one symbol.
    public func latestPrice(_ symbol: String) -> String { "\(prefix)prices:latest:\(tag(symbol))" }
    public func notificationChannel(_ userID: String) -> String { "\(prefix)notifications:\(tag(userID))" }
    public func notificationStream(_ userID: String) -> String { "\(prefix)notifications:stream:\(tag(userID))" }
    public var feedLeader: String { "\(prefix)feed:leader" }

    var priceChannelPrefix: String { "\(prefix)prices:" }
    var notificationChannelPrefix: String { "\(prefix)notifications:" }

    /// The user a notification channel belongs to.
    func user(ofNotificationChannel channel: String) -> String {
        let name = channel.dropFirst(notificationChannelPrefix.count)
        guard hashTagged, name.hasPrefix("{"), name.hasSuffix("}"), name.count >= 2 else { return String(name) }
        return String(name.dropFirst().dropLast())
    }
}
