import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TickwireProtocol
import TickwireWebSocket

/// A WebSocket server for tests that plays a market-data provider: it accepts any upgrade, and
/// runs `script` for each connection, which sends what the provider would and reads what the
/// client sends. It can go silent, ping, or drop a connection mid-frame.
public final class FakeWebSocketServer: Sendable {
    /// One accepted connection, as the script sees it.
    public final class Connection: Sendable {
        let channel: Channel
        /// The request line's target (`/stream?streams=...`) and the request's headers.
        public let target: String
        public let headers: [(String, String)]
        let inbox = Mailbox<String>()

        init(channel: Channel, target: String, headers: [(String, String)]) {
            self.channel = channel
            self.target = target
            self.headers = headers
        }

        public func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }

        public func send(_ text: String) async throws {
            try await channel.writeAndFlush(WebSocketFrameWriter.frame(opcode: .text, payload: Array(text.utf8), allocator: channel.allocator))
        }

        public func ping(_ payload: String = "") async throws {
            try await channel.writeAndFlush(WebSocketFrameWriter.frame(opcode: .ping, payload: Array(payload.utf8), allocator: channel.allocator))
        }

        /// The first half of a text frame, then the connection ends: a drop mid-frame.
        public func dropMidFrame(_ text: String) async throws {
            var frame = WebSocketFrameWriter.frame(opcode: .text, payload: Array(text.utf8), allocator: channel.allocator)
            let half = frame.readSlice(length: frame.readableBytes / 2)!
            try await channel.writeAndFlush(half)
            try await channel.close()
        }

        public func close() async {
            try? await channel.close()
        }

        /// A close frame with `code`, then the end of the connection.
        public func close(code: UInt16, reason: String = "") async {
            let payload = [UInt8(code >> 8), UInt8(code & 0xFF)] + Array(reason.utf8)
            try? await channel.writeAndFlush(WebSocketFrameWriter.frame(opcode: .close, payload: payload, allocator: channel.allocator))
            try? await channel.close()
        }

        public var isOpen: Bool { channel.isActive }

        /// The client's next text message (or `"pong:PAYLOAD"` for a pong), or nil after `timeout`.
        public func next(timeout: Duration = .seconds(5)) async -> String? {
            await inbox.next(timeout: timeout)
        }
    }

    private let channel: Channel
    private let connections: NIOLockedValueBox<[Connection]>
    public let port: Int

    public var url: String { "ws://127.0.0.1:\(port)" }
    public var accepted: [Connection] { connections.withLockedValue { $0 } }

    /// Starts on a free loopback port; `script` runs for every connection until it returns (the
    /// connection then stays open until the client or `close()` ends it).
    public static func start(_ script: @escaping @Sendable (Connection) async throws -> Void) async throws -> FakeWebSocketServer {
        let connections = NIOLockedValueBox<[Connection]>([])
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ServerSide { connection in
                        connections.withLockedValue { $0.append(connection) }
                        Task { try? await script(connection) }
                    })
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return FakeWebSocketServer(channel: channel, connections: connections)
    }

    private init(channel: Channel, connections: NIOLockedValueBox<[Connection]>) {
        self.channel = channel
        self.connections = connections
        self.port = channel.localAddress!.port!
    }

    /// Stops listening and drops every connection.
    public func stop() async {
        try? await channel.close()
        for connection in accepted { await connection.close() }
    }

    deinit { channel.close(promise: nil) }

    /// The handshake, then frames: text to the connection's inbox, pings answered.
    private final class ServerSide: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let accepted: @Sendable (Connection) -> Void
        var buffer = ByteBuffer()
        var connection: Connection?
        let parser = WebSocketFrameParser(role: .server, maximumFrameSize: 1 << 20)
        var assembler = WebSocketMessageAssembler(maximumMessageSize: 1 << 20)

        init(accepted: @escaping @Sendable (Connection) -> Void) {
            self.accepted = accepted
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var incoming = unwrapInboundIn(data)
            buffer.writeBuffer(&incoming)
            if connection == nil {
                guard let end = buffer.readableBytesView.firstRange(of: Array("\r\n\r\n".utf8)) else { return }
                let head = buffer.readString(length: end.upperBound - buffer.readerIndex)!
                let lines = head.split(separator: "\r\n")
                let target = String(lines.first?.split(separator: " ").dropFirst().first ?? "/")
                let headers = lines.dropFirst().compactMap { line -> (String, String)? in
                    guard let colon = line.firstIndex(of: ":") else { return nil }
                    return (String(line[..<colon]), line[line.index(after: colon)...].trimmingWhitespace())
                }
                let key = headers.first { $0.0.lowercased() == "sec-websocket-key" }?.1 ?? ""
                let response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    + "Sec-WebSocket-Accept: \(WebSocketHandshake.acceptValue(forKey: key))\r\n\r\n"
                context.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: response)), promise: nil)
                let connection = Connection(channel: context.channel, target: target, headers: headers)
                self.connection = connection
                accepted(connection)
            }
            while let frame = try? parser.nextFrame(from: &buffer) {
                guard let event = try? assembler.receive(frame) else { continue }
                switch event {
                case .text(let payload): connection?.inbox.push(String(buffer: payload))
                case .pong(let payload): connection?.inbox.push("pong:" + String(buffer: payload))
                case .ping(let payload):
                    context.writeAndFlush(NIOAny(WebSocketFrameWriter.frame(opcode: .pong, payload: payload, allocator: context.channel.allocator)), promise: nil)
                case .close:
                    context.close(promise: nil)
                default: break
                }
            }
            buffer.discardReadBytes()
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            context.close(promise: nil)
        }
    }
}
