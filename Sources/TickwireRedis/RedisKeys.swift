/// Every key and channel Tickwire uses in Redis (PROTOCOL.md section 10), under an optional prefix.
public struct RedisKeys: Sendable {
    public let prefix: String

    public init(prefix: String = "") {
        self.prefix = prefix
    }

    public func priceChannel(_ symbol: String) -> String { "\(prefix)prices:\(symbol)" }
    public var latestPrices: String { "\(prefix)prices:latest" }
    public func notificationChannel(_ userID: String) -> String { "\(prefix)notifications:\(userID)" }
    public func notificationStream(_ userID: String) -> String { "\(prefix)notifications:stream:\(userID)" }
    public var feedLeader: String { "\(prefix)feed:leader" }

    var priceChannelPrefix: String { "\(prefix)prices:" }
    var notificationChannelPrefix: String { "\(prefix)notifications:" }
}
