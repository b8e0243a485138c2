import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import Testing

@testable import RESP

/// RedisChannelHandler's rules, on an EmbeddedChannel.
@Suite struct RedisChannelHandlerRules {
    /// On a subscriber connection, a cluster node's refusal of an SSUBSCRIBE (written without a
    /// promise) goes to the push handler; the PING waiting behind it still gets its own PONG.
    @Test func aRefusedSubscriptionGoesToThePushHandlerNotToThePendingRequest() throws {
        let pushes = NIOLockedValueBox<[RESPValue]>([])
        let channel = EmbeddedChannel(handler: RedisChannelHandler(onPush: { value in pushes.withLockedValue { $0.append(value) } }))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 6379)).wait()
        let ping = channel.eventLoop.makePromise(of: RESPValue.self)
        channel.write(RedisRequest(command: RESPCommand("SSUBSCRIBE", ["c"]), promise: nil, deadline: .now() + .seconds(5)), promise: nil)
        channel.write(RedisRequest(command: RESPCommand("PING"), promise: ping, deadline: .now() + .seconds(5)), promise: nil)
        channel.embeddedEventLoop.run()
        try channel.writeInbound(ByteBuffer(string: "-MOVED 7365 127.0.0.1:7001\r\n+PONG\r\n"))
        #expect(pushes.withLockedValue { $0 } == [.error("MOVED 7365 127.0.0.1:7001")])
        #expect(try ping.futureResult.wait() == .simpleString("PONG"))
        #expect(channel.isActive, "no reply nobody asked for: the connection stays open")
    }

    /// On a command connection (no push handler) the same error answers the oldest request.
    @Test func onACommandConnectionAnErrorAnswersTheOldestRequest() throws {
        let channel = EmbeddedChannel(handler: RedisChannelHandler(onPush: nil))
        let get = channel.eventLoop.makePromise(of: RESPValue.self)
        channel.write(RedisRequest(command: RESPCommand("GET", ["k"]), promise: get, deadline: .now() + .seconds(5)), promise: nil)
        try channel.writeInbound(ByteBuffer(string: "-MOVED 7365 127.0.0.1:7001\r\n"))
        #expect(try get.futureResult.wait() == .error("MOVED 7365 127.0.0.1:7001"))
    }
}
