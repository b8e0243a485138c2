import NIOCore
import TickwireProtocol

/// One message on its way from the broker to the connections of one event loop,
/// already encoded as a complete WebSocket frame shared by all of them.
enum Delivery {
    case price(symbol: Int, price: PriceUpdate, frame: ByteBuffer, releasedAt: NIODeadline)
    case notification(userID: String, id: StreamID, frame: ByteBuffer, publishedAt: Timestamp)
}
