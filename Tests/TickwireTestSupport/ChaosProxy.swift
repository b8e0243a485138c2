import DequeModule
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A TCP proxy that breaks the network on command, for tests: put it between a gateway and Redis,
/// or between a client and a gateway, and it adds latency, throttles bandwidth, stalls (takes
/// bytes, forwards none), blackholes one direction, cuts every connection, or refuses new ones.
///
/// Each proxied connection is a pair of channels on one event loop, with a `Link` per direction.
/// A link holds what it has read until the faults let it through, and stops reading from its
/// source while it holds more than `maximumQueuedBytes`, so a throttled link pushes back on the
/// sender as a slow network does (its socket buffer fills) instead of buffering without bound.
public final class ChaosProxy: Sendable {
    public enum Direction: Sendable, Hashable {
        /// From the connecting side to the proxied server.
        case toUpstream
        /// From the proxied server back to the connecting side.
        case toClient
    }

    /// What the proxy does to the bytes; `set` applies it to every connection, current and new.
    public struct Faults: Sendable, Equatable {
        /// Each read is held this long before it goes on, in both directions.
        public var latency: Duration = .zero
        /// Each direction of each connection is limited to this many bytes a second.
        public var bytesPerSecond: Int?
        /// Bytes are read and held, none forwarded, until the stall ends (then they all go on).
        public var stalled = false
        /// Bytes in these directions are read and dropped; the connection stays open.
        public var blackholed: Set<Direction> = []

        public init(latency: Duration = .zero, bytesPerSecond: Int? = nil, stalled: Bool = false, blackholed: Set<Direction> = []) {
            self.latency = latency
            self.bytesPerSecond = bytesPerSecond
            self.stalled = stalled
            self.blackholed = blackholed
        }

        public static let none = Faults()
    }

    static let maximumQueuedBytes = 256 * 1024
    /// SO_RCVBUF of the proxy's connection to the upstream (Linux doubles it).
    static let upstreamReceiveBufferBytes = 64 * 1024
    /// What a throttled path through the proxy holds at most: its queue and its receive buffer.
    public static let maximumHeldBytes = maximumQueuedBytes + 2 * upstreamReceiveBufferBytes

    public let port: Int
    private let core: Core

    /// Listens on a free loopback port and forwards to `127.0.0.1:upstreamPort`.
    public static func start(upstreamPort: Int, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> ChaosProxy {
        let core = Core(upstream: try SocketAddress(ipAddress: "127.0.0.1", port: upstreamPort), group: group)
        let listener = try await core.listen(port: 0)
        return ChaosProxy(core: core, port: listener.localAddress!.port!)
    }

    private init(core: Core, port: Int) {
        self.core = core
        self.port = port
    }

    deinit {
        let (listener, connections) = core.state.withLockedValue { state in
            defer { state.listener = nil }
            return (state.listener, Array(state.connections.values))
        }
        listener?.close(promise: nil)
        for connection in connections { connection.close() }
    }

    /// The faults in force.
    public var faults: Faults { core.state.withLockedValue { $0.faults } }

    /// Applies `faults` to every connection at once; what a stall held starts moving when it ends.
    public func set(_ faults: Faults) {
        let connections = core.state.withLockedValue { state in
            state.faults = faults
            return Array(state.connections.values)
        }
        for connection in connections { connection.pump() }
    }

    /// Connections open through the proxy now.
    public var connectionCount: Int { core.state.withLockedValue { $0.connections.count } }

    /// Connections accepted since the start.
    public var acceptedCount: Int { core.state.withLockedValue { $0.accepted } }

    /// Closes every proxied connection, both sides, at once (as a dead link or a restarted NAT does).
    public func cutAll() {
        let connections = core.state.withLockedValue { state in
            defer { state.connections.removeAll() }
            return Array(state.connections.values)
        }
        for connection in connections { connection.close() }
    }

    /// Stops listening: new connections are refused (ECONNREFUSED); open ones are kept.
    public func refuseNewConnections() async throws {
        let listener = core.state.withLockedValue { state in
            defer { state.listener = nil }
            return state.listener
        }
        try await listener?.close()
    }

    /// Listens again on the same port.
    public func acceptNewConnections() async throws {
        _ = try await core.listen(port: port)
    }

    /// The listener and the connections: shared by the proxy and its listener's initializer.
    private final class Core: Sendable {
        struct State {
            var faults = Faults.none
            var connections: [ObjectIdentifier: ProxiedConnection] = [:]
            var listener: Channel?
            var accepted = 0
        }

        let upstream: SocketAddress
        let group: EventLoopGroup
        let state = NIOLockedValueBox(State())

        init(upstream: SocketAddress, group: EventLoopGroup) {
            self.upstream = upstream
            self.group = group
        }

        func listen(port: Int) async throws -> Channel {
            let listener = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.autoRead, value: false)
                .childChannelInitializer { client in self.connect(client) }
                .bind(host: "127.0.0.1", port: port).get()
            state.withLockedValue { $0.listener = listener }
            return listener
        }

        /// Joins an accepted client to a new connection to the upstream, on the client's event loop.
        private func connect(_ client: Channel) -> EventLoopFuture<Void> {
            let faults: @Sendable () -> Faults = { [state] in state.withLockedValue { $0.faults } }
            return ClientBootstrap(group: client.eventLoop)
                .channelOption(.autoRead, value: false)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                // Bounded, as a real path's buffers are: left to autotuning, the kernel would take
                // megabytes from the upstream before a throttled link pushed back on it.
                .channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(ChaosProxy.upstreamReceiveBufferBytes))
                .connect(to: upstream)
                .flatMapThrowing { server in
                    let connection = ProxiedConnection(client: client, server: server, faults: faults)
                    let key = ObjectIdentifier(connection)
                    self.state.withLockedValue {
                        $0.connections[key] = connection
                        $0.accepted += 1
                    }
                    try connection.start { [state = self.state] in
                        _ = state.withLockedValue { $0.connections.removeValue(forKey: key) }
                    }
                }
                .flatMapErrorThrowing { error in
                    client.close(promise: nil)
                    throw error
                }
        }
    }
}

/// One client and its upstream connection, both on `eventLoop`.
private final class ProxiedConnection: @unchecked Sendable {
    // The links are touched only on `eventLoop`; everything else is immutable.
    let client: Channel
    let server: Channel
    let eventLoop: EventLoop
    private let toUpstream: Link
    private let toClient: Link

    init(client: Channel, server: Channel, faults: @escaping @Sendable () -> ChaosProxy.Faults) {
        self.client = client
        self.server = server
        self.eventLoop = client.eventLoop
        toUpstream = Link(direction: .toUpstream, source: client, destination: server, faults: faults)
        toClient = Link(direction: .toClient, source: server, destination: client, faults: faults)
    }

    func start(closed: @escaping @Sendable () -> Void) throws {
        eventLoop.preconditionInEventLoop()
        try client.pipeline.syncOperations.addHandler(LinkHandler(link: toUpstream))
        try server.pipeline.syncOperations.addHandler(LinkHandler(link: toClient))
        client.closeFuture.and(server.closeFuture).whenComplete { _ in closed() }
        client.setOption(.autoRead, value: true).whenComplete { _ in }
        server.setOption(.autoRead, value: true).whenComplete { _ in }
    }

    func pump() {
        eventLoop.execute {
            self.toUpstream.pump()
            self.toClient.pump()
        }
    }

    func close() {
        client.close(promise: nil)
        server.close(promise: nil)
    }
}

/// One direction of a proxied connection: holds what `source` sent until the faults let it reach
/// `destination`. Used on the connection's event loop only.
private final class Link {
    let direction: ChaosProxy.Direction
    let source: Channel
    let destination: Channel
    let faults: @Sendable () -> ChaosProxy.Faults
    private var queue = Deque<(bytes: ByteBuffer, due: NIODeadline)>()
    private var queuedBytes = 0
    /// With a bandwidth limit, nothing more goes before this time.
    private var nextSend = NIODeadline.uptimeNanoseconds(0)
    private var scheduled: Scheduled<Void>?
    private var readingPaused = false
    /// The source closed: the destination closes too once what was read before has gone on
    /// (a FIN follows the data), unless this direction is blackholed (then no FIN arrives either).
    private var sourceClosed = false

    init(direction: ChaosProxy.Direction, source: Channel, destination: Channel, faults: @escaping @Sendable () -> ChaosProxy.Faults) {
        self.direction = direction
        self.source = source
        self.destination = destination
        self.faults = faults
    }

    func received(_ bytes: ByteBuffer) {
        let faults = faults()
        guard !faults.blackholed.contains(direction) else { return }
        queue.append((bytes, .now() + TimeAmount(faults.latency)))
        queuedBytes += bytes.readableBytes
        if queuedBytes > ChaosProxy.maximumQueuedBytes, !readingPaused {
            readingPaused = true
            source.setOption(.autoRead, value: false).whenComplete { _ in }
        }
        pump()
    }

    /// Sends what the faults allow now, and schedules itself for the rest.
    func pump() {
        guard scheduled == nil, destination.isActive else { return }
        let faults = faults()
        guard !faults.stalled else { return }  // `ChaosProxy.set` pumps again when the stall ends
        var wrote = false
        while let (bytes, due) = queue.first {
            let now = NIODeadline.now()
            let start = max(due, nextSend)
            if start > now {
                let link = NIOLoopBound(self, eventLoop: destination.eventLoop)
                scheduled = destination.eventLoop.scheduleTask(deadline: start) {
                    link.value.scheduled = nil
                    link.value.pump()
                }
                break
            }
            var chunk = bytes
            if let rate = faults.bytesPerSecond, rate > 0 {
                // A fiftieth of a second's worth at a time, so the rate is smooth.
                let size = min(bytes.readableBytes, max(1, rate / 50))
                chunk = bytes.getSlice(at: bytes.readerIndex, length: size)!
                nextSend = now + .nanoseconds(Int64(size) * 1_000_000_000 / Int64(rate))
                if size < bytes.readableBytes {
                    queue[queue.startIndex].bytes.moveReaderIndex(forwardBy: size)
                } else {
                    queue.removeFirst()
                }
            } else {
                queue.removeFirst()
            }
            queuedBytes -= chunk.readableBytes
            destination.write(chunk, promise: nil)
            wrote = true
        }
        if wrote { destination.flush() }
        if sourceClosed, queue.isEmpty { destination.close(promise: nil) }
        if readingPaused, queuedBytes < ChaosProxy.maximumQueuedBytes / 4 {
            readingPaused = false
            source.setOption(.autoRead, value: true).whenComplete { _ in }
        }
    }

    func sourceDidClose() {
        sourceClosed = true
        guard !faults().blackholed.contains(direction) else { return }
        pump()
        if !destination.isActive { cancel() }
    }

    func cancel() {
        scheduled?.cancel()
        scheduled = nil
    }
}

private extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

/// Feeds a channel's reads, and its end, into its link.
private final class LinkHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    let link: Link

    init(link: Link) {
        self.link = link
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        link.received(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        link.sourceDidClose()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
