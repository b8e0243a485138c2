import Logging
import NIOConcurrencyHelpers
import NIOCore
import Testing
import TickwireTestSupport

@testable import RESP

/// Collects what a subscriber reports.
final class SubscriberProbe: Sendable {
    let messages = NIOLockedValueBox<[(String, String)]>([])
    let connects = NIOLockedValueBox<[Bool]>([])
    let disconnects = NIOLockedValueBox(0)
    /// The channels each `connected` and `disconnected` reported, in order.
    let connectedChannels = NIOLockedValueBox<[Set<String>]>([])
    let disconnectedChannels = NIOLockedValueBox<[Set<String>]>([])
    let lost = NIOLockedValueBox<[String]>([])

    var events: RedisSubscriber.Events {
        RedisSubscriber.Events(
            message: { channel, payload in self.messages.withLockedValue { $0.append((channel, String(buffer: payload))) } },
            connected: { reconnected, channels in
                self.connectedChannels.withLockedValue { $0.append(channels) }
                self.connects.withLockedValue { $0.append(reconnected) }
            },
            disconnected: { channels in
                self.disconnectedChannels.withLockedValue { $0.append(channels) }
                self.disconnects.withLockedValue { $0 += 1 }
            },
            lost: { channels in self.lost.withLockedValue { $0 += channels } })
    }

    func received(_ payload: String) -> Bool {
        messages.withLockedValue { $0.contains { $0.1 == payload } }
    }
}

@Suite(.timeLimit(.minutes(1)))
struct Subscribers {
    func start(_ redis: RedisServer, probe: SubscriberProbe) throws -> RedisSubscriber {
        let subscriber = RedisSubscriber(
            configuration: try configuration(redis.url), eventLoop: loop, logger: logger, events: probe.events,
            pingInterval: .milliseconds(300), pingTimeout: .milliseconds(700))
        Task { await subscriber.run() }
        return subscriber
    }

    @Test func receivesMessagesOfSubscribedChannelsWithReferenceCounting() async throws {
        let redis = try await RedisServer.start()
        let probe = SubscriberProbe()
        let subscriber = try start(redis, probe: probe)
        defer { Task { await subscriber.shutdown() } }
        subscriber.subscribe("news")
        subscriber.subscribe("news")
        try await subscriber.waitUntilSubscribed("news")
        try redis.cli("PUBLISH", "news", "one")
        try await eventually("one arrives") { probe.received("one") }
        subscriber.unsubscribe("news")
        try redis.cli("PUBLISH", "news", "two")
        try await eventually("two arrives while one reference remains") { probe.received("two") }
        subscriber.unsubscribe("news")
        try await eventually("the server drops the subscription") { try redis.cli("PUBSUB", "NUMSUB", "news").hasSuffix("0") }
        try redis.cli("PUBLISH", "news", "three")
        try await Task.sleep(for: .milliseconds(200))
        #expect(!probe.received("three"))
    }

    @Test func manyChangesInOneTurnBecomeOneCommand() async throws {
        let redis = try await RedisServer.start()
        let probe = SubscriberProbe()
        let subscriber = try start(redis, probe: probe)
        defer { Task { await subscriber.shutdown() } }
        try await eventually("connected") { subscriber.isConnected }
        let before = Int(try redis.cli("INFO", "commandstats").split(separator: "\n")
            .first { $0.hasPrefix("cmdstat_subscribe:") }?.split(separator: "=")[1].split(separator: ",")[0] ?? "0") ?? 0
        loop.execute { for index in 0..<300 { subscriber.subscribe("c\(index)") } }
        try await subscriber.waitUntilSubscribed("c299")
        let after = try redis.cli("INFO", "commandstats")
        #expect(after.contains("cmdstat_subscribe:calls=\(before + 1),"), "\(after)")
    }

    @Test func resubscribesEverythingAfterTheConnectionIsKilled() async throws {
        let redis = try await RedisServer.start()
        let probe = SubscriberProbe()
        let subscriber = try start(redis, probe: probe)
        defer { Task { await subscriber.shutdown() } }
        for channel in ["a", "b", "c"] { subscriber.subscribe(channel) }
        try await subscriber.waitUntilSubscribed("c")
        try redis.cli("CLIENT", "KILL", "TYPE", "pubsub")
        try await eventually("it reconnects") { probe.connects.withLockedValue { $0 } == [false, true] }
        // The drop and the reconnect name what the connection carries: the broker holds and
        // catches up exactly those channels' users.
        #expect(probe.disconnectedChannels.withLockedValue { $0 } == [["a", "b", "c"]])
        #expect(probe.connectedChannels.withLockedValue { $0 }.last == ["a", "b", "c"])
        #expect(subscriber.isConnected(channel: "b"))
        for channel in ["a", "b", "c"] { try await subscriber.waitUntilSubscribed(channel) }
        try redis.cli("PUBLISH", "b", "after-kill")
        try await eventually("messages flow again") { probe.received("after-kill") }
    }

    @Test func noticesAServerThatStopsAnsweringAndComesBack() async throws {
        let redis = try await RedisServer.start()
        let probe = SubscriberProbe()
        let subscriber = try start(redis, probe: probe)
        defer { Task { await subscriber.shutdown() } }
        subscriber.subscribe("x")
        try await subscriber.waitUntilSubscribed("x")
        redis.pause()
        let stopped = ContinuousClock.now
        try await eventually(timeout: .seconds(5), "the liveness probe notices") { probe.disconnects.withLockedValue { $0 } >= 1 }
        #expect(ContinuousClock.now - stopped < .seconds(3))
        redis.resume()
        try await subscriber.waitUntilSubscribed("x", timeout: .seconds(10))
        try redis.cli("PUBLISH", "x", "back")
        try await eventually("messages flow again") { probe.received("back") }
    }

    @Test func survivesARedisRestart() async throws {
        let redis = try await RedisServer.start()
        let probe = SubscriberProbe()
        let subscriber = try start(redis, probe: probe)
        defer { Task { await subscriber.shutdown() } }
        subscriber.subscribe("y")
        try await subscriber.waitUntilSubscribed("y")
        await redis.kill()
        try await eventually("the drop is noticed") { probe.disconnects.withLockedValue { $0 } >= 1 }
        try await Task.sleep(for: .milliseconds(500))
        try await redis.restart()
        try await subscriber.waitUntilSubscribed("y", timeout: .seconds(10))
        try redis.cli("PUBLISH", "y", "reborn")
        try await eventually("messages flow again") { probe.received("reborn") }
    }
}
