import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Commands on a Redis Cluster: each goes to the master of its key's slot, over one pipelined
/// `RedisClient` per node.
///
/// The topology comes from `CLUSTER SHARDS`, read from any node known (masters, replicas, then
/// the URL's seeds). A `MOVED` reply sends the command to the node it names and reads the
/// topology again; an `ASK` reply (a slot being migrated) sends it there once, after `ASKING`.
/// When a node cannot be reached, or the cluster says `CLUSTERDOWN` or `TRYAGAIN` (a failover or
/// a migration in progress), the command was not run: the client reads the topology again and
/// retries until `retryBudget` is spent. A connection lost after the command was written is not
/// retried, since the command may have run.
public final class RedisClusterClient: RedisCommands {
    public let configuration: RedisConfiguration
    private let eventLoop: EventLoop
    private let name: String
    private let logger: Logger
    /// How long a command may keep retrying through a failover.
    public let retryBudget: Duration

    private struct State {
        var topology: RedisClusterTopology?
        var nodes: [RedisConfiguration.Address: RedisClient] = [:]
        /// The read of the topology under way, and when it began.
        var refresh: (id: Int, task: Task<RedisClusterTopology, Error>, startedAt: ContinuousClock.Instant)?
        var nextRefreshID = 0
        var listeners: [@Sendable (RedisClusterTopology) -> Void] = []
        var isShutDown = false
    }
    private let state = NIOLockedValueBox(State())

    public init(
        configuration: RedisConfiguration, eventLoop: EventLoop, name: String, logger: Logger,
        retryBudget: Duration = .seconds(6)
    ) {
        precondition(configuration.clusterSeeds != nil, "a cluster client needs a +cluster configuration")
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.name = name
        self.logger = logger
        self.retryBudget = retryBudget
    }

    /// The topology read last, if any.
    public var topology: RedisClusterTopology? { state.withLockedValue { $0.topology } }

    /// `listener` runs with every topology that differs from the one before.
    public func onTopologyChange(_ listener: @escaping @Sendable (RedisClusterTopology) -> Void) {
        state.withLockedValue { $0.listeners.append(listener) }
    }

    // MARK: Topology

    /// Reads the topology again. One read at a time: a caller shares a read that began after it
    /// asked, and waits out one that began before (which may not see what made it ask, such as
    /// the MOVED it was just told) to start its own.
    @discardableResult
    public func refreshTopology() async throws -> RedisClusterTopology {
        let askedAt = ContinuousClock.now
        while true {
            let (task, isFresh) = state.withLockedValue { state -> (Task<RedisClusterTopology, Error>, Bool) in
                if let running = state.refresh { return (running.task, running.startedAt >= askedAt) }
                state.nextRefreshID += 1
                let id = state.nextRefreshID
                let task = Task {
                    defer { self.state.withLockedValue { if $0.refresh?.id == id { $0.refresh = nil } } }
                    return try await self.readTopology()
                }
                state.refresh = (id, task, ContinuousClock.now)
                return (task, true)
            }
            if isFresh { return try await task.value }
            _ = try? await task.value
        }
    }

    private func readTopology() async throws -> RedisClusterTopology {
        let known = state.withLockedValue { state in
            (state.topology?.masters ?? []) + (state.topology?.shards.flatMap(\.replicas) ?? [])
        }
        var candidates: [RedisConfiguration.Address] = []
        for address in known + configuration.clusterSeeds! where !candidates.contains(address) { candidates.append(address) }
        var errors: [String] = []
        for address in candidates {
            do {
                let topology = try RedisClusterTopology(clusterShards: try await node(address).send(RESPCommand("CLUSTER", ["SHARDS"])))
                guard !topology.shards.isEmpty else {
                    errors.append("\(address): no shard serves slots")
                    continue
                }
                let (changed, listeners) = state.withLockedValue { state in
                    defer { state.topology = topology }
                    return (state.topology != topology, state.listeners)
                }
                if changed {
                    logger.info("Redis Cluster topology", metadata: [
                        "masters": "\(topology.masters.map(\.description).joined(separator: ","))",
                        "covered": "\(topology.coversEverySlot)",
                    ])
                    for listener in listeners { listener(topology) }
                }
                return topology
            } catch {
                errors.append("\(address): \(error)")
            }
        }
        throw RedisError.unavailable("no cluster node answered CLUSTER SHARDS (\(errors.joined(separator: "; ")))")
    }

    /// The client of one node, made on first use.
    public func node(_ address: RedisConfiguration.Address) -> RedisClient {
        state.withLockedValue { state in
            if let client = state.nodes[address] { return client }
            let client = RedisClient(
                configuration: configuration.server(at: address), eventLoop: eventLoop, name: name, logger: logger,
                backoff: Backoff(base: .milliseconds(50), cap: .milliseconds(500)))
            state.nodes[address] = client
            return client
        }
    }

    /// The master serving `slot` (any master for nil), reading the topology when none is known.
    public func master(forSlot slot: Int?) async throws -> RedisConfiguration.Address {
        var topology = self.topology
        if topology == nil { topology = try await refreshTopology() }
        if let slot {
            if let master = topology!.master(forSlot: slot) { return master }
            throw RedisError.unavailable("no master serves slot \(slot)")
        }
        guard let master = topology!.masters.first else { throw RedisError.unavailable("the cluster has no master") }
        return master
    }

    // MARK: Commands

    public func send(_ command: RESPCommand, key: String?, timeout: Duration?) async throws -> RESPValue {
        try await route(slot: key.map(RedisClusterSlot.of)) { connection, asking in
            let reply = asking ? try await connection.sendRawAsking(command, timeout: timeout)
                : try await connection.sendRaw(command, timeout: timeout)
            if case .error(let message) = reply { throw RedisError.server(message) }
            return reply
        }
    }

    public func evaluate(
        _ script: RedisScript, keys: [String], arguments: [String], replicas: Int, replicaTimeout: Duration
    ) async throws -> RESPValue {
        try await route(slot: keys.first.map(RedisClusterSlot.of)) { connection, asking in
            try await connection.evaluate(
                script, keys: keys, arguments: arguments, replicas: replicas, replicaTimeout: replicaTimeout, asking: asking)
        }
    }

    /// A redirect named in an error reply: `MOVED 3999 127.0.0.1:6381` or `ASK 3999 127.0.0.1:6381`.
    struct Redirect: Equatable {
        var slot: Int
        var address: RedisConfiguration.Address
        var asking: Bool

        init?(_ message: String) {
            let parts = message.split(separator: " ")
            guard parts.count == 3, parts[0] == "MOVED" || parts[0] == "ASK", let slot = Int(parts[1]),
                let address = try? RedisConfiguration.address(parts[2], defaultPort: 6379)
            else { return nil }
            self.slot = slot
            self.address = address
            self.asking = parts[0] == "ASK"
        }
    }

    private func route<T: Sendable>(
        slot: Int?, _ body: @Sendable (RedisConnection, _ asking: Bool) async throws -> T
    ) async throws -> T {
        let deadline = ContinuousClock.now + retryBudget
        var redirect: Redirect?
        var redirects = 0
        var delay = Duration.milliseconds(50)
        while true {
            do {
                let address: RedisConfiguration.Address
                if let redirect { address = redirect.address } else { address = try await master(forSlot: slot) }
                let connection = try await node(address).connection()
                return try await body(connection, redirect?.asking ?? false)
            } catch RedisError.server(let message) where Redirect(message) != nil {
                let next = Redirect(message)!
                if !next.asking { Task { try? await self.refreshTopology() } }
                redirects += 1
                guard redirects <= 5 else { throw RedisError.server(message) }
                redirect = next
            } catch let error where Self.isRetryable(error) {
                // Not run: a failover or a migration in progress, or a node gone.
                guard ContinuousClock.now + delay < deadline, !state.withLockedValue({ $0.isShutDown }) else { throw error }
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .milliseconds(500))
                redirect = nil
                _ = try? await refreshTopology()
            }
        }
    }

    static func isRetryable(_ error: Error) -> Bool {
        switch error {
        case RedisError.unavailable: true
        case RedisError.server(let message): message.hasPrefix("CLUSTERDOWN") || message.hasPrefix("TRYAGAIN")
        default: false
        }
    }

    public func shutdown() async {
        let (nodes, refresh) = state.withLockedValue { state in
            state.isShutDown = true
            state.listeners = []
            return (Array(state.nodes.values), state.refresh?.task)
        }
        refresh?.cancel()
        for node in nodes { await node.shutdown() }
    }
}
