import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// One connection to Redis, handshaken (HELLO 3, or AUTH and RESP2 on servers
/// without RESP3, then SELECT). Commands may be sent from any thread and are pipelined.
public final class RedisConnection: Sendable {
    public let channel: Channel
    /// 3 after a successful `HELLO 3`, 2 on servers that refused it.
    public let protocolVersion: Int
    public let configuration: RedisConfiguration
    private let handler: NIOLoopBound<RedisChannelHandler>

    private init(channel: Channel, handler: NIOLoopBound<RedisChannelHandler>, protocolVersion: Int, configuration: RedisConfiguration) {
        self.channel = channel
        self.handler = handler
        self.protocolVersion = protocolVersion
        self.configuration = configuration
    }

    /// Connects and handshakes. `onPush` receives pub/sub pushes (a subscriber connection).
    public static func connect(
        _ configuration: RedisConfiguration, eventLoop: EventLoop, name: String? = nil,
        onPush: (@Sendable (RESPValue) -> Void)? = nil
    ) async throws -> RedisConnection {
        let sslContext: NIOSSLContext?
        if configuration.tls {
            var tls = TLSConfiguration.makeClientConfiguration()
            if let caFile = configuration.tlsCAFile { tls.trustRoots = .file(caFile) }
            if !configuration.tlsVerify { tls.certificateVerification = .none }
            sslContext = try NIOSSLContext(configuration: tls)
        } else {
            sslContext = nil
        }
        let host = configuration.host
        let channel = try await ClientBootstrap(group: eventLoop)
            .connectTimeout(configuration.connectTimeout.timeAmount)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        let isAddress = host.allSatisfy { $0.isNumber || $0 == "." || $0 == ":" }
                        let tls = try NIOSSLClientHandler(context: sslContext, serverHostname: isAddress ? nil : host)
                        try channel.pipeline.syncOperations.addHandler(tls)
                    }
                    try channel.pipeline.syncOperations.addHandler(RedisChannelHandler(onPush: onPush))
                }
            }
            .connect(host: configuration.host, port: configuration.port).get()
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: RedisChannelHandler.self), eventLoop: channel.eventLoop)
        }.get()
        do {
            let version = try await handshake(channel: channel, configuration: configuration, name: name)
            return RedisConnection(channel: channel, handler: handler, protocolVersion: version, configuration: configuration)
        } catch {
            try? await channel.close()
            throw error
        }
    }

    private static func handshake(channel: Channel, configuration: RedisConfiguration, name: String?) async throws -> Int {
        func send(_ command: RESPCommand) async throws -> RESPValue {
            try await Self.send(command, on: channel, timeout: configuration.connectTimeout)
        }
        var hello = ["3"]
        if let password = configuration.password {
            hello += ["AUTH", configuration.username ?? "default", password]
        }
        if let name { hello += ["SETNAME", name] }
        var version = 3
        switch try await send(RESPCommand("HELLO", hello)) {
        case .error(let message) where message.hasPrefix("NOPROTO") || message.lowercased().contains("unknown command"):
            // Redis before 6: no RESP3. Authenticate the RESP2 way.
            version = 2
            if let password = configuration.password {
                let auth = configuration.username.map { [$0, password] } ?? [password]
                if case .error(let message) = try await send(RESPCommand("AUTH", auth)) { throw RedisError.server(message) }
            }
        case .error(let message):
            throw RedisError.server(message)
        default:
            break
        }
        if configuration.database != 0 {
            if case .error(let message) = try await send(RESPCommand("SELECT", [String(configuration.database)])) {
                throw RedisError.server(message)
            }
        }
        return version
    }

    static func send(_ command: RESPCommand, on channel: Channel, timeout: Duration) async throws -> RESPValue {
        let promise = channel.eventLoop.makePromise(of: RESPValue.self)
        let request = RedisRequest(command: command, promise: promise, deadline: .now() + timeout.timeAmount)
        // A channel closed before the write reaches the handler (a TLS handshake refused, a drop)
        // fails the write, and no one else would ever answer the request. When the handler did take
        // it, it fails the request itself and this second failure is ignored.
        channel.write(request).whenFailure { promise.fail($0) }
        return try await promise.futureResult.get()
    }

    /// Sends a command and returns its reply; an error reply is returned as `.error`, not thrown.
    public func sendRaw(_ command: RESPCommand, timeout: Duration? = nil) async throws -> RESPValue {
        guard channel.isActive else { throw RedisError.connectionClosed }
        return try await Self.send(command, on: channel, timeout: timeout ?? configuration.commandTimeout)
    }

    /// Sends `ASKING` and then `command`, back to back with nothing between them (a cluster node
    /// runs the command after an `ASK` redirect only right after `ASKING` on the same connection).
    /// Returns the command's reply; an error reply is returned as `.error`.
    public func sendRawAsking(_ command: RESPCommand, timeout: Duration? = nil) async throws -> RESPValue {
        guard channel.isActive else { throw RedisError.connectionClosed }
        let deadline = NIODeadline.now() + (timeout ?? configuration.commandTimeout).timeAmount
        let asking = channel.eventLoop.makePromise(of: RESPValue.self)
        let reply = channel.eventLoop.makePromise(of: RESPValue.self)
        let channel = self.channel
        channel.eventLoop.execute {
            for (request, promise) in [(RESPCommand("ASKING"), asking), (command, reply)] {
                channel.write(RedisRequest(command: request, promise: promise, deadline: deadline)).whenFailure {
                    promise.fail($0)
                }
            }
        }
        if case .error(let message) = try await asking.futureResult.get() { throw RedisError.server(message) }
        return try await reply.futureResult.get()
    }

    /// Sends a command; an error reply throws `RedisError.server`.
    @discardableResult
    public func send(_ command: RESPCommand, timeout: Duration? = nil) async throws -> RESPValue {
        let reply = try await sendRaw(command, timeout: timeout)
        if case .error(let message) = reply { throw RedisError.server(message) }
        return reply
    }

    /// Writes a command whose answers come back as pushes (SUBSCRIBE, UNSUBSCRIBE).
    public func sendWithoutReply(_ command: RESPCommand) {
        channel.write(RedisRequest(command: command, promise: nil, deadline: .now()), promise: nil)
    }

    public var isActive: Bool { channel.isActive }

    public var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    public func close() async {
        try? await channel.close()
    }
}
