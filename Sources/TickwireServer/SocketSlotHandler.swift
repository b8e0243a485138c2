import NIOCore
import TickwireCore

/// First in every public connection's pipeline: takes the socket's place among
/// `--max-connections` when it becomes active and gives it back when it closes, whatever
/// the socket turns out to be (HTTP, an upgrade, a WebSocket). A socket far past the
/// limit is closed at once, before a byte of it is read.
final class SocketSlotHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let gateway: Gateway
    private(set) var admission: SocketAdmission?

    init(gateway: Gateway) {
        self.gateway = gateway
    }

    func channelActive(context: ChannelHandlerContext) {
        let admission = gateway.admitSocket()
        self.admission = admission
        if admission == .refused {
            context.close(promise: nil)
            return
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if admission != nil {
            admission = nil
            gateway.socketClosed()
        }
        context.fireChannelInactive()
    }
}
