import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Sharded Pub/Sub on a Redis Cluster: `SSUBSCRIBE` on the master of each channel's slot, so a
/// message travels only within the shard that owns its channel, over one `RedisSubscriber`
/// (sharded) per master.
///
/// Channels are reference-counted here and placed by the topology of the `RedisClusterClient`.
/// When a topology arrives that gives a channel's slot another master (a failover, a slot
/// migration), the channel moves to that master's subscriber, and `Events.lost` reports it: what
/// was published on it in between must be read from storage. So does a channel placed after
/// having no master (no topology yet, or a failover under way). A node that drops a channel itself
/// (`sunsubscribe` pushed when its slot migrates away, or `MOVED` for a subscription it does not
/// serve) makes the subscriber read the topology again, place the channel anew (or subscribe
/// again where it was) and report it lost too. While any subscriber is down it reads the topology
/// every second, otherwise every five.
public final class RedisShardedSubscriber: RedisPubSub {
    private let cluster: RedisClusterClient
    private let eventLoop: EventLoop
    private let logger: Logger
    private let events: RedisSubscriber.Events
    private let pingInterval: Duration
    private let pingTimeout: Duration

    private struct Shard {
        var subscriber: RedisSubscriber
        var task: Task<Void, Never>
    }

    private struct State {
        var counts: [String: Int] = [:]
        /// The master each placed channel is subscribed on.
        var placement: [String: RedisConfiguration.Address] = [:]
        var shards: [RedisConfiguration.Address: Shard] = [:]
        var isShutDown = false
    }
    private let state = NIOLockedValueBox(State())

    public init(
        cluster: RedisClusterClient, eventLoop: EventLoop, logger: Logger, events: RedisSubscriber.Events,
        pingInterval: Duration = .seconds(1), pingTimeout: Duration = .seconds(2)
    ) {
        self.cluster = cluster
        self.eventLoop = eventLoop
        self.logger = logger
        self.events = events
        self.pingInterval = pingInterval
        self.pingTimeout = pingTimeout
    }

    // MARK: Channels

    public func subscribe(_ channel: String) {
        let topology = cluster.topology
        state.withLockedValue { state in
            state.counts[channel, default: 0] += 1
            if let master = state.placement[channel] {
                state.shards[master]?.subscriber.subscribe(channel)
            } else if let topology {
                place(channel, count: 1, topology: topology, &state)
            }
            // No topology yet: placed when `run` has read it.
        }
    }

    public func unsubscribe(_ channel: String) {
        state.withLockedValue { state in
            guard let count = state.counts[channel] else { return }
            state.counts[channel] = count == 1 ? nil : count - 1
            guard let master = state.placement[channel] else { return }
            state.shards[master]?.subscriber.unsubscribe(channel)
            if count == 1 { state.placement[channel] = nil }
        }
    }

    /// Subscribes `channel` (with `count` references) on the master of its slot; false if no master serves it.
    @discardableResult
    private func place(_ channel: String, count: Int, topology: RedisClusterTopology, _ state: inout State) -> Bool {
        guard let master = topology.master(forSlot: RedisClusterSlot.of(channel)) else { return false }
        state.placement[channel] = master
        shard(master, &state).add(channel, count: count)
        return true
    }

    private func shard(_ master: RedisConfiguration.Address, _ state: inout State) -> RedisSubscriber {
        if let shard = state.shards[master] { return shard.subscriber }
        let subscriber = RedisSubscriber(
            endpoint: RedisServerEndpoint(configuration: cluster.configuration.server(at: master)), eventLoop: eventLoop,
            logger: logger,
            events: RedisSubscriber.Events(
                message: events.message, connected: events.connected, disconnected: events.disconnected,
                lost: { [weak self] channels in self?.dropped(channels) }),
            pingInterval: pingInterval, pingTimeout: pingTimeout,
            backoff: Backoff(base: .milliseconds(100), cap: .seconds(1)), sharded: true)
        state.shards[master] = Shard(subscriber: subscriber, task: Task { await subscriber.run() })
        return subscriber
    }

    /// Places every channel by `topology`: those whose slot has another master now move there, and
    /// those whose slot has none wait for a topology that gives it one. Returns the channels that
    /// left the master they were subscribed on, and those placed after waiting for a master (nothing
    /// published on them meanwhile arrived either).
    private func replace(by topology: RedisClusterTopology) -> [String] {
        let (moved, emptied) = state.withLockedValue { state -> ([String], [Shard]) in
            guard !state.isShutDown else { return ([], []) }
            var moved: [String] = []
            for (channel, count) in state.counts {
                let master = topology.master(forSlot: RedisClusterSlot.of(channel))
                let current = state.placement[channel]
                guard master != current else { continue }
                if let current {
                    _ = state.shards[current]?.subscriber.remove(channel)
                    moved.append(channel)
                }
                state.placement[channel] = nil
                // No master for the slot (a failover under way): placed by a later topology.
                if place(channel, count: count, topology: topology, &state), current == nil { moved.append(channel) }
            }
            // Subscribers left without channels on a node that is no longer a master.
            var emptied: [Shard] = []
            for (master, shard) in state.shards where !topology.masters.contains(master) && shard.subscriber.channels.isEmpty {
                emptied.append(shard)
                state.shards[master] = nil
            }
            return (moved, emptied)
        }
        for shard in emptied { Task { await shard.subscriber.shutdown() } }
        return moved
    }

    /// A node dropped these channels: read the topology, place them, and subscribe them again where they stayed.
    private func dropped(_ channels: [String]) {
        Task {
            let topology = try? await cluster.refreshTopology()
            let moved = topology.map(replace(by:)) ?? []
            state.withLockedValue { state in
                var stayed: [RedisConfiguration.Address: [String]] = [:]
                for channel in channels where !moved.contains(channel) {
                    if let master = state.placement[channel] { stayed[master, default: []].append(channel) }
                }
                for (master, channels) in stayed { state.shards[master]?.subscriber.resubscribe(channels) }
            }
            events.lost(Array(Set(channels).union(moved)))
        }
    }

    public var channels: Set<String> { state.withLockedValue { Set($0.counts.keys) } }

    public func isConnected(channel: String) -> Bool {
        state.withLockedValue { state in state.placement[channel].flatMap { state.shards[$0] }?.subscriber.isConnected ?? false }
    }

    public var isConnected: Bool {
        state.withLockedValue { state in
            state.placement.count == state.counts.count && state.shards.values.allSatisfy(\.subscriber.isConnected)
        } && cluster.topology != nil
    }

    public func waitUntilSubscribed(_ channel: String, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            let subscriber = state.withLockedValue { state in state.placement[channel].flatMap { state.shards[$0]?.subscriber } }
            let left = deadline - ContinuousClock.now
            guard left > .zero else { throw RedisError.timeout }
            if let subscriber {
                // A channel moved meanwhile is waited for on its new subscriber.
                do {
                    return try await subscriber.waitUntilSubscribed(channel, timeout: min(left, .milliseconds(500)))
                } catch RedisError.timeout {
                    continue
                }
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    // MARK: Upkeep

    public func run() async {
        cluster.onTopologyChange { [weak self] topology in
            guard let self else { return }
            let moved = self.replace(by: topology)
            if !moved.isEmpty {
                // Moved, or placed at last: their slot has a master again, or this is the first topology.
                self.logger.info("sharded channels placed on a new master", metadata: ["channels": "\(moved.count)"])
                self.events.lost(moved)
            }
        }
        var failures = 0
        while !state.withLockedValue({ $0.isShutDown }) {
            do {
                // The listener above places what changed; the first read places everything.
                let topology = try await cluster.refreshTopology()
                let moved = replace(by: topology)
                if !moved.isEmpty { events.lost(moved) }
                failures = 0
            } catch {
                if failures == 0 { logger.warning("cannot read the Redis Cluster topology", metadata: ["error": "\(error)"]) }
                failures += 1
            }
            let allUp = state.withLockedValue { $0.shards.values.allSatisfy(\.subscriber.isConnected) }
            let wait: Duration = failures == 0 && allUp ? .seconds(5) : .seconds(1)
            let end = ContinuousClock.now + wait
            while ContinuousClock.now < end, !state.withLockedValue({ $0.isShutDown }) {
                try? await Task.sleep(for: .milliseconds(100))
                // A subscriber just dropped: read the topology now rather than in five seconds.
                if wait == .seconds(5), !state.withLockedValue({ $0.shards.values.allSatisfy(\.subscriber.isConnected) }) { break }
            }
        }
    }

    public func shutdown() async {
        let shards = state.withLockedValue { state in
            state.isShutDown = true
            return Array(state.shards.values)
        }
        for shard in shards {
            await shard.subscriber.shutdown()
            await shard.task.value
        }
    }
}
