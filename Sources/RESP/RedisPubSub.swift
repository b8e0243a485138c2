/// What the broker needs of a Pub/Sub client: one connection to one server (`RedisSubscriber`),
/// or one per shard of a cluster (`RedisShardedSubscriber`). Channels are reference-counted.
public protocol RedisPubSub: Sendable {
    func subscribe(_ channel: String)
    func unsubscribe(_ channel: String)
    /// Returns once the server confirmed the subscription to `channel`.
    func waitUntilSubscribed(_ channel: String, timeout: Duration) async throws
    /// Every connection needed is up.
    var isConnected: Bool { get }
    /// The connection that carries `channel` is up (false while the channel has none).
    func isConnected(channel: String) -> Bool
    /// Keeps the connections up until `shutdown()`.
    func run() async
    func shutdown() async
}

extension RedisSubscriber: RedisPubSub {
    /// One connection carries every channel.
    public func isConnected(channel: String) -> Bool { isConnected }
}
