import Foundation
import Logging
import NIOConcurrencyHelpers
import Testing
import TickwireTestSupport

@testable import RESP

@Suite struct SentinelURLs {
    @Test func readsTheSentinelsTheMasterNameAndTheDatabase() throws {
        let url = try RedisConfiguration(
            url: "redis+sentinel://:p%40ss@10.0.0.1:26379,10.0.0.2,[::1]:26380/wallet/3?sentinel_password=s3")
        #expect(url.sentinel?.addresses.map(\.description) == ["10.0.0.1:26379", "10.0.0.2:26379", "[::1]:26380"])
        #expect(url.sentinel?.masterName == "wallet" && url.sentinel?.password == "s3")
        #expect(url.password == "p@ss" && url.database == 3 && !url.tls)
        #expect(url.redacted == "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379,[::1]:26380/wallet/3")
        let tls = try RedisConfiguration(url: "rediss+sentinel://s1/m")
        #expect(tls.tls && tls.database == 0 && tls.sentinel?.addresses == [.init(host: "s1", port: 26379)])
        #expect(try RedisConfiguration(url: "redis://h").sentinel == nil)
    }

    @Test(arguments: [
        "redis+sentinel://s1", "redis+sentinel://s1/", "redis+sentinel://s1,/m", "redis+sentinel://s1/m/x",
        "redis+sentinel://s1/m/1/2", "redis+sentinel://s1:0/m", "redis://h?sentinel_password=x",
    ])
    func refusesMalformedSentinelURLs(_ url: String) {
        #expect(throws: RedisConfiguration.InvalidURL.self) { try RedisConfiguration(url: url) }
    }
}

/// A sentinel that names whichever port the test says, to put the client in front of the
/// situations a real Sentinel only shows in a race: a named master that is a replica.
final class ScriptedSentinel: Sendable {
    let named: NIOLockedValueBox<Int>
    let server: ScriptedServer

    init(naming port: Int) async throws {
        let named = NIOLockedValueBox(port)
        self.named = named
        server = try await ScriptedServer { command in
            switch command.name {
            case "HELLO": return .bytes("-ERR unknown command 'HELLO'\r\n")
            case "SENTINEL":
                let port = String(named.withLockedValue { $0 })
                return .bytes("*2\r\n$9\r\n127.0.0.1\r\n$\(port.utf8.count)\r\n\(port)\r\n")
            case "SUBSCRIBE": return .silence
            default: return .bytes("+PONG\r\n")
            }
        }
    }

    var url: String { "redis+sentinel://127.0.0.1:\(server.port)/scripted" }
}

@Suite(.timeLimit(.minutes(1)))
struct SentinelEndpoints {
    @Test func neverUsesAServerThatAnswersAsAReplica() async throws {
        let master = try await RedisServer.start()
        let replica = try await RedisServer.start(arguments: ["--replicaof", "127.0.0.1", String(master.port)])
        let sentinel = try await ScriptedSentinel(naming: replica.port)
        let client = RedisClient(configuration: try configuration(sentinel.url), eventLoop: loop, name: "t", logger: logger)
        defer { Task { await client.shutdown() } }
        await #expect(throws: RedisError.self) { try await client.send("SET", "k", "v") }
        sentinel.named.withLockedValue { $0 = master.port }
        try await eventually(timeout: .seconds(10), "the client reaches the master once it is named") {
            (try? await client.send("SET", "k", "v")) != nil
        }
        #expect(try master.cli("GET", "k") == "v")
    }

    @Test func aREADONLYReplyLooksTheMasterUpAgainAndRetriesThere() async throws {
        let a = try await RedisServer.start()
        let b = try await RedisServer.start()
        let sentinel = try await ScriptedSentinel(naming: a.port)
        let client = RedisClient(configuration: try configuration(sentinel.url), eventLoop: loop, name: "t", logger: logger)
        defer { Task { await client.shutdown() } }
        try await client.send("SET", "k", "on-a")
        // A is demoted behind the client's back (no +switch-master reaches it): its connection stays
        // open, and the next write is refused with READONLY.
        try a.cli("REPLICAOF", "127.0.0.1", String(b.port))
        sentinel.named.withLockedValue { $0 = b.port }
        try await client.send("SET", "k", "on-b")
        #expect(try b.cli("GET", "k") == "on-b")
        #expect(try await client.send("ROLE").elements?.first?.string == "master")
    }

    @Test func waitFailsAPublishNoReplicaConfirmed() async throws {
        let redis = try await RedisServer.start()
        let client = RedisClient(configuration: try configuration(redis.url), eventLoop: loop, name: "t", logger: logger)
        defer { Task { await client.shutdown() } }
        let script = RedisScript("return redis.call('INCR', KEYS[1])")
        await #expect(throws: RedisError.notReplicated(confirmed: 0, wanted: 1)) {
            try await client.evaluate(script, keys: ["n"], arguments: [], replicas: 1, replicaTimeout: .milliseconds(100))
        }
        #expect(try redis.cli("GET", "n") == "1", "the master keeps what it ran")
    }
}

/// A master, two replicas and three real sentinels.
@Suite(.timeLimit(.minutes(2)))
struct SentinelFailover {
    @Test func clientAndSubscriberFollowTheMasterSentinelPromotes() async throws {
        let group = try await RedisSentinelGroup.start()
        let endpoint = try configuration(group.url).endpoint(eventLoop: loop, logger: logger)
        let client = RedisClient(endpoint: endpoint, eventLoop: loop, name: "t", logger: logger)
        let probe = SubscriberProbe()
        let subscriber = RedisSubscriber(endpoint: endpoint, eventLoop: loop, logger: logger, events: probe.events)
        let run = Task { await subscriber.run() }
        defer {
            Task {
                await subscriber.shutdown()
                await run.value
                await client.shutdown()
                await endpoint.shutdown()
            }
        }
        subscriber.subscribe("news")
        try await subscriber.waitUntilSubscribed("news")
        try await client.send("SET", "before", "1")
        // Pub/Sub keeps nothing for a subscriber that blinked (a late ping on a loaded machine):
        // publish until it arrives.
        try await eventually("the first message") {
            _ = try? await client.send("PUBLISH", "news", "one")
            return probe.received("one")
        }

        let killed = ContinuousClock.now
        await group.master.kill()
        try await eventually(timeout: .seconds(30), "the client writes to the promoted replica") {
            (try? await client.send("SET", "after", "2")) != nil
        }
        let promoted = try #require(try group.currentMaster())
        #expect(promoted.port != group.master.port)
        #expect(try promoted.cli("GET", "before") == "1" && promoted.cli("GET", "after") == "2")
        try await eventually(timeout: .seconds(10), "the subscriber moved too") {
            probe.connects.withLockedValue { $0 }.contains(true) && subscriber.isConnected
        }
        try await subscriber.waitUntilSubscribed("news")
        try await eventually("a message published on the new master") {
            _ = try? await client.send("PUBLISH", "news", "two")
            return probe.received("two")
        }
        print("sentinel: client and subscriber on the new master \(ContinuousClock.now - killed) after the kill")
    }
}
