import Foundation
import Synchronization
import Testing
import TickwireProtocol

/// Gateways and a feed behind Sentinel: a master, two replicas and three sentinels, all real.
@Suite(.timeLimit(.minutes(3)))
struct Sentinel {
    /// Publishes `count` notifications to `user` one after another through `server`, retrying each
    /// until it is acknowledged; returns the acknowledged ids and how many attempts were refused.
    func publishAll(_ count: Int, to user: String, through server: TestServer, progress: Counter? = nil) async throws
        -> (ids: [String], refused: Int)
    {
        var ids: [String] = []
        var refused = 0
        for index in 0..<count {
            while true {
                if let id = try? await server.publish(user: user, data: .notification("n\(index)")) {
                    ids.append(id)
                    progress?.increment()
                    break
                }
                refused += 1
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        return (ids, refused)
    }

    @Test func gatewaysFollowAFailoverAndEveryAcknowledgedNotificationArrivesOnce() async throws {
        let group = try await RedisSentinelGroup.start()
        let options = ["--redis-url", group.url, "--redis-wait", "1", "--notification-capacity", "5000", "--price-interval", "0.2"]
        let a = try await TestServer.start(options)
        let b = try await TestServer.start(options)
        let feed = try TestProcess.feed(redisURL: group.url)
        try await eventually(timeout: .seconds(15), "the feed leads") { feed.isLeader }
        for server in [a, b] {
            try await eventually(timeout: .seconds(15), "ready") { try await server.http("GET", "/readyz").status == 200 }
        }
        let socket = try await a.connectReady(user: "ivy")
        try await socket.send(#"{"action":"subscribe","channel":"notifications","user_id":"ivy"}"#)
        _ = try await socket.expectEvent("subscribed")
        try await socket.send(#"{"action":"subscribe","channel":"prices","symbols":["BTC"]}"#)

        // Readiness of gateway A, sampled all along.
        let readiness = Task {
            var seen: [Int] = []
            while !Task.isCancelled {
                let status = (try? await a.http("GET", "/readyz").status) ?? 0
                if seen.last != status { seen.append(status) }
                try? await Task.sleep(for: .milliseconds(50))
            }
            return seen
        }
        let progress = Counter()
        let publisher = Task { try await publishAll(1000, to: "ivy", through: b, progress: progress) }
        try await eventually(timeout: .seconds(30), "a third published") { progress.value >= 300 }
        let killedAt = ContinuousClock.now
        await group.master.kill()
        try await eventually(timeout: .seconds(30), "a publish acknowledged after the kill") { progress.value >= 310 }
        let followedIn = ContinuousClock.now - killedAt
        let (acknowledged, refused) = try await publisher.value

        // Every acknowledged notification reaches the client once, in order; nothing reaches it twice.
        var received: [String] = []
        var seen = Set<String>()
        let wanted = Set(acknowledged)
        while !wanted.isSubset(of: seen) {
            let event = try await socket.nextEvent(timeout: .seconds(15))
            guard event.name == "notification", let id = event.id else { continue }
            #expect(seen.insert(id).inserted, "\(id) arrived twice")
            received.append(id)
        }
        #expect(received.filter(wanted.contains) == acknowledged)
        let promoted = try #require(try group.currentMaster())
        #expect(promoted.port != group.master.port)

        // And each one is replayable from the new master.
        let late = try await a.connectReady(user: "ivy")
        try await late.send(#"{"action":"subscribe","channel":"notifications","user_id":"ivy","since":"\#(acknowledged[0])"}"#)
        #expect(try await late.expectEvent("subscribed").data["recovered"] == true)
        var replayed = Set<String>()
        while !Set(acknowledged.dropFirst()).isSubset(of: replayed) {
            replayed.insert(try await late.expectEvent("notification", timeout: .seconds(10)).id ?? "")
        }

        // Prices keep flowing: the feed's leader lock and publishes moved to the new master too.
        let afterFailover = Timestamp.now()
        try await eventually(timeout: .seconds(20), "a price published after the failover") {
            let event = try await socket.nextEvent(timeout: .seconds(5))
            return event.name == "price_update" && event.sentAt > afterFailover
        }
        try await eventually(timeout: .seconds(10), "A ready again") { try await a.http("GET", "/readyz").status == 200 }
        readiness.cancel()
        let statuses = await readiness.value
        #expect(statuses.first == 200 && statuses.contains(503) && statuses.last == 200, "readyz: \(statuses)")
        #expect(try await a.metric(#"tickwire_broker_reconnects_total{broker="redis"}"#) ?? 0 >= 1)
        print("sentinel: publishes acknowledged again \(followedIn) after the master was killed; \(acknowledged.count) acknowledged, \(refused) refused attempts, \(received.count - acknowledged.count) unacknowledged also delivered; readyz \(statuses)")
    }

    @Test func aBadSentinelURLIsOneLineAndExitCodeNonZero() async throws {
        let process = try TestProcess.launch(["serve", "--redis-url", "redis+sentinel://127.0.0.1:26379"])
        #expect(try await process.waitForExit(timeout: .seconds(10)) != 0)
        #expect(process.stderr.contains("a sentinel URL names the master"))
        let wait = try TestProcess.launch(["serve", "--redis-wait", "1"])
        #expect(try await wait.waitForExit(timeout: .seconds(10)) != 0)
        #expect(wait.stderr.contains("--redis-wait needs --redis-url"))
    }
}

/// A thread-safe count a test polls.
final class Counter: Sendable {
    private let count = Mutex(0)
    func increment() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
