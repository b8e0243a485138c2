import Foundation
import RESP
import Testing
import TickwireProtocol

/// Gateways and a feed on a Redis Cluster: three masters, three replicas, sharded Pub/Sub.
@Suite(.timeLimit(.minutes(3)))
struct RedisClusterMode {
    /// Users whose keys sit on different shards: three per master.
    func usersOnEveryShard(_ cluster: RedisClusterNodes, perShard: Int = 2) throws -> [String] {
        var byMaster: [Int: [String]] = [:]
        var index = 0
        while byMaster.count < 3 || byMaster.values.contains(where: { $0.count < perShard }) {
            let user = "user\(index)"
            index += 1
            guard let owner = try cluster.owner(ofSlot: RedisClusterSlot.of("{\(user)}")) else { continue }
            if byMaster[owner.port, default: []].count < perShard { byMaster[owner.port, default: []].append(user) }
        }
        return byMaster.values.flatMap { $0 }.sorted()
    }

    /// Once both gateways are ready: a client on the first for each of `usersOnEveryShard`,
    /// subscribed to its user's notifications.
    func followUsersOnEveryShard(_ cluster: RedisClusterNodes, gateways: [TestServer]) async throws
        -> (users: [String], sockets: [String: TestWebSocket])
    {
        for server in gateways {
            try await eventually(timeout: .seconds(15), "ready") { try await server.http("GET", "/readyz").status == 200 }
        }
        let users = try usersOnEveryShard(cluster)
        var sockets: [String: TestWebSocket] = [:]
        for user in users {
            let socket = try await gateways[0].connectReady(user: user)
            try await socket.send(#"{"action":"subscribe","channel":"notifications","user_id":"\#(user)"}"#)
            _ = try await socket.expectEvent("subscribed")
            sockets[user] = socket
        }
        return (users, sockets)
    }

    @Test func pricesAndNotificationsReachUsersOnEveryShard() async throws {
        let cluster = try await RedisClusterNodes.start()
        let options = ["--redis-url", cluster.url, "--price-interval", "0.2"]
        let a = try await TestServer.start(options)
        let b = try await TestServer.start(options)
        let feed = try TestProcess.feed(redisURL: cluster.url)
        try await eventually(timeout: .seconds(15), "the feed leads") { feed.isLeader }
        let (users, sockets) = try await followUsersOnEveryShard(cluster, gateways: [a, b])
        for user in users {
            let id = try await b.publish(user: user, data: .notification("to-\(user)"))
            #expect(try await sockets[user]!.expectEvent("notification").id == id)
            let owner = try #require(try cluster.owner(ofSlot: RedisClusterSlot.of("{\(user)}")))
            #expect(try owner.cli("XLEN", "notifications:stream:{\(user)}") == "1", "the stream lives on the user's shard")
            #expect(try owner.cli("PUBSUB", "SHARDNUMSUB", "notifications:{\(user)}").hasSuffix("1"))
        }
        // Prices: every symbol's latest in its own key on its shard, channels sharded.
        try await eventually("every symbol published") {
            try ["BTC", "ETH", "SOL"].allSatisfy { symbol in
                try cluster.owner(ofSlot: RedisClusterSlot.of("{\(symbol)}"))?.cli("EXISTS", "prices:latest:{\(symbol)}") == "1"
            }
        }
        let prices = try await b.connectReady(user: "watcher")
        try await prices.send(#"{"action":"subscribe","channel":"prices","symbols":["BTC","ETH","SOL"]}"#)
        #expect(try await prices.expectEvent("price_batch").data["prices"]?.arrayValue?.count == 3)
        _ = try await prices.expectEvent("price_update", timeout: .seconds(10))
        // A gateway started now fills its snapshot from the per-symbol keys, one round trip per shard.
        let late = try await TestServer.start(options + ["--price-interval", "60"])
        try await eventually(timeout: .seconds(15), "ready") { try await late.http("GET", "/readyz").status == 200 }
        let snapshot = try await late.http("GET", "/api/v1/prices")
        #expect((snapshot.json?["prices"]?.arrayValue?.count ?? 0) == 20)
    }

    @Test func aMasterKilledAndASlotMigratedWhilePublishingLoseNothing() async throws {
        let cluster = try await RedisClusterNodes.start()
        let options = ["--redis-url", cluster.url, "--redis-wait", "1", "--notification-capacity", "5000"]
        let a = try await TestServer.start(options)
        let b = try await TestServer.start(options)
        let (users, sockets) = try await followUsersOnEveryShard(cluster, gateways: [a, b])
        let victim = try #require(try cluster.owner(ofSlot: RedisClusterSlot.of("{\(users[0])}")))
        let migrating = try #require(users.first { (try? cluster.owner(ofSlot: RedisClusterSlot.of("{\($0)}")))?.port != victim.port })
        let progress = Counter()
        let publisher = Task { () -> (acknowledged: [String: [String]], refused: Int) in
            var acknowledged: [String: [String]] = [:]
            var refused = 0
            for index in 0..<600 {
                let user = users[index % users.count]
                while true {
                    if let id = try? await b.publish(user: user, data: .notification("n\(index)")) {
                        acknowledged[user, default: []].append(id)
                        progress.increment()
                        break
                    }
                    refused += 1
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            return (acknowledged, refused)
        }
        try await eventually(timeout: .seconds(60), "150 published") { progress.value >= 150 }
        let killedAt = ContinuousClock.now
        await victim.kill()
        // Its replica takes over; with --redis-wait 1 that shard publishes again once it has a
        // replica itself: the killed node, restarted, rejoins as one (as an operator would do).
        try await eventually(timeout: .seconds(30), "the replica is promoted") {
            try cluster.owner(ofSlot: RedisClusterSlot.of("{\(users[0])}")).map { $0.port != victim.port } ?? false
        }
        try await victim.restart()
        try await eventually(timeout: .seconds(30), "publishing to every shard again") { progress.value >= 170 }
        let recovered = ContinuousClock.now - killedAt
        try await eventually(timeout: .seconds(30), "350 published") { progress.value >= 350 }
        let slot = RedisClusterSlot.of("{\(migrating)}")
        let source = try #require(try cluster.owner(ofSlot: slot))
        let destination = try #require(try cluster.masters().first { $0.port != source.port })
        try await cluster.migrate(slot: slot, to: destination)
        let (acknowledged, refused) = try await publisher.value

        for user in users {
            let expected = acknowledged[user] ?? []
            var received: [String] = []
            var seen = Set<String>()
            while !Set(expected).isSubset(of: seen) {
                let event = try await sockets[user]!.nextEvent(timeout: .seconds(15))
                guard event.name == "notification", let id = event.id else { continue }
                #expect(seen.insert(id).inserted, "\(user): \(id) arrived twice")
                received.append(id)
            }
            #expect(received.filter(Set(expected).contains) == expected, "\(user): in order")
        }
        #expect(try cluster.owner(ofSlot: slot)?.port == destination.port)
        #expect(try await a.http("GET", "/readyz").status == 200)
        print("cluster: publishes to every shard again \(recovered) after a master was killed; 600 acknowledged over \(users.count) users, \(refused) refused attempts; slot \(slot) migrated while publishing")
    }

    @Test func aShardsSubscriberCutCatchesUpOnlyThatShardsUsersAndLosesNothing() async throws {
        let cluster = try await RedisClusterNodes.start()
        let a = try await TestServer.start(["--redis-url", cluster.url])
        let (users, sockets) = try await followUsersOnEveryShard(cluster, gateways: [a])
        for user in users {
            let id = try await a.publish(user: user, data: .notification("before-\(user)"))
            #expect(try await sockets[user]!.expectEvent("notification").id == id, "\(user)")
        }
        let masters = try cluster.masters()
        // A catch-up reads the user's stream (it exists now) with the replay script, the one caller of XINFO STREAM.
        func streamReads(_ node: RedisServer) throws -> Int {
            let stats = try node.cli("INFO", "commandstats")
            // INFO ends its lines with CRLF, one Character in Swift.
            let line = stats.split(whereSeparator: \.isNewline).first { $0.hasPrefix("cmdstat_xinfo|stream:") }
            return line.flatMap { Int($0.split(separator: "=")[1].split(separator: ",")[0]) } ?? 0
        }
        let before = try masters.map(streamReads)
        let victim = try #require(try cluster.owner(ofSlot: RedisClusterSlot.of("{\(users[0])}")))
        let onVictim = try users.filter { try cluster.owner(ofSlot: RedisClusterSlot.of("{\($0)}"))?.port == victim.port }
        let victimIndex = try #require(masters.firstIndex { $0.port == victim.port })

        // Cut the gateway's subscriber connection to one master (the node stays up).
        #expect(try victim.killClients(named: "tickwire-subscriber") == 1)
        try await eventually(timeout: .seconds(15), "that shard's users caught up") {
            try streamReads(victim) >= before[victimIndex] + onVictim.count
        }
        // Every user still gets what is published now, and only the cut shard's streams were read.
        for user in users {
            let id = try await a.publish(user: user, data: .notification("after-cut-\(user)"))
            #expect(try await sockets[user]!.expectEvent("notification").id == id, "\(user)")
        }
        for (index, master) in masters.enumerated() where index != victimIndex {
            #expect(try streamReads(master) == before[index], "no catch-up on the master at \(master.port): its subscriber never dropped")
        }
    }

    @Test func aBadClusterURLIsOneLine() async throws {
        let process = try TestProcess.launch(["serve", "--redis-url", "redis+cluster://127.0.0.1:7000/1"])
        #expect(try await process.waitForExit(timeout: .seconds(10)) != 0)
        #expect(process.stderr.contains("a cluster has no databases"))
    }
}
