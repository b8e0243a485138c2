import NIOCore
import NIOHTTP1

/// Upgrades a request to WebSocket, whichever request of the connection it is.
///
/// NIO's `HTTPServerUpgradeHandler` considers a connection's first request only: a client
/// whose pooled connection had served an HTTP request (Node's WebSocket reuses `fetch()`'s
/// connections) got 426. This handler sits after the HTTP decoder and looks at every
/// request; others pass through untouched. An upgrade runs as NIO's does: stop parsing
/// HTTP (removing the decoder forwards the bytes behind the request, which this handler
/// keeps), send 101, remove the encoder and the HTTP handlers, add the WebSocket handler,
/// then leave, replaying what it kept. A connection whose first request is a plain upgrade never
/// gets here (`FirstRequestHandler`).
final class WebSocketUpgradeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// The handlers the upgrade takes out, in the order it removes them.
    struct HTTPHandlers {
        /// Removed first, before the 101: the decoder and what sits between it and this handler.
        var parsing: [RemovableChannelHandler]
        var encoder: RemovableChannelHandler
        /// Removed after the 101: the HTTP handlers behind this one (deadlines, the API).
        var serving: [RemovableChannelHandler]
    }

    private enum State {
        case http
        /// An upgrade request whose end has not arrived yet.
        case upgradeRequested(HTTPRequestHead)
        /// Switching protocols: whatever arrives now belongs to the WebSocket, kept until it is in place.
        case upgrading(kept: [NIOAny])
        case upgraded
    }

    private let upgrader: WebSocketUpgrader
    private let handlers: HTTPHandlers
    private let isOverCapacity: @Sendable (Channel) -> Bool
    private var state = State.http

    init(upgrader: WebSocketUpgrader, handlers: HTTPHandlers, isOverCapacity: @escaping @Sendable (Channel) -> Bool) {
        self.upgrader = upgrader
        self.handlers = handlers
        self.isOverCapacity = isOverCapacity
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch state {
        case .upgrading(var kept):
            kept.append(data)
            state = .upgrading(kept: kept)
        case .upgraded:
            context.fireChannelRead(data)
        case .upgradeRequested(let head):
            if case .end = unwrapInboundIn(data) {
                upgrade(head, context: context)
            }  // an upgrade request's body, if any, is dropped
        case .http:
            if case .head(let head) = unwrapInboundIn(data), head.isWebSocketUpgrade {
                state = .upgradeRequested(head)
            } else {
                context.fireChannelRead(data)
            }
        }
    }

    private func upgrade(_ request: HTTPRequestHead, context: ChannelHandlerContext) {
        let accept: String
        do {
            accept = try upgrader.validate(request)
        } catch {
            // The HTTP decoder parses nothing after an upgrade request: the refusal ends the connection.
            state = .http
            var closing = request
            closing.headers.replaceOrAdd(name: "Connection", value: "close")
            HTTPResponse.error(error.status, code: "UPGRADE_REFUSED", error.message).write(answering: closing, context: context)
            return
        }
        state = .upgrading(kept: [])
        let pipeline = context.pipeline.syncOperations
        // The decoder leaves later (NIO defers a decoder's removal), forwarding the bytes behind the
        // request on its way out: wait for it, so that they are kept here and replayed to the WebSocket.
        let parsingRemoved = handlers.parsing.map { pipeline.removeHandler($0) }
        EventLoopFuture.andAllSucceed(parsingRemoved, on: context.eventLoop).assumeIsolated().whenComplete { result in
            guard case .success = result else {
                context.close(promise: nil)
                return
            }
            var headers = HTTPHeaders()
            headers.add(name: "Upgrade", value: "websocket")
            headers.add(name: "Connection", value: "Upgrade")
            headers.add(name: "Sec-WebSocket-Accept", value: accept)
            let head = HTTPResponseHead(version: request.version, status: .switchingProtocols, headers: headers)
            // Written, not flushed: the WebSocket's first frames (`connected`) go in the same system call.
            context.write(self.wrapOutboundOut(.head(head)), promise: nil)
            context.write(self.wrapOutboundOut(.end(nil)), promise: nil)
            self.switchToWebSocket(request, context: context)
        }
    }

    private func switchToWebSocket(_ request: HTTPRequestHead, context: ChannelHandlerContext) {
        let pipeline = context.pipeline.syncOperations
        pipeline.removeHandler(handlers.encoder, promise: nil)
        for handler in handlers.serving { pipeline.removeHandler(handler, promise: nil) }
        do {
            try pipeline.addHandler(upgrader.handler(for: request, isOverCapacity: isOverCapacity(context.channel)))
        } catch {
            context.close(promise: nil)
            return
        }
        guard case .upgrading(let kept) = state else { return }
        state = .upgraded
        for data in kept { context.fireChannelRead(data) }
        if !kept.isEmpty { context.fireChannelReadComplete() }
        context.flush()
        pipeline.removeHandler(context: context, promise: nil)
    }
}
