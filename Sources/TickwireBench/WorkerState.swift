import Histogram
import NIOCore
import NIOPosix
import TickwireCore
import TickwireProtocol
import TickwireWebSocket

/// A worker's connections and measurements, confined to its one event loop.
final class WorkerState {
    let plan: BenchPlan
    let assignment: WorkerAssignment
    let eventLoop: EventLoop
    let parser = WebSocketFrameParser(role: .client, maximumFrameSize: 1 << 20)
    private let signer: HS256TokenSigner
    private let targets: [(host: String, port: Int)]
    /// Each target's address, resolved once. Connecting by host name resolves on every attempt, on
    /// one serial queue per event loop: in a reconnect storm of 14,000 clients per worker the
    /// lookups queued for longer than the connect timeout, and the clients, not the server, stalled.
    private let addresses: [SocketAddress]

    private(set) var connections: [BenchConnection] = []
    private var launched = 0
    private(set) var handshakes = 0
    private(set) var currentlySubscribed = 0
    private(set) var everSubscribed = 0
    private(set) var failures: [String: Int] = [:]
    var connectTimes = Histogram<UInt64>(highestTrackableValue: 600_000, numberOfSignificantValueDigits: .three)
    var reconnectTimes = Histogram<UInt64>(highestTrackableValue: 600_000, numberOfSignificantValueDigits: .three)
    var priceLatency = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    var notificationLatency = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    private(set) var measuring = false
    private(set) var delivered = 0
    private(set) var deliveredDuringPublishing: Int?
    private(set) var duplicated = 0
    private(set) var gaps = 0
    private(set) var reconnected = 0
    private var stopping = false

    init(assignment: WorkerAssignment, eventLoop: EventLoop) throws {
        self.assignment = assignment
        self.plan = assignment.plan
        self.eventLoop = eventLoop
        self.signer = HS256TokenSigner(secret: assignment.plan.jwtSecret)
        // The command checked every URL (`BenchPlan.hostAndPort`), and that its host resolves.
        self.targets = try assignment.plan.servers.map { url in
            guard let target = BenchPlan.hostAndPort(ofServer: url) else { throw BenchError("not a ws://HOST:PORT URL: \(url)") }
            return target
        }
        self.addresses = try targets.map { try SocketAddress.makeAddressResolvingHost($0.host, port: $0.port) }
    }

    // MARK: Addressing

    func path(for index: Int) -> String {
        switch plan.target {
        case .tickwire:
            return "/ws?token=" + signer.token(subject: BenchPlan.user(index), lifetimeSeconds: 86_400)
        case .nchan:
            var channels = plan.symbolIndices(forConnection: index).map { BenchPlan.symbols[$0] }
            if plan.subscribesToNotifications { channels.append(BenchPlan.user(index)) }
            return "/sub/" + channels.joined(separator: ",")
        }
    }

    func hostHeader(for index: Int) -> String {
        let target = targets[index % targets.count]
        return "\(target.host):\(target.port)"
    }

    // MARK: Connecting

    /// Opens this worker's connections at its share of the connect rate.
    func start() {
        let perTick = max(1, Int((Double(plan.connectRate) / Double(plan.workers) / 100).rounded(.up)))
        eventLoop.assumeIsolated().repeatEvery(.milliseconds(10)) {
            for _ in 0..<perTick {
                guard self.launched < self.assignment.count else { return false }
                let index = self.assignment.first + self.launched
                self.launched += 1
                let connection = BenchConnection(index: index, state: self, startedAt: .now())
                self.connections.append(connection)
                self.open(connection)
            }
            return true
        }
        // Spread pings: each second of wall time pings the connections whose turn it is. Counted
        // from the clock, not from ticks: an overloaded worker's ticks run late, and pinging per
        // tick would stretch the interval past the server's heartbeat timeout.
        let slots = max(1, Int(plan.pingInterval))
        let pingStart = NIODeadline.now()
        var nextSecond = 1
        eventLoop.assumeIsolated().repeatEvery(.seconds(1), initialDelay: .seconds(1)) {
            let elapsed = Int((NIODeadline.now() - pingStart).nanoseconds / 1_000_000_000)
            let due = Set((nextSecond...max(nextSecond, elapsed)).prefix(slots).map { $0 % slots })
            nextSecond = max(nextSecond, elapsed) + 1
            for (position, connection) in self.connections.enumerated() where due.contains(position % slots) {
                connection.ping()
            }
            return !self.stopping
        }
    }

    private func open(_ connection: BenchConnection) {
        let address = addresses[connection.index % addresses.count]
        // Channels of this bootstrap live on this worker's only loop, where the handler was made.
        let handler = NIOLoopBound(connection, eventLoop: eventLoop)
        var bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.seconds(10))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler.value) }
            }
        if let source = plan.sourceAddress(forConnection: connection.index),
            let address = try? SocketAddress(ipAddress: source, port: 0)
        {
            // Let connect() pick the port, so one source address is not limited to one port per connection.
            bootstrap = bootstrap
                .channelOption(ChannelOptions.Types.SocketOption(level: .ip, name: NIOBSDSocket.Option(rawValue: 24)), value: 1)
                .bind(to: address)
        }
        bootstrap.connect(to: address).assumeIsolated().whenFailure { error in
            let reason: String
            switch error {
            case ChannelError.connectTimeout: reason = "connect_timeout"
            case let error as IOError where error.errnoCode == ECONNREFUSED: reason = "connection_refused"
            case let error as IOError where error.errnoCode == EADDRNOTAVAIL: reason = "no_source_port"
            default: reason = "connect_error"
            }
            self.failed(connection, reason: reason)
            self.scheduleReconnect(connection)
        }
    }

    // MARK: Events from connections

    func handshakeCompleted(_ connection: BenchConnection, after duration: TimeAmount) {
        handshakes += 1
        if connection.droppedAt == nil { connectTimes.record(UInt64(max(1, duration.nanoseconds / 1_000_000))) }
    }

    func subscribed(_ connection: BenchConnection, after duration: TimeAmount) {
        currentlySubscribed += 1
        if let droppedAt = connection.droppedAt {
            reconnectTimes.record(UInt64(max(1, (NIODeadline.now() - droppedAt).nanoseconds / 1_000_000)))
            connection.droppedAt = nil
            reconnected += 1
        } else {
            everSubscribed += 1
        }
    }

    func failed(_ connection: BenchConnection, reason: String) {
        failures[reason, default: 0] += 1
    }

    func closedByServer(_ connection: BenchConnection, code: String) {
        failures["closed_\(code)", default: 0] += 1
    }

    func disconnected(_ connection: BenchConnection, wasSubscribed: Bool) {
        if wasSubscribed {
            currentlySubscribed -= 1
            if connection.droppedAt == nil { connection.droppedAt = .now() }
        }
        scheduleReconnect(connection)
    }

    /// Like the SDKs: exponential backoff from 1 s, doubling, capped at 30 s, full jitter.
    private func scheduleReconnect(_ connection: BenchConnection) {
        guard !stopping else { return }
        let ceiling = min(30_000, 1000 << min(connection.reconnectAttempt, 5))
        connection.reconnectAttempt += 1
        let delay = TimeAmount.milliseconds(Int64.random(in: 0...Int64(ceiling)))
        eventLoop.assumeIsolated().scheduleTask(in: delay) {
            guard !self.stopping else { return }
            connection.restart(at: .now())
            self.open(connection)
        }
    }

    func received(_ stamp: BenchStamp, on connection: BenchConnection) {
        guard measuring else { return }
        let latency = UInt64(max(0, Timestamp.nowMicroseconds() - stamp.sentMicroseconds))
        if stamp.stream == BenchPlan.notificationStream {
            notificationLatency.record(latency)
        } else {
            priceLatency.record(latency)
        }
        delivered += 1
        if let slot = connection.sequences.firstIndex(where: { $0.stream == stamp.stream }) {
            let (lostDelta, duplicate) = connection.sequences[slot].record(stamp.sequence)
            gaps += lostDelta
            if duplicate { duplicated += 1 }
        } else {
            // The first message of a stream since measuring started: everything before it is missing so far.
            var window = SequenceWindow(stream: stamp.stream)
            let (lostDelta, _) = window.record(stamp.sequence)
            gaps += lostDelta
            connection.sequences.append(window)
        }
    }

    // MARK: Control

    func startMeasuring() {
        measuring = true
    }

    func publishingEnded() {
        deliveredDuringPublishing = delivered
    }

    /// Messages a connection never got by the end: for each of its streams, the last sequence
    /// published against the last one it saw. Notifications go to users in turn (see
    /// `BenchPublisher`), so user `u` was sent `total / N` of them, plus one if `u < total % N`.
    func tailLoss(priceSequences: [UInt16: UInt32], notificationsPublished: Int) -> Int {
        var missing = 0
        for connection in connections {
            var expected: [(UInt16, UInt32)] = plan.symbolIndices(forConnection: connection.index).map {
                (UInt16($0), priceSequences[UInt16($0)] ?? 0)
            }
            if plan.subscribesToNotifications {
                let sent = notificationsPublished / plan.connections + (connection.index < notificationsPublished % plan.connections ? 1 : 0)
                expected.append((BenchPlan.notificationStream, UInt32(sent)))
            }
            for (stream, published) in expected {
                let seen = connection.sequences.first { $0.stream == stream }?.highest ?? 0
                if published > seen { missing += Int(published - seen) }
            }
        }
        return missing
    }

    func stop() {
        stopping = true
        for connection in connections { connection.context?.close(promise: nil) }
    }

    var progress: WorkerProgress {
        WorkerProgress(
            worker: assignment.worker, launched: launched, handshakes: handshakes, subscribed: currentlySubscribed,
            everSubscribed: everSubscribed, reconnected: reconnected, delivered: delivered, failures: failures)
    }
}

/// What a worker reports every second.
public struct WorkerProgress: Codable, Sendable {
    public var worker: Int
    public var launched: Int
    public var handshakes: Int
    public var subscribed: Int
    public var everSubscribed: Int
    public var reconnected: Int
    /// Stamped messages received since measuring started.
    public var delivered: Int
    public var failures: [String: Int]
}
