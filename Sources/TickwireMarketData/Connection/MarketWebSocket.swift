import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket
import TickwireHTTPClient

/// Where a WebSocket source lives: `ws://` or `wss://`, host, port, path and query.
public struct WebSocketURL: Sendable, Equatable, CustomStringConvertible {
    public var usesTLS: Bool
    public var host: String
    public var port: Int
    /// Path and query, e.g. `/stream?streams=btcusdt@ticker`.
    public var target: String

    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    public init(_ url: String) throws(Invalid) {
        let scheme: String
        if url.hasPrefix("wss://") {
            (usesTLS, scheme) = (true, "wss://")
        } else if url.hasPrefix("ws://") {
            (usesTLS, scheme) = (false, "ws://")
        } else {
            throw Invalid(description: "not a ws:// or wss:// URL: \(url)")
        }
        var rest = url.dropFirst(scheme.count)
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        rest = rest[authorityEnd...]
        target = rest.isEmpty ? "/" : (rest.hasPrefix("?") ? "/" + rest : String(rest))
        if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]") {
            guard let value = Int(authority[authority.index(after: colon)...]), (1...65535).contains(value) else {
                throw Invalid(description: "bad port in \(url)")
            }
            port = value
            host = String(authority[..<colon])
        } else {
            port = usesTLS ? 443 : 80
            host = String(authority)
        }
        host = String(host.drop { $0 == "[" }.reversed().drop { $0 == "]" }.reversed())
        guard !host.isEmpty else { throw Invalid(description: "no host in \(url)") }
    }

    /// The same server with another path and query.
    public func with(target: String) -> WebSocketURL {
        var copy = self
        copy.target = target
        return copy
    }

    public var description: String { "\(usesTLS ? "wss" : "ws")://\(host):\(port)\(target)" }
}

/// One WebSocket connection to a market-data source, on NIO's own client (the typed HTTP
/// upgrader, frame codec and fragment aggregator): text messages in as an async sequence,
/// text out, pings answered, and a connection that stays silent for `idleTimeout` fails.
public struct MarketWebSocket: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// What `connect` hands to `body`: the messages as they arrive, and a way to send.
    public struct Session: Sendable {
        let outbound: NIOAsyncChannelOutboundWriter<WebSocketFrame>
        public let messages: AsyncThrowingStream<String, Error>

        public func send(_ text: String) async throws {
            try await outbound.write(WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: ByteBuffer(string: text)))
        }
    }

    private enum Upgrade: Sendable {
        case websocket(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>)
        case refused(HTTPResponseStatus?)
    }

    /// Connects, runs `body` with the session, and closes when `body` returns or throws.
    public static func connect(
        to url: WebSocketURL, headers: [(String, String)] = [], trust: HTTPClient.Trust = .system,
        idleTimeout: TimeAmount, maximumMessageBytes: Int = 1 << 20,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        _ body: @escaping @Sendable (Session) async throws -> Void
    ) async throws {
        let tls = url.usesTLS ? try trust.makeContext() : nil
        let upgrade = try await ClientBootstrap(group: group)
            .connectTimeout(.seconds(10))
            .connect(host: url.host, port: url.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        let isAddress = url.host.contains(":") || url.host.allSatisfy { $0.isNumber || $0 == "." }
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tls, serverHostname: isAddress ? nil : url.host))
                    }
                    let upgrader = NIOTypedWebSocketClientUpgrader<Upgrade>(maxFrameSize: maximumMessageBytes) { channel, _ in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idleTimeout))
                            try channel.pipeline.syncOperations.addHandler(CloseWhenSilent())
                            try channel.pipeline.syncOperations.addHandler(NIOWebSocketFrameAggregator(
                                minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 1024,
                                maxAccumulatedFrameSize: maximumMessageBytes))
                            return .websocket(try NIOAsyncChannel(wrappingChannelSynchronously: channel))
                        }
                    }
                    var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: url.target)
                    head.headers.add(name: "Host", value: url.port == (url.usesTLS ? 443 : 80) ? url.host : "\(url.host):\(url.port)")
                    for (name, value) in headers { head.headers.add(name: name, value: value) }
                    let configuration = NIOTypedHTTPClientUpgradeConfiguration<Upgrade>(
                        upgradeRequestHead: head, upgraders: [upgrader],
                        notUpgradingCompletionHandler: { channel in channel.eventLoop.makeCompletedFuture { .refused(nil) } })
                    // Providers that greet at once (Kraken's status, CoinGecko's welcome) may send it in the
                    // same read as the 101: NIO drops such bytes unless told to forward them.
                    var pipeline = NIOUpgradableHTTPClientPipelineConfiguration(upgradeConfiguration: configuration)
                    pipeline.leftOverBytesStrategy = .forwardBytes
                    return try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(configuration: pipeline)
                }
            }
        guard case .websocket(let channel) = try await upgrade.get() else {
            throw Failure(description: "\(url) did not upgrade to WebSocket")
        }
        try await channel.executeThenClose { inbound, outbound in
            let (messages, continuation) = AsyncThrowingStream<String, Error>.makeStream()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    defer { continuation.finish() }
                    for try await frame in inbound {
                        switch frame.opcode {
                        case .text:
                            continuation.yield(String(buffer: frame.unmaskedData))
                        case .ping:
                            try await outbound.write(WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData))
                        case .connectionClose:
                            throw Failure(description: "the server closed the connection\(Self.closeReason(frame))")
                        default:
                            break
                        }
                    }
                    throw Failure(description: "the connection ended (or was silent for \(idleTimeout.nanoseconds / 1_000_000_000) s)")
                }
                group.addTask {
                    try await body(Session(outbound: outbound, messages: messages))
                }
                // Whichever ends first ends the connection.
                try await group.next()
                group.cancelAll()
            }
        }
    }

    static func closeReason(_ frame: WebSocketFrame) -> String {
        var data = frame.unmaskedData
        guard let code = data.readInteger(as: UInt16.self) else { return "" }
        let reason = data.readString(length: data.readableBytes) ?? ""
        return " (\(code)\(reason.isEmpty ? "" : " \(reason)"))"
    }
}

/// Closes the connection when nothing at all (not even a ping) arrived for the read timeout of
/// the `IdleStateHandler` in front of it: a half-open connection must not look alive.
final class CloseWhenSilent: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}
