import Foundation
import Testing
import TickwireProtocol

/// Two gateways, a feed, one Redis: PROTOCOL.md section 10 end to end.
@Suite(.timeLimit(.minutes(2)))
struct Cluster {
    func gateway(_ redis: RedisServer, _ extra: [String] = []) async throws -> TestServer {
        try await TestServer.start(["--redis-url", redis.url, "--price-interval", "0.2"] + extra)
    }

    func subscribeNotifications(_ socket: TestWebSocket, user: String, since: String? = nil) async throws -> Event {
        let sinceField = since.map { #","since":"\#($0)""# } ?? ""
        try await socket.send(#"{"action":"subscribe","channel":"notifications","user_id":"\#(user)"\#(sinceField)}"#)
        return try await socket.expectEvent("subscribed")
    }

    @Test func pricesTheFeedPublishesReachClientsOnEveryGateway() async throws {
        let redis = try await RedisServer.start()
        let a = try await gateway(redis)
        let b = try await gateway(redis)
        let feed = try TestProcess.feed(redisURL: redis.url)
        _ = feed
        for server in [a, b] {
            try await eventually(timeout: .seconds(15), "\(server.port) is ready") {
                try await server.http("GET", "/readyz").status == 200
            }
            let socket = try await server.connectReady()
            try await socket.send(#"{"action":"subscribe","channel":"prices","symbols":["BTC","ETH"]}"#)
            let update = try await socket.expectEvent("price_update", timeout: .seconds(10))
            #expect(update.data["source"] == "simulated")
            #expect(update.data["published_us"] == nil, "the broker's publish stamp stays server-side")
        }
        #expect(try redis.cli("HLEN", "prices:latest") == "20")
        #expect(try await a.metric(#"tickwire_broker_lag_seconds_count{broker="redis"}"#) ?? 0 > 0)
    }

    @Test func aGatewayStartedLaterServesTheLatestPricesAtOnce() async throws {
        let redis = try await RedisServer.start()
        let feed = try TestProcess.feed(redisURL: redis.url, interval: "60")
        _ = feed
        try await eventually("the feed published every symbol") { try redis.cli("HLEN", "prices:latest") == "20" }
        let late = try await gateway(redis, ["--price-interval", "60"])
        try await eventually("ready") { try await late.http("GET", "/readyz").status == 200 }
        let socket = try await late.connectReady()
        try await socket.send(#"{"action":"subscribe","channel":"prices","symbols":["BTC","SOL"]}"#)
        let batch = try await socket.expectEvent("price_batch")
        #expect(batch.data["prices"]?.arrayValue?.count == 2)
    }

    @Test func notificationsReachTheUsersClientsOnEveryGatewayAndNoOneElse() async throws {
        let redis = try await RedisServer.start()
        let a = try await gateway(redis)
        let b = try await gateway(redis)
        let aliceOnA = try await a.connectReady(user: "alice")
        let aliceOnB = try await b.connectReady(user: "alice")
        let bobOnB = try await b.connectReady(user: "bob")
        for (socket, user) in [(aliceOnA, "alice"), (aliceOnB, "alice"), (bobOnB, "bob")] {
            _ = try await subscribeNotifications(socket, user: user)
        }
        let viaHTTP = try await b.publish(user: "alice")
        let cli = try TestProcess.launch([
            "publish", "--redis-url", redis.url, "--user", "alice", "--event", "balance_update",
            "--data", #"{"wallet_id":"w","balance":"2.5","balance_usd":"200.00","symbol":"ETH"}"#,
        ])
        #expect(try await cli.waitForExit(timeout: .seconds(10)) == 0)
        let viaRedis = cli.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(StreamID(viaRedis) != nil)
        for socket in [aliceOnA, aliceOnB] {
            #expect(try await socket.expectEvent("notification").id == viaHTTP)
            let balance = try await socket.expectEvent("balance_update")
            #expect(balance.id == viaRedis && balance.data["balance"] == "2.5")
        }
        let bobs = try await a.publish(user: "bob")
        #expect(try await bobOnB.nextEvent().id == bobs, "bob's first notification is his own")
        #expect(redis.isRunning)
    }

    @Test func gatewaysFollowOnlyTheUserChannelsTheirClientsNeed() async throws {
        let redis = try await RedisServer.start()
        let a = try await gateway(redis)
        let socket = try await a.connectReady(user: "carol")
        try await eventually("price channels only") { try redis.cli("PUBSUB", "NUMSUB", "notifications:carol").hasSuffix("0") }
        _ = try await subscribeNotifications(socket, user: "carol")
        try await eventually("carol's channel is followed") { try redis.cli("PUBSUB", "NUMSUB", "notifications:carol").hasSuffix("1") }
        _ = try await socket.close()
        try await eventually("and dropped when she leaves") { try redis.cli("PUBSUB", "NUMSUB", "notifications:carol").hasSuffix("0") }
    }

    @Test func replayWithSinceWorksAcrossGateways() async throws {
        let redis = try await RedisServer.start()
        let a = try await gateway(redis)
        let b = try await gateway(redis)
        var ids: [String] = []
        for index in 0..<4 { ids.append(try await a.publish(user: "dave", data: .notification("d\(index)"))) }
        let socket = try await b.connectReady(user: "dave")
        let subscribed = try await subscribeNotifications(socket, user: "dave", since: ids[0])
        #expect(subscribed.data["recovered"] == true)
        var replayed: [String] = []
        for _ in 0..<3 { replayed.append(try await socket.expectEvent("notification").id ?? "") }
        #expect(replayed == Array(ids[1...]))
        #expect(try redis.cli("XLEN", "notifications:stream:dave") == "4")
        #expect(Int(try redis.cli("PTTL", "notifications:stream:dave")) ?? 0 > 600_000_000, "kept about 7 days")
    }

    @Test func replayJoinsLiveWithNoGapAndNoDuplicateAcrossGateways() async throws {
        let redis = try await RedisServer.start()
        let a = try await gateway(redis)
        let b = try await gateway(redis)
        let first = try await a.publish(user: "erin")
        let publisher = Task {
            var ids: [String] = []
            for index in 0..<150 { ids.append(try await a.publish(user: "erin", data: .notification("e\(index)"))) }
            return ids
        }
        try await Task.sleep(for: .milliseconds(40))
        let socket = try await b.connectReady(user: "erin")
        _ = try await subscribeNotifications(socket, user: "erin", since: first)
        let published = try await publisher.value
        var received: [String] = []
        while received.last != published.last { received.append(try await socket.expectEvent("notification").id ?? "") }
        #expect(received == published)
    }

    @Test func sinceOlderThanTheCapIsNotRecovered() async throws {
        let redis = try await RedisServer.start()
        let a = try await gateway(redis, ["--notification-capacity", "3"])
        var ids: [String] = []
        for index in 0..<6 { ids.append(try await a.publish(user: "fay", data: .notification("f\(index)"))) }
        let socket = try await a.connectReady(user: "fay")
        #expect(try await subscribeNotifications(socket, user: "fay", since: ids[1]).data["recovered"] == false)
        var replayed: [String] = []
        for _ in 0..<3 { replayed.append(try await socket.expectEvent("notification").id ?? "") }
        #expect(replayed == Array(ids[3...]))
        #expect(try redis.cli("XINFO", "STREAM", "notifications:stream:fay").contains(ids[2]), "the newest trimmed id is recorded")
        let fresh = try await a.connectReady(user: "fay")
        #expect(try await subscribeNotifications(fresh, user: "fay", since: ids[2]).data["recovered"] == true)
    }

    @Test func eventsOlderThanTheRetentionAreTrimmedAndReportedAsNotRecovered() async throws {
        let redis = try await RedisServer.start()
        // 3 s: the newest event must outlive the connect and the replay on a loaded machine (1 s did not).
        let a = try await gateway(redis, ["--notification-ttl", "3"])
        let first = try await a.publish(user: "lee", data: .notification("l1"))
        _ = try await a.publish(user: "lee", data: .notification("l2"))
        try await Task.sleep(for: .milliseconds(3200))
        let third = try await a.publish(user: "lee", data: .notification("l3"))
        #expect(try redis.cli("XLEN", "notifications:stream:lee") == "1")
        let socket = try await a.connectReady(user: "lee")
        #expect(try await subscribeNotifications(socket, user: "lee", since: first).data["recovered"] == false)
        #expect(try await socket.expectEvent("notification").id == third)
    }

    @Test func malformedBrokerPayloadsAreDroppedAndCounted() async throws {
        let redis = try await RedisServer.start()
        let a = try await gateway(redis)
        let socket = try await a.connectReady(user: "max")
        try await socket.send(#"{"action":"subscribe","channel":"prices","symbols":["BTC"]}"#)
        try await socket.send(#"{"action":"subscribe","channel":"notifications","user_id":"max"}"#)
        _ = try await socket.expectEvent("subscribed")
        try await eventually("followed") { try redis.cli("PUBSUB", "NUMSUB", "notifications:max").hasSuffix("1") }
        try redis.cli("PUBLISH", "prices:BTC", "{not json")
        try redis.cli("PUBLISH", "prices:BTC", #"{"symbol":"BTC","price_usd":12}"#)
        try redis.cli("PUBLISH", "notifications:max", #"{"id":"x","event":"notification","data":{}}"#)
        try await eventually("counted") { try await a.metric(#"tickwire_broker_dropped_messages_total{broker="redis"}"#) == 3 }
        try redis.cli("PUBLISH", "prices:BTC", #"{"symbol":"BTC","price_usd":"123.45","price_change_24h":"1.0"}"#)
        let update = try await socket.expectEvent("price_update")
        #expect(update.data["price_usd"] == "123.45", "a valid price after the bad ones still arrives")
    }

    @Test func aPrefixNamespacesEveryKeyAndChannel() async throws {
        let redis = try await RedisServer.start()
        let a = try await gateway(redis, ["--redis-prefix", "staging:"])
        let socket = try await a.connectReady(user: "gus")
        _ = try await subscribeNotifications(socket, user: "gus")
        let id = try await a.publish(user: "gus")
        #expect(try await socket.expectEvent("notification").id == id)
        #expect(try redis.cli("EXISTS", "staging:notifications:stream:gus") == "1")
        #expect(try redis.cli("EXISTS", "notifications:stream:gus") == "0")
    }

    @Test func theStandbyFeedTakesOverWhenTheLeaderDies() async throws {
        let redis = try await RedisServer.start()
        let a = try await gateway(redis)
        let first = try TestProcess.feed(redisURL: redis.url)
        try await eventually("the first feed leads") { first.isLeader }
        let second = try TestProcess.feed(redisURL: redis.url)
        try await eventually("the second stands by") { second.stderr.contains("standing by") }
        try await Task.sleep(for: .seconds(1))
        #expect(!second.isLeader)
        first.signal(SIGKILL)
        let killedAt = ContinuousClock.now
        try await eventually(timeout: .seconds(10), "the standby takes over") { second.isLeader }
        #expect(ContinuousClock.now - killedAt < .seconds(10))
        let socket = try await a.connectReady()
        try await socket.send(#"{"action":"subscribe","channel":"prices","symbols":["BTC"]}"#)
        _ = try await socket.expectEvent("price_batch")
        _ = try await socket.expectEvent("price_update", timeout: .seconds(5))
    }

    @Test func aLeaderShuttingDownHandsOverAtOnce() async throws {
        let redis = try await RedisServer.start()
        let first = try TestProcess.feed(redisURL: redis.url, extra: ["--leader-ttl", "30"])
        try await eventually("the first feed leads") { first.isLeader }
        let second = try TestProcess.feed(redisURL: redis.url, extra: ["--leader-ttl", "30"])
        try await eventually("the second stands by") { second.stderr.contains("standing by") }
        first.signal(SIGTERM)
        #expect(try await first.waitForExit(timeout: .seconds(10)) == 0)
        let stoppedAt = ContinuousClock.now
        try await eventually(timeout: .seconds(5), "the standby takes over without waiting 30 s") { second.isLeader }
        #expect(ContinuousClock.now - stoppedAt < .seconds(3))
    }
}

/// Redis failing in every way a deployment sees: never there, killed, frozen, connections cut.
@Suite(.timeLimit(.minutes(2)))
struct RedisFaults {
    @Test func aGatewayStartsWithoutRedisAndCatchesUpWhenItArrives() async throws {
        let port = try FreePort.find()
        let url = "redis://127.0.0.1:\(port)"
        let a = try await TestServer.start(["--redis-url", url, "--price-interval", "0.2"])
        #expect(try await a.http("GET", "/readyz").status == 503)
        #expect(try await a.http("GET", "/healthz").status == 200)
        let socket = try await a.connectReady()
        try await socket.send(#"{"action":"subscribe","channel":"prices","symbols":["BTC"]}"#)
        _ = try await socket.expectEvent("subscribed")
        let redis = try await RedisServer.start(port: port)
        let feed = try TestProcess.feed(redisURL: url)
        _ = (redis, feed)
        try await eventually(timeout: .seconds(15), "ready once Redis is up") { try await a.http("GET", "/readyz").status == 200 }
        _ = try await socket.expectEvent("price_update", timeout: .seconds(10))
    }

    @Test func redisKilledMidStreamClientsStayAndStoredNotificationsSurviveWithAOF() async throws {
        let redis = try await RedisServer.start(appendOnly: true)
        let a = try await TestServer.start(["--redis-url", redis.url, "--price-interval", "0.2"])
        let feed = try TestProcess.feed(redisURL: redis.url)
        _ = feed
        let socket = try await a.connectReady(user: "hal")
        try await socket.send(#"{"action":"subscribe","channel":"prices","symbols":["BTC"]}"#)
        try await socket.send(#"{"action":"subscribe","channel":"notifications","user_id":"hal"}"#)
        _ = try await socket.expectEvent("price_update", timeout: .seconds(10))
        let before = [try await a.publish(user: "hal", data: .notification("h1")), try await a.publish(user: "hal", data: .notification("h2"))]
        for id in before { #expect(try await socket.expectEvent("notification").id == id) }

        await redis.kill()
        try await eventually(timeout: .seconds(5), "readiness follows Redis down") { try await a.http("GET", "/readyz").status == 503 }
        try await socket.send(#"{"action":"ping"}"#)
        _ = try await socket.expectEvent("pong")

        try await redis.restart()
        try await eventually(timeout: .seconds(15), "readiness follows Redis back") { try await a.http("GET", "/readyz").status == 200 }
        _ = try await socket.expectEvent("price_update", timeout: .seconds(10))
        let after = try await a.publish(user: "hal", data: .notification("h3"))
        #expect(try await socket.expectEvent("notification").id == after, "live notifications flow again")

        let reconnected = try await a.connectReady(user: "hal")
        try await reconnected.send(#"{"action":"subscribe","channel":"notifications","user_id":"hal","since":"\#(before[0])"}"#)
        #expect(try await reconnected.expectEvent("subscribed").data["recovered"] == true)
        #expect(try await reconnected.expectEvent("notification").id == before[1])
        #expect(try await reconnected.expectEvent("notification").id == after)
        #expect(try await a.metric(#"tickwire_broker_reconnects_total{broker="redis"}"#) ?? 0 >= 1)
    }

    @Test func aStreamLostWithRedisIsReportedAsNotRecovered() async throws {
        let redis = try await RedisServer.start(appendOnly: false)
        let a = try await TestServer.start(["--redis-url", redis.url])
        let id = try await a.publish(user: "ivy")
        await redis.kill()
        try await redis.restart()
        try await eventually(timeout: .seconds(15), "ready again") { try await a.http("GET", "/readyz").status == 200 }
        let socket = try await a.connectReady(user: "ivy")
        try await socket.send(#"{"action":"subscribe","channel":"notifications","user_id":"ivy","since":"\#(id)"}"#)
        #expect(try await socket.expectEvent("subscribed").data["recovered"] == false)
    }

    @Test func aFrozenRedisIsNoticedByTheLivenessProbe() async throws {
        let redis = try await RedisServer.start()
        let a = try await TestServer.start(["--redis-url", redis.url])
        try await eventually(timeout: .seconds(15), "ready") { try await a.http("GET", "/readyz").status == 200 }
        redis.pause()
        let frozen = ContinuousClock.now
        try await eventually(timeout: .seconds(8), "not ready while Redis is frozen") { try await a.http("GET", "/readyz").status == 503 }
        #expect(ContinuousClock.now - frozen < .seconds(5))
        redis.resume()
        try await eventually(timeout: .seconds(15), "ready again") { try await a.http("GET", "/readyz").status == 200 }
    }

    /// The subscriber connections are cut while notifications are being published: every
    /// event still reaches the client exactly once, in order (caught up from the stream).
    @Test func nothingIsLostWhenTheSubscriberConnectionIsCut() async throws {
        let redis = try await RedisServer.start()
        let a = try await TestServer.start(["--redis-url", redis.url])
        let b = try await TestServer.start(["--redis-url", redis.url])
        let socket = try await a.connectReady(user: "jay")
        try await socket.send(#"{"action":"subscribe","channel":"notifications","user_id":"jay"}"#)
        _ = try await socket.expectEvent("subscribed")
        try await eventually("followed") { try redis.cli("PUBSUB", "NUMSUB", "notifications:jay").hasSuffix("1") }
        let publisher = Task {
            var ids: [String] = []
            for index in 0..<120 { ids.append(try await b.publish(user: "jay", data: .notification("j\(index)"))) }
            return ids
        }
        for _ in 0..<3 {
            try await Task.sleep(for: .milliseconds(60))
            try redis.cli("CLIENT", "KILL", "TYPE", "pubsub")
        }
        let published = try await publisher.value
        var received: [String] = []
        while received.last != published.last { received.append(try await socket.expectEvent("notification", timeout: .seconds(10)).id ?? "") }
        #expect(received == published)
        #expect(try await a.metric(#"tickwire_broker_reconnects_total{broker="redis"}"#) ?? 0 >= 1)
    }

    @Test func publishingWhileRedisIsDownIsAClearError() async throws {
        let redis = try await RedisServer.start()
        let a = try await TestServer.start(["--redis-url", redis.url])
        await redis.kill()
        let body = #"{"user_id":"kim","event":"notification","data":\#(JSONText.sampleNotification.text)}"#
        let result = try await a.http("POST", "/api/v1/publish", headers: [("Authorization", "Bearer \(TestServer.apiKey)")], body: body)
        #expect(result.status == 503)
        let cli = try TestProcess.launch([
            "publish", "--redis-url", redis.url, "--user", "kim", "--event", "notification", "--data", JSONText.sampleNotification.text,
        ])
        #expect(try await cli.waitForExit(timeout: .seconds(10)) == 1)
        #expect(cli.stderr.hasPrefix("tickwire: error: could not publish"))
    }
}
