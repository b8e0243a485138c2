import NIOCore
import TickwireWebSocket

/// `/echo`, on only with `--conformance-echo`: sends every message back unchanged.
/// It exists so the Autobahn testsuite can exercise the frame handling `/ws` uses.
final class EchoConnectionHandler: ChannelInboundHandler, WebSocketEndpoint {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    var webSocket: WebSocketConnectionState
    func closeHandshakeTimeout(for code: UInt16) -> TimeAmount { .seconds(5) }

    init(maximumMessageSize: Int) {
        self.webSocket = WebSocketConnectionState(maximumFrameSize: maximumMessageSize, maximumMessageSize: maximumMessageSize)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        receive(unwrapInboundIn(data), context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func frameArrived(context: ChannelHandlerContext) {}

    func messageArrived(_ event: WebSocketEvent, context: ChannelHandlerContext) {
        let frame: ByteBuffer
        switch event {
        case .text(let payload):
            frame = WebSocketFrameWriter.frame(opcode: .text, payload: payload, allocator: context.channel.allocator)
        case .binary(let payload):
            frame = WebSocketFrameWriter.frame(opcode: .binary, payload: payload, allocator: context.channel.allocator)
        default:
            return
        }
        context.write(wrapOutboundOut(frame), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        webSocket.closeTimeout?.cancel()
        webSocket.phase = .closed
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
