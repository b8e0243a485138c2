import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle
import TickwireCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How the server listens and treats connections.
public struct ServerConfiguration: Sendable {
    public var host = "0.0.0.0"
    public var port = 8080
    /// Inbound frames and messages above this close the connection with 1009.
    public var maximumFrameSize = 16 * 1024
    /// Outbound bytes a connection may have queued before it is closed with 4009.
    public var maximumPendingBytes = 256 * 1024
    /// The kernel's send buffer of each client socket (SO_SNDBUF; Linux doubles it). Bounded, so
    /// that `maximumPendingBytes` bounds how far behind a slow client can fall: left to autotuning,
    /// the kernel takes up to 4 MiB first, a minute of prices on a slow mobile link, before the
    /// gateway's own queue grows at all. Nil keeps the kernel's autotuning.
    public var socketSendBufferBytes: Int? = 64 * 1024
    public var allowedOrigins: [String] = []
    public var conformanceEcho = false
    /// SIGTERM closes every client with 1001, spread over this time.
    public var drainDuration = TimeAmount.seconds(10)
    /// How long to wait for a client's close frame after a drain's 1001.
    public var closeHandshakeTimeout = TimeAmount.seconds(10)
    /// How long to wait for it after refusing or cutting a client (bad token, full, too slow, ...).
    public var closeGrace = TimeAmount.seconds(1)
    /// How long a connection without a token may take to send `{"action":"auth"}`.
    public var authenticationTimeout = TimeAmount.seconds(5)
    public var apiKey = ""
    /// How long a client may take to send a request head, and a body it declared.
    public var requestTimeout = TimeAmount.seconds(10)
    /// How long a kept-alive HTTP connection may sit idle between requests.
    public var keepAliveTimeout = TimeAmount.seconds(30)
    public var listenBacklog: Int32 = 4096
    /// SO_REUSEPORT: lets a new process listen on the port before this one drains (zero-downtime restarts).
    public var reusePort = false
    /// `wss://` and `https://` on the public port with this certificate (nil: plain `ws://` and `http://`).
    public var tls: ServerTLS?
    /// Dev mode: `/api/v1/dev` and `/api/v1/dev/publish` (the board's publish-to-yourself form).
    public var devEndpoints = false
    /// Serve `/metrics` (with `/healthz` and `/readyz`) on this port instead of the public one.
    public var metricsPort: Int?
    /// The address of the metrics listener (default: `host`).
    public var metricsHost: String?

    public init() {}
}

/// The gateway's listener: HTTP and WebSocket on one port, and the graceful
/// shutdown that drains clients. A `Service` for ServiceLifecycle.
public final class GatewayServer: Service, Sendable {
    public let configuration: ServerConfiguration
    public let gateway: Gateway
    private let group: EventLoopGroup
    private let renderMetrics: @Sendable () -> [UInt8]
    private let logger: Logger
    private struct Listeners {
        var server: Channel?
        var metrics: Channel?
    }
    private let listeners = NIOLockedValueBox(Listeners())

    /// Where `/metrics` is served when it has a port of its own (the real port when `metricsPort` is 0).
    public var metricsAddress: SocketAddress? { listeners.withLockedValue { $0.metrics?.localAddress } }

    public init(
        configuration: ServerConfiguration, gateway: Gateway, group: EventLoopGroup,
        renderMetrics: @escaping @Sendable () -> [UInt8], logger: Logger
    ) {
        self.configuration = configuration
        self.gateway = gateway
        self.group = group
        self.renderMetrics = renderMetrics
        self.logger = logger
    }

    /// Sets up one accepted public connection: what `bind()` does for every socket, and what the HTTP
    /// fuzz target (Fuzz/) does on a test channel.
    @_spi(Fuzzing) public func configurePublicConnection(_ channel: Channel) throws {
        try publicPipeline()(channel)
    }

    /// The initializer of public connections, made once per listener.
    private func publicPipeline() -> @Sendable (Channel) throws -> Void {
        let configuration = self.configuration
        let gateway = self.gateway
        let logger = self.logger
        let api = HTTPAPI(
            gateway: gateway, apiKey: configuration.apiKey, renderMetrics: renderMetrics,
            echoEnabled: configuration.conformanceEcho, endpoints: .public(metrics: configuration.metricsPort == nil),
            devEndpoints: configuration.devEndpoints)
        let upgrader = WebSocketUpgrader(
            originPolicy: OriginPolicy(allowedOrigins: configuration.allowedOrigins),
            echoEnabled: configuration.conformanceEcho,
            makeGatewayHandler: { request, isOverCapacity in
                GatewayConnectionHandler(
                    gateway: gateway, token: request.bearerToken, isOverCapacity: isOverCapacity,
                    maximumFrameSize: configuration.maximumFrameSize,
                    maximumPendingBytes: configuration.maximumPendingBytes,
                    timeouts: .init(
                        closeHandshake: configuration.closeHandshakeTimeout, closeGrace: configuration.closeGrace,
                        authentication: configuration.authenticationTimeout),
                    logger: logger)
            },
            makeEchoHandler: { EchoConnectionHandler(maximumMessageSize: 16 * 1024 * 1024) })
        return { channel in
            try Self.configurePublicPipeline(channel, gateway: gateway, upgrader: upgrader, api: api, configuration: configuration)
        }
    }

    /// Binds the listening socket. Returns the bound address (the real port when `port` is 0).
    public func bind() async throws -> SocketAddress {
        let configuration = self.configuration
        let gateway = self.gateway
        let configureConnection = publicPipeline()
        let bootstrap = ServerBootstrap(group: group)
            // Out of file descriptors, accept() fails at once while the listening socket stays
            // readable: without a pause between attempts, the loop would spin on it.
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptPauseHandler())
                }
            }
            .serverChannelOption(.backlog, value: configuration.listenBacklog)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.socketOption(NIOBSDSocket.Option(rawValue: SO_REUSEPORT)), value: configuration.reusePort ? 1 : 0)
            // Accept many connections per wakeup: connect storms after a restart.
            .serverChannelOption(.maxMessagesPerRead, value: 256)
            // TCP_NODELAY and SO_SNDBUF are set on the listening socket, whose accepted sockets inherit
            // them (NIO sets TCP_NODELAY there by default): two system calls fewer per connection.
            .childChannelOption(
                .writeBufferWaterMark,
                value: .init(low: configuration.maximumPendingBytes / 2, high: configuration.maximumPendingBytes))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try configureConnection(channel) }
            }
        let sized = configuration.socketSendBufferBytes.map {
            bootstrap.serverChannelOption(.socketOption(.so_sndbuf), value: SocketOptionValue($0))
        } ?? bootstrap
        let channel = try await sized.bind(host: configuration.host, port: configuration.port).get()
        listeners.withLockedValue { $0.server = channel }
        if let metricsPort = configuration.metricsPort {
            let metricsAPI = HTTPAPI(
                gateway: gateway, apiKey: configuration.apiKey, renderMetrics: renderMetrics, echoEnabled: false,
                endpoints: .metrics)
            let metrics = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        try Self.addHTTPHandlers(to: channel, api: metricsAPI, configuration: configuration)
                    }
                }
                .bind(host: configuration.metricsHost ?? configuration.host, port: metricsPort).get()
            listeners.withLockedValue { $0.metrics = metrics }
        }
        return channel.localAddress!
    }

    /// A public connection: its socket slot, then the first request's handler, which upgrades a plain
    /// WebSocket request itself and gives anything else the HTTP pipeline (`addPublicHTTPHandlers`).
    private static func configurePublicPipeline(
        _ channel: Channel, gateway: Gateway, upgrader: WebSocketUpgrader, api: HTTPAPI, configuration: ServerConfiguration
    ) throws {
        let pipeline = channel.pipeline.syncOperations
        try pipeline.addHandler(SocketSlotHandler(gateway: gateway))
        if let tls = configuration.tls {
            // The context current at accept: a reload applies to the connections that come after it.
            try pipeline.addHandler(NIOSSLServerHandler(context: tls.context))
        }
        try pipeline.addHandler(
            FirstRequestHandler(
                upgrader: upgrader, requestTimeout: configuration.requestTimeout, isOverCapacity: isOverCapacity,
                installHTTP: { pipeline in
                    try addPublicHTTPHandlers(to: pipeline, upgrader: upgrader, api: api, configuration: configuration)
                }))
    }

    /// Whether the connection's socket came in past `--max-connections`.
    private static func isOverCapacity(_ channel: Channel) -> Bool {
        (try? channel.pipeline.syncOperations.handler(type: SocketSlotHandler.self).admission) == .overCapacity
    }

    /// HTTP/1.1 (what `configureHTTPServerPipeline` sets up), the WebSocket upgrade of any request,
    /// deadlines, then the API.
    static func addPublicHTTPHandlers(
        to pipeline: ChannelPipeline.SynchronousOperations, upgrader: WebSocketUpgrader, api: HTTPAPI,
        configuration: ServerConfiguration
    ) throws {
        let encoder = HTTPResponseEncoder()
        let decoder = ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes))
        let pipelining = HTTPServerPipelineHandler()
        let errors = HTTPServerProtocolErrorHandler()
        let timeouts = HTTPTimeoutHandler(requestTimeout: configuration.requestTimeout, keepAliveTimeout: configuration.keepAliveTimeout)
        let requests = HTTPRequestHandler(api: api)
        let upgrade = WebSocketUpgradeHandler(
            upgrader: upgrader,
            handlers: .init(parsing: [pipelining, errors, decoder], encoder: encoder, serving: [timeouts, requests]),
            isOverCapacity: isOverCapacity)
        for handler: ChannelHandler in [encoder, decoder, pipelining, errors, upgrade, timeouts, requests] {
            try pipeline.addHandler(handler)
        }
    }

    /// The end of an HTTP pipeline: deadlines, then the API.
    private static func addHTTPHandlers(to channel: Channel, api: HTTPAPI, configuration: ServerConfiguration) throws {
        try channel.pipeline.syncOperations.addHandler(
            HTTPTimeoutHandler(requestTimeout: configuration.requestTimeout, keepAliveTimeout: configuration.keepAliveTimeout),
            name: HTTPTimeoutHandler.name)
        try channel.pipeline.syncOperations.addHandler(HTTPRequestHandler(api: api), name: HTTPRequestHandler.name)
    }

    /// Serves until graceful shutdown (SIGTERM), then stops accepting, drains and returns.
    public func run() async throws {
        if listeners.withLockedValue({ $0.server }) == nil { _ = try await bind() }
        try? await gracefulShutdown()
        await drain()
    }

    func drain() async {
        let count = gateway.connectionCount
        logger.info("shutting down: closing clients", metadata: [
            "connections": "\(count)", "drain_seconds": "\(configuration.drainDuration.nanoseconds / 1_000_000_000)",
        ])
        let listening = listeners.withLockedValue { $0 }
        try? await listening.server?.close()
        await gateway.hub.goAway(over: configuration.drainDuration)
        // Wait for the close handshakes (each bounded by its own timeout).
        let deadline = NIODeadline.now() + configuration.closeHandshakeTimeout + .seconds(1)
        while gateway.connectionCount > 0, NIODeadline.now() < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        await gateway.broker.shutdown()
        try? await listening.metrics?.close()
        logger.info("shutdown complete", metadata: ["remaining": "\(gateway.connectionCount)"])
    }
}
