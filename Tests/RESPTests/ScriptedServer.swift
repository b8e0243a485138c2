import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

@testable import RESP

/// A TCP server that answers each RESP command with bytes chosen by `reply`, for the
/// misbehaviours a real Redis never shows: garbage, truncated replies, silence,
/// a server without RESP3.
final class ScriptedServer: Sendable {
    enum Answer: Sendable {
        case bytes(String)
        /// Write these bytes, then close the connection.
        case bytesThenClose(String)
        case silence
    }

    let channel: Channel
    var port: Int { channel.localAddress!.port! }

    init(reply: @escaping @Sendable (RESPCommandInfo) -> Answer) async throws {
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Handler(reply: reply))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func close() async { try? await channel.close() }

    struct RESPCommandInfo: Sendable {
        var name: String
        var arguments: [String]
    }

    private final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let reply: @Sendable (RESPCommandInfo) -> Answer
        var buffer = ByteBuffer()

        init(reply: @escaping @Sendable (RESPCommandInfo) -> Answer) { self.reply = reply }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var incoming = unwrapInboundIn(data)
            buffer.writeBuffer(&incoming)
            while let value = try? RESPParser().next(from: &buffer), let parts = value.elements?.compactMap(\.string) {
                let info = RESPCommandInfo(name: parts.first?.uppercased() ?? "", arguments: Array(parts.dropFirst()))
                switch reply(info) {
                case .bytes(let text):
                    context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text)), promise: nil)
                case .bytesThenClose(let text):
                    context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
                case .silence:
                    break
                }
            }
        }
    }
}
