import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import TickwireWebSocket

/// The default transport: SwiftNIO sockets, TLS through swift-nio-ssl for `wss`, and Tickwire's own
/// RFC 6455 code (the frame parser and message assembler the gateway runs, checked by the Autobahn
/// suite). The handshake and the frames share one buffer, so frames that arrive with the `101`
/// (a gateway refusing a token sends the error and the close at once) are never lost. Runs
/// wherever SwiftNIO does: Linux, macOS and iOS.
public struct NIOWebSocketTransport: WebSocketTransport {
    /// The server answered the upgrade with something other than `101`, or broke the handshake.
    public struct HandshakeFailed: Error, CustomStringConvertible {
        public var endpoint: WebSocketEndpoint
        /// The HTTP status, when there was one (`403`, `426`, `503`, ...).
        public var status: Int?
        public var reason: String
        public var description: String {
            "\(endpoint.usesTLS ? "wss" : "ws")://\(endpoint.host):\(endpoint.port) refused the WebSocket upgrade: "
                + (status.map { "HTTP \($0)" } ?? reason)
        }
    }

    /// Trust for `wss`: the system's roots by default.
    public var tlsConfiguration: TLSConfiguration
    /// For the TCP connect, and again for the TLS and WebSocket handshakes.
    public var connectTimeout: TimeAmount
    /// The largest message accepted from the server (a `price_batch` of 100 symbols is ~25 KB).
    public var maximumMessageBytes: Int
    public var group: any EventLoopGroup

    public init(
        tlsConfiguration: TLSConfiguration = .makeClientConfiguration(), connectTimeout: TimeAmount = .seconds(10),
        maximumMessageBytes: Int = 1 << 20, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.tlsConfiguration = tlsConfiguration
        self.connectTimeout = connectTimeout
        self.maximumMessageBytes = maximumMessageBytes
        self.group = group
    }

    public func connect(to endpoint: WebSocketEndpoint, headers: [(String, String)]) async throws -> any WebSocketConnection {
        let tls = endpoint.usesTLS ? try NIOSSLContext(configuration: tlsConfiguration) : nil
        let handler = WebSocketClientHandler(
            endpoint: endpoint, headers: headers, maximumMessageBytes: maximumMessageBytes, handshakeTimeout: connectTimeout)
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        let isAddress = endpoint.host.contains(":") || endpoint.host.allSatisfy { $0.isNumber || $0 == "." }
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tls, serverHostname: isAddress ? nil : endpoint.host))
                    }
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: endpoint.host, port: endpoint.port).get()
        do {
            try await handler.handshake.get()
        } catch {
            channel.close(promise: nil)
            throw error
        }
        return NIOWebSocketConnection(channel: channel, events: handler.events)
    }
}

/// One WebSocket on a NIO channel. Sends are `writeAndFlush` calls, which NIO runs on the channel's
/// event loop in the order they were made.
final class NIOWebSocketConnection: WebSocketConnection {
    let channel: any Channel
    let events: AsyncStream<TransportEvent>

    init(channel: any Channel, events: AsyncStream<TransportEvent>) {
        self.channel = channel
        self.events = events
    }

    func send(_ text: String) {
        channel.writeAndFlush(WebSocketClientHandler.maskedFrame(.text, Array(text.utf8), allocator: channel.allocator), promise: nil)
    }

    func close(code: UInt16) {
        let body = [UInt8(code >> 8), UInt8(code & 0xFF)]
        // The server echoes the close and ends the TCP connection; the client does not wait for it.
        let channel = channel
        channel.writeAndFlush(WebSocketClientHandler.maskedFrame(.close, body, allocator: channel.allocator))
            .whenComplete { _ in channel.close(promise: nil) }
    }
}
