import Foundation
import Logging
import NIOConcurrencyHelpers
import Testing
import TickwireTestSupport

@testable import RESP

@Suite struct ClusterSlots {
    /// The reference values of the Redis Cluster specification.
    @Test func hashLikeTheSpecification() {
        #expect(RedisClusterSlot.of("123456789") == 0x31C3)
        #expect(RedisClusterSlot.of("foo") == 12182)
        #expect(RedisClusterSlot.of("{user1000}.following") == RedisClusterSlot.of("{user1000}.followers"))
        #expect(RedisClusterSlot.of("foo{}{bar}") != RedisClusterSlot.of("bar"), "an empty first tag: the whole key counts")
        #expect(RedisClusterSlot.of("foo{{bar}}zap") == RedisClusterSlot.of("{bar"))
        #expect(RedisClusterSlot.of("foo{bar}{zap}") == RedisClusterSlot.of("bar"))
    }

    @Test func readsEveryPartOfAClusterURL() throws {
        let url = try RedisConfiguration(url: "redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001,[::1]")
        #expect(url.clusterSeeds?.map(\.description) == ["10.0.0.1:7000", "10.0.0.2:7001", "[::1]:6379"])
        #expect(url.password == "pw" && url.redacted == "redis+cluster://10.0.0.1:7000,10.0.0.2:7001,[::1]:6379")
        #expect(throws: RedisConfiguration.InvalidURL.self) { try RedisConfiguration(url: "redis+cluster://h:7000/2") }
        #expect(throws: RedisConfiguration.InvalidURL.self) { try RedisConfiguration(url: "redis+cluster://h:7000,") }
    }
}

func clusterClient(_ cluster: RedisClusterNodes) throws -> RedisClusterClient {
    RedisClusterClient(configuration: try configuration(cluster.url), eventLoop: loop, name: "t", logger: logger)
}

/// A sharded subscriber of `client`, running (its `run` ends with its `shutdown`), reporting to `probe`.
func shardedSubscriber(_ client: RedisClusterClient, _ probe: SubscriberProbe) -> RedisShardedSubscriber {
    let subscriber = RedisShardedSubscriber(cluster: client, eventLoop: loop, logger: logger, events: probe.events)
    Task { await subscriber.run() }
    return subscriber
}

/// Subscribes to twelve users' notification channels (spread over the shards) and returns them once each is confirmed.
func subscribeTwelveChannels(_ subscriber: RedisShardedSubscriber) async throws -> [String] {
    let channels = (0..<12).map { "notifications:{u\($0)}" }
    for channel in channels { subscriber.subscribe(channel) }
    for channel in channels { try await subscriber.waitUntilSubscribed(channel, timeout: .seconds(10)) }
    return channels
}

/// Those of `channels` whose slot `node` serves now.
func channels(of channels: [String], servedBy node: RedisServer, in cluster: RedisClusterNodes) -> [String] {
    channels.filter { (try? cluster.owner(ofSlot: RedisClusterSlot.of($0)))?.port == node.port }
}

/// SPUBLISHes each (channel, payload) not received yet, until all are: Pub/Sub keeps nothing for
/// a subscriber that blinked (a late ping on a loaded machine), so one publish proves nothing.
func publishUntilReceived(
    _ client: RedisClusterClient, _ probe: SubscriberProbe, _ messages: [(String, String)], _ what: String
) async throws {
    try await eventually(timeout: .seconds(10), interval: .milliseconds(200), what) {
        let missing = messages.filter { !probe.received($0.1) }
        for (channel, payload) in missing { _ = try? await client.send(RESPCommand("SPUBLISH", [channel, payload]), key: channel) }
        try await Task.sleep(for: .milliseconds(100))
        return messages.allSatisfy { probe.received($0.1) }
    }
}

/// Three masters and three replicas, real `redis-server --cluster-enabled` nodes.
@Suite(.timeLimit(.minutes(2)))
struct RedisClusters {
    @Test func slotsTopologyRoutingAndShardedPubSubOnARealCluster() async throws {
        let cluster = try await RedisClusterNodes.start()
        let node = cluster.nodes[0]
        for key in ["a", "user:42", "{alice}.stream", "notifications:{bob}", "prices:{BTC}", "é-ü", "{}x", "k{}"] {
            #expect(RedisClusterSlot.of(key) == Int(try node.cli("CLUSTER", "KEYSLOT", key)), "\(key)")
        }
        let client = try clusterClient(cluster)
        defer { Task { await client.shutdown() } }
        let topology = try await client.refreshTopology()
        #expect(topology.coversEverySlot && topology.shards.count == 3)
        #expect(Set(topology.masters.map(\.port)) == Set(try cluster.masters().map(\.port)))
        #expect(topology.shards.allSatisfy { $0.replicas.count == 1 })

        // Every key lands on the master of its slot.
        for index in 0..<200 { try await client.send(RESPCommand("SET", ["key\(index)", "v\(index)"]), key: "key\(index)") }
        for index in stride(from: 0, to: 200, by: 37) {
            let owner = try #require(try cluster.owner(ofSlot: RedisClusterSlot.of("key\(index)")))
            #expect(try owner.cli("GET", "key\(index)") == "v\(index)")
        }
        let script = RedisScript("redis.call('SET', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])")
        #expect(try await client.evaluate(script, keys: ["{s}x"], arguments: ["run"]).string == "run")

        // Sharded Pub/Sub: one subscriber per master, each channel on its slot's master.
        let probe = SubscriberProbe()
        let subscriber = shardedSubscriber(client, probe)
        defer { Task { await subscriber.shutdown() } }
        let channels = (0..<30).map { "prices:{S\($0)}" }
        for channel in channels { subscriber.subscribe(channel) }
        for channel in channels { try await subscriber.waitUntilSubscribed(channel, timeout: .seconds(10)) }
        #expect(Set(channels.map { topology.master(forSlot: RedisClusterSlot.of($0))! }).count == 3, "spread over every shard")
        try await publishUntilReceived(client, probe, channels.map { ($0, "m-\($0)") }, "every sharded message")
        let owner = try #require(try cluster.owner(ofSlot: RedisClusterSlot.of(channels[0])))
        #expect(try owner.cli("PUBSUB", "SHARDNUMSUB", channels[0]).hasSuffix("1"))
        #expect(subscriber.isConnected)
    }

    @Test func followsMOVEDAndASKWhileASlotMigrates() async throws {
        let cluster = try await RedisClusterNodes.start()
        let client = try clusterClient(cluster)
        defer { Task { await client.shutdown() } }
        let key = "{migrating}k"
        let slot = RedisClusterSlot.of(key)
        try await client.send(RESPCommand("SET", [key, "before"]), key: key)
        let source = try #require(try cluster.owner(ofSlot: slot))
        let destination = try #require(try cluster.masters().first { $0.port != source.port })
        try await cluster.migrate(slot: slot, to: destination) {
            // The key left, the slot is still the source's: the source answers ASK.
            #expect(try await client.send(RESPCommand("GET", [key]), key: key).string == "before")
            try await client.send(RESPCommand("SET", ["{migrating}new", "asked"]), key: "{migrating}new")
            // (A plain GET on the importing node would answer MOVED: list the slot's keys instead.)
            #expect(try destination.cli("CLUSTER", "GETKEYSINSLOT", String(slot), "10").contains("{migrating}new"),
                    "written on the importing node after ASKING")
            #expect(try source.cli("CLUSTER", "COUNTKEYSINSLOT", String(slot)) == "0")
            #expect(try client.topology?.master(forSlot: slot)?.port == source.port, "ASK does not change the topology")
        }
        // The slot is the destination's now; the client's topology still says source: MOVED.
        #expect(try await client.send(RESPCommand("GET", [key]), key: key).string == "before")
        try await eventually("the topology read again after MOVED") { client.topology?.master(forSlot: slot)?.port == destination.port }
    }

    @Test func aMasterKilledIsReplacedByItsReplicaForCommandsAndSubscribers() async throws {
        let cluster = try await RedisClusterNodes.start()
        let client = try clusterClient(cluster)
        defer { Task { await client.shutdown() } }
        let probe = SubscriberProbe()
        let subscriber = shardedSubscriber(client, probe)
        defer { Task { await subscriber.shutdown() } }
        let channels = try await subscribeTwelveChannels(subscriber)

        let victim = try #require(try cluster.owner(ofSlot: RedisClusterSlot.of(channels[0])))
        let onVictim = RESPTests.channels(of: channels, servedBy: victim, in: cluster)
        let killed = ContinuousClock.now
        await victim.kill()
        try await eventually(timeout: .seconds(30), "a write to the killed master's slot succeeds") {
            (try? await client.send(RESPCommand("SET", [channels[0], "x"]), key: channels[0])) != nil
        }
        let writable = ContinuousClock.now - killed
        let promoted = try #require(try cluster.owner(ofSlot: RedisClusterSlot.of(channels[0])))
        #expect(promoted.port != victim.port)
        try await eventually(timeout: .seconds(15), "the channels moved to the promoted replica") { subscriber.isConnected }
        #expect(Set(probe.lost.withLockedValue { $0 }).isSuperset(of: onVictim), "moved channels are reported lost")
        for channel in channels { try await subscriber.waitUntilSubscribed(channel, timeout: .seconds(10)) }
        try await publishUntilReceived(client, probe, channels.map { ($0, "after-\($0)") }, "every channel delivers again")
        print("cluster: writes to the killed master's slots succeed again \(writable) after the kill; subscribers moved \(ContinuousClock.now - killed) after")
    }

    @Test func aCutShardConnectionReportsOnlyItsOwnChannels() async throws {
        let cluster = try await RedisClusterNodes.start()
        let client = try clusterClient(cluster)
        defer { Task { await client.shutdown() } }
        let probe = SubscriberProbe()
        let subscriber = shardedSubscriber(client, probe)
        defer { Task { await subscriber.shutdown() } }
        let channels = try await subscribeTwelveChannels(subscriber)
        let node = try #require(try cluster.owner(ofSlot: RedisClusterSlot.of(channels[0])))
        let onNode = Set(RESPTests.channels(of: channels, servedBy: node, in: cluster))
        #expect(onNode.count < channels.count)

        #expect(try node.killClients(named: "tickwire-subscriber") == 1)
        try await eventually("that shard's subscriber reconnects") { probe.connects.withLockedValue { $0 }.contains(true) }
        // The broker holds and catches up the users of these channels only.
        #expect(probe.disconnectedChannels.withLockedValue { $0 } == [onNode])
        #expect(probe.connectedChannels.withLockedValue { $0 }.last == onNode)
        #expect(channels.allSatisfy { subscriber.isConnected(channel: $0) })
        try await publishUntilReceived(client, probe, channels.map { ($0, "after-\($0)") }, "every channel delivers again")
    }

    @Test func aSubscribedSlotMigratedAwayIsFollowedToItsNewMaster() async throws {
        let cluster = try await RedisClusterNodes.start()
        let client = try clusterClient(cluster)
        defer { Task { await client.shutdown() } }
        let probe = SubscriberProbe()
        let subscriber = shardedSubscriber(client, probe)
        defer { Task { await subscriber.shutdown() } }
        let channel = "notifications:{moving}"
        subscriber.subscribe(channel)
        try await subscriber.waitUntilSubscribed(channel, timeout: .seconds(10))
        let slot = RedisClusterSlot.of(channel)
        let destination = try #require(try cluster.masters().first { $0.port != (try? cluster.owner(ofSlot: slot))?.port })
        try await cluster.migrate(slot: slot, to: destination)
        try await eventually(timeout: .seconds(10), "reported lost and resubscribed on the new master") {
            let resubscribed = try destination.cli("PUBSUB", "SHARDNUMSUB", channel).hasSuffix("1")
            return probe.lost.withLockedValue { $0 }.contains(channel) && resubscribed
        }
        try await publishUntilReceived(client, probe, [(channel, "moved")], "delivered from the new master")
    }
}
