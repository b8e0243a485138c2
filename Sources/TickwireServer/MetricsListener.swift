import NIOCore
import NIOHTTP1
import NIOPosix

/// A small HTTP listener with `GET /metrics` and `GET /healthz` only: for processes that serve
/// no clients, such as `tickwire feed`, so Prometheus can scrape them too.
public enum MetricsListener {
    public static func bind(
        host: String, port: Int, group: EventLoopGroup, render: @escaping @Sendable () -> [UInt8]
    ) async throws -> Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(
                        HTTPTimeoutHandler(requestTimeout: .seconds(10), keepAliveTimeout: .seconds(30)))
                    try channel.pipeline.syncOperations.addHandler(Answer(render: render))
                }
            }
            .bind(host: host, port: port).get()
    }

    private final class Answer: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPServerRequestPart
        let render: @Sendable () -> [UInt8]

        init(render: @escaping @Sendable () -> [UInt8]) {
            self.render = render
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .head(let head) = unwrapInboundIn(data) else { return }
            let path = RequestTarget(head.uri).path
            let response: HTTPResponse =
                switch (head.method, path) {
                case (.GET, "/metrics"): HTTPResponse(status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: render())
                case (.GET, "/healthz"): .json(.ok, ["status": "ok"])
                default: .error(.notFound, code: "NOT_FOUND", "only /metrics and /healthz here")
                }
            response.write(answering: head, context: context)
        }
    }
}
