import Logging
import NIOCore

/// Where connections to Redis go: the one server a URL names, or whichever server a
/// set of sentinels names master right now. Clients and subscribers connect through it
/// and drop their connections when it says the master moved.
public protocol RedisEndpoint: Sendable {
    /// The URL's configuration: credentials, database, TLS and timeouts of the server.
    var configuration: RedisConfiguration { get }

    /// Opens a handshaken connection to the server commands should go to now.
    func connect(on eventLoop: EventLoop, name: String?, onPush: (@Sendable (RESPValue) -> Void)?) async throws
        -> RedisConnection

    /// The server answered as a replica (`READONLY`): look the master up again on the next connect.
    func invalidate()

    /// `handler` runs whenever the master moves; connections to the old one should close.
    func onMasterMoved(_ handler: @escaping @Sendable () -> Void)

    func shutdown() async
}

extension RedisEndpoint {
    public func connect(on eventLoop: EventLoop, name: String?) async throws -> RedisConnection {
        try await connect(on: eventLoop, name: name, onPush: nil)
    }
}

/// The one server a `redis://` URL names.
public struct RedisServerEndpoint: RedisEndpoint {
    public let configuration: RedisConfiguration

    public init(configuration: RedisConfiguration) {
        self.configuration = configuration
    }

    public func connect(on eventLoop: EventLoop, name: String?, onPush: (@Sendable (RESPValue) -> Void)?) async throws
        -> RedisConnection
    {
        try await RedisConnection.connect(configuration, eventLoop: eventLoop, name: name, onPush: onPush)
    }

    public func invalidate() {}
    public func onMasterMoved(_ handler: @escaping @Sendable () -> Void) {}
    public func shutdown() async {}
}

extension RedisConfiguration {
    /// The endpoint this configuration describes: one server, or the sentinels' master.
    public func endpoint(eventLoop: EventLoop, logger: Logger) -> any RedisEndpoint {
        if sentinel != nil { return RedisSentinelEndpoint(configuration: self, eventLoop: eventLoop, logger: logger) }
        return RedisServerEndpoint(configuration: self)
    }
}
