import Foundation
import Synchronization
import NIOConcurrencyHelpers
import Testing
import TickwireProtocol

/// Broken networks, through `ChaosProxy`: between a gateway and Redis, and between a client and a
/// gateway. Each scenario states its outcome exactly (docs/RELIABILITY.md lists them).
@Suite(.timeLimit(.minutes(2)))
struct Chaos {
    /// Gateway A reaches Redis through `proxy`; gateway B directly, and publishes.
    struct TwoGateways {
        let redis: RedisServer
        let proxy: ChaosProxy
        let a: TestServer
        let b: TestServer

        static func start() async throws -> TwoGateways {
            let redis = try await RedisServer.start()
            let proxy = try await ChaosProxy.start(upstreamPort: redis.port)
            let a = try await TestServer.start(["--redis-url", "redis://127.0.0.1:\(proxy.port)", "--feed", "none"])
            let b = try await TestServer.start(["--redis-url", redis.url, "--feed", "none"])
            for server in [a, b] {
                try await eventually(timeout: .seconds(15), "ready") { try await server.http("GET", "/readyz").status == 200 }
            }
            return TwoGateways(redis: redis, proxy: proxy, a: a, b: b)
        }

        /// A client of each user on gateway A, following the user's notifications.
        func followers(_ users: [String]) async throws -> [String: TestWebSocket] {
            var sockets: [String: TestWebSocket] = [:]
            for user in users {
                let socket = try await a.connectReady(user: user)
                try await socket.send(#"{"action":"subscribe","channel":"notifications","user_id":"\#(user)"}"#)
                _ = try await socket.expectEvent("subscribed")
                sockets[user] = socket
            }
            return sockets
        }
    }

    /// The ids of published notifications, per user, in the order the API acknowledged them.
    final class Published: Sendable {
        private let ids = NIOLockedValueBox([String: [String]]())
        func add(_ id: String, for user: String) { ids.withLockedValue { $0[user, default: []].append(id) } }
        var byUser: [String: [String]] { ids.withLockedValue { $0 } }
        var count: Int { ids.withLockedValue { $0.values.reduce(0) { $0 + $1.count } } }
    }

    /// Reads `socket` until it has `expected.count` notifications (or `deadline` passes), and
    /// returns their ids in arrival order.
    func receivedIDs(
        _ socket: TestWebSocket, expected: [String], deadline: ContinuousClock.Instant = .now + .seconds(30)
    ) async throws -> [String] {
        var received: [String] = []
        while received.count < expected.count, ContinuousClock.now < deadline {
            guard let event = try? await socket.nextEvent(timeout: .seconds(5)) else { continue }
            if event.name == "notification", let id = event.id { received.append(id) }
        }
        // Anything more would be a duplicate: give it a moment to show.
        if let extra = try? await socket.nextEvent(timeout: .milliseconds(300)), extra.name == "notification" {
            received.append(extra.id ?? "?")
        }
        return received
    }

    @Test func aStalledRedisMakesTheGatewayUnreadyThenDeliversEveryNotificationOnceInOrder() async throws {
        let cluster = try await TwoGateways.start()
        let users = ["u0", "u1", "u2", "u3"]
        let sockets = try await cluster.followers(users)
        let published = Published()
        let publishing = Task {
            var index = 0
            let end = ContinuousClock.now + .seconds(15)
            while ContinuousClock.now < end {
                let user = users[index % users.count]
                published.add(try await cluster.b.publish(user: user, data: .notification("n\(index)")), for: user)
                index += 1
                try await Task.sleep(for: .milliseconds(25))
            }
        }
        try await Task.sleep(for: .seconds(2))
        cluster.proxy.set(.init(stalled: true))
        let stalled = ContinuousClock.now
        // Stated time: the subscriber's ping (every 1 s) goes unanswered for 2 s.
        try await eventually(timeout: .seconds(5), "readyz is 503 while Redis is stalled") {
            try await cluster.a.http("GET", "/readyz").status == 503
        }
        let unready = ContinuousClock.now - stalled
        // Clients stay connected and served meanwhile (notifications that arrive first are kept).
        var early: [String: [String]] = [:]
        for (user, socket) in sockets {
            try await socket.send(#"{"action":"ping"}"#)
            while true {
                let event = try await socket.nextEvent()
                if event.name == "pong" { break }
                if event.name == "notification", let id = event.id { early[user, default: []].append(id) }
            }
        }
        try await Task.sleep(until: stalled + .seconds(10), clock: .continuous)
        cluster.proxy.set(.none)
        let resumed = ContinuousClock.now
        try await eventually(timeout: .seconds(15), "ready after the stall") { try await cluster.a.http("GET", "/readyz").status == 200 }
        print("chaos: stall: readyz 503 after \(unready), ready again \(ContinuousClock.now - resumed) after the stall ended")
        try await publishing.value
        #expect(published.count > 100)
        let deadline = ContinuousClock.now + .seconds(30)
        for user in users {
            let expected = published.byUser[user] ?? []
            let before = early[user] ?? []
            let received = try await before
                + receivedIDs(sockets[user]!, expected: Array(expected.dropFirst(before.count)), deadline: deadline)
            #expect(received == expected, "\(user): \(received.count) received of \(expected.count)")
        }
        print("chaos: stall: \(published.count) notifications to \(users.count) users, each received once in order")
    }

    @Test func cuttingTheRedisLinkTwentyTimesDuring2000PublishesLosesAndDuplicatesNothing() async throws {
        let cluster = try await TwoGateways.start()
        let users = (0..<8).map { "cut\($0)" }
        let sockets = try await cluster.followers(users)
        let published = Published()
        // Four publishers, each with its own users, so that each user's order is the API's. They
        // keep pace with the cuts: the i-th publish of each waits for cut i × 20 / 500, so the
        // twenty cuts fall among the 2000 publishes however fast either side runs.
        let cuts = NIOLockedValueBox(0)
        let publishers = (0..<4).map { publisher in
            Task {
                for index in 0..<500 {
                    try await eventually(timeout: .seconds(30), "cut \(index * 20 / 500)") { cuts.withLockedValue { $0 } >= index * 20 / 500 }
                    let user = users[publisher + 4 * (index % 2)]
                    published.add(try await cluster.b.publish(user: user, data: .notification("\(publisher)-\(index)")), for: user)
                }
            }
        }
        // Each cut waits until the gateway is connected again, so that every one cuts a live link.
        for _ in 0..<20 {
            try await Task.sleep(for: .milliseconds(200))
            try await eventually(timeout: .seconds(10), "the gateway reconnected to Redis") { cluster.proxy.connectionCount > 0 }
            cluster.proxy.cutAll()
            cuts.withLockedValue { $0 += 1 }
        }
        for publisher in publishers { try await publisher.value }
        #expect(published.count == 2000)
        print("chaos: cuts: 20 cuts, \(cluster.proxy.acceptedCount) connections to Redis accepted, \(published.count) published")
        #expect(cluster.proxy.acceptedCount > 20, "the gateway reconnected after every cut")
        let deadline = ContinuousClock.now + .seconds(30)
        for user in users {
            let expected = published.byUser[user] ?? []
            let received = try await receivedIDs(sockets[user]!, expected: expected, deadline: deadline)
            #expect(received == expected, "\(user): \(received.count) received of \(expected.count)")
        }
    }

    @Test func aSlowLinkToOneClientCostsTheOthersNothing() async throws {
        let server = try await TestServer.start(["--feed", "simulated", "--price-interval", "0.05"])
        let proxy = try await ChaosProxy.start(upstreamPort: server.port)
        proxy.set(.init(latency: .milliseconds(200), bytesPerSecond: 64 * 1024))
        let slow = try await TestWebSocket.connect(port: proxy.port, path: "/ws", token: Tokens.make(subject: "slow"))
        _ = try await slow.expectEvent("connected", timeout: .seconds(5))
        try await slow.send(#"{"action":"subscribe","channel":"prices","symbols":["BTC","ETH","SOL","XLM"]}"#)
        try await slow.send(#"{"action":"subscribe","channel":"notifications","user_id":"slow"}"#)
        _ = try await slow.expectEvent("subscribed", timeout: .seconds(5))

        // A client on a good link: its notifications arrive as fast as if the slow one were not
        // there, while the slow one is sent about 400 KB/s, six times what its link carries.
        let fast = try await server.connectReady(user: "fast")
        try await fast.send(#"{"action":"subscribe","channel":"notifications","user_id":"fast"}"#)
        _ = try await fast.expectEvent("subscribed")
        let bulky = JSONText(text: #"{"notification_id":"big","type":"info","title":"T","message":"\#(String(repeating: "x", count: 8000))","priority":"normal"}"#)
        // The slow client reads all along, as an app on a slow network does: what it is behind is
        // what the path holds (gateway queue, socket buffers, the link), not what the test left unread.
        let stopWatching = Mutex(false)
        let slowWatch = Task { () -> (closeCode: UInt16?, prices: Int, lastLagMilliseconds: Int64?) in
            var prices = 0
            var lastLagMilliseconds: Int64?
            while !stopWatching.withLock({ $0 }) {
                guard let item = try? await slow.next(timeout: .seconds(1)) else { continue }
                switch item {
                case .close(let code, _):
                    return (code, prices, lastLagMilliseconds)
                case .disconnected:
                    // The close frame queued behind the backlog the client could not take; the
                    // gateway's metric says why it cut.
                    let cut = try? await server.metric(#"tickwire_disconnects_total{code="4009"}"#)
                    return (cut == 1 ? 4009 : 0, prices, lastLagMilliseconds)
                case .text(let text) where text.contains("\"price_"):
                    prices += 1
                    // How old the price is on arrival: the envelope's timestamp is when the gateway sent it.
                    if let sent = (try? JSONParser.parse(text))?.objectValue?["timestamp"]?.stringValue.flatMap(Timestamp.init(rfc3339:)) {
                        lastLagMilliseconds = Timestamp.now().millisecondsSinceEpoch - sent.millisecondsSinceEpoch
                    }
                default:
                    continue
                }
            }
            return (nil, prices, lastLagMilliseconds)
        }
        var latencies: [Duration] = []
        for index in 0..<40 {
            for _ in 0..<6 { try await server.publish(user: "slow", data: bulky) }
            let sent = ContinuousClock.now
            let id = try await server.publish(user: "fast", data: .notification("f\(index)"))
            while true {
                let event = try await fast.nextEvent(timeout: .seconds(5))
                if event.name == "notification" {
                    #expect(event.id == id)
                    break
                }
            }
            latencies.append(ContinuousClock.now - sent)
            try await Task.sleep(for: .milliseconds(100))
        }
        latencies.sort()
        // The slow link alone takes 200 ms a message: a fast client sharing its fate would show it.
        #expect(latencies[latencies.count / 2] < .milliseconds(200), "median \(latencies[latencies.count / 2])")
        #expect(latencies.last! < .seconds(1), "slowest \(latencies.last!)")
        print("chaos: slow link: the fast client's median \(latencies[latencies.count / 2]), slowest \(latencies.last!)")

        // The slow client is cut with 4009, or it keeps up (its prices keep coming, fresh).
        try await Task.sleep(for: .seconds(8))
        stopWatching.withLock { $0 = true }
        let (closeCode, prices, lastLagMilliseconds) = await slowWatch.value
        print("chaos: slow link: the slow client \(closeCode.map { "was closed with \($0)" } ?? "was not cut: \(prices) prices, the last \(lastLagMilliseconds.map(String.init) ?? "-") ms old")")
        if let closeCode {
            #expect(closeCode == 4009)
        } else {
            // Not cut: the publishing above came slowly enough (a loaded machine) to stay within the
            // gateway's bound. Prices keep arriving, and no older than what the bounded path holds:
            // the gateway's queue, its socket's send buffer and the proxy, at the link's rate.
            #expect(prices > 0, "a slow client that is not cut keeps receiving prices")
            let heldBytes = 256 * 1024 + 2 * 64 * 1024 + ChaosProxy.maximumHeldBytes
            let boundMilliseconds = Int64(heldBytes * 1000 / (64 * 1024)) + 1000
            #expect((lastLagMilliseconds ?? .max) < boundMilliseconds, "a slow client that is not cut is at most what the path holds behind")
        }
    }

    @Test func halfOpenClientsAreClosedByTheHeartbeatRuleAndTheirSlotsReturned() async throws {
        let server = try await TestServer.start(["--feed", "none", "--heartbeat-timeout", "2", "--metrics-port", "0"])
        let proxy = try await ChaosProxy.start(upstreamPort: server.port)
        var sockets: [TestWebSocket] = []
        for index in 0..<20 {
            let socket = try await TestWebSocket.connect(port: proxy.port, path: "/ws", token: Tokens.make(subject: "half\(index)"))
            _ = try await socket.expectEvent("connected", timeout: .seconds(5))
            sockets.append(socket)
        }
        #expect(try await server.metric("tickwire_connections_active") == 20)
        // After the handshake the network drops everything both ways, and no side sees a FIN.
        proxy.set(.init(blackholed: [.toUpstream, .toClient]))
        let blackholed = ContinuousClock.now
        try await eventually(timeout: .seconds(8), "the gateway closed every silent connection") {
            try await server.metric("tickwire_connections_active") == 0
        }
        print("chaos: half-open: 20 connections closed \(ContinuousClock.now - blackholed) after the blackhole")
        #expect(try await server.metric(#"tickwire_disconnects_total{code="4008"}"#) == 20)
        try await eventually(timeout: .seconds(5), "their sockets closed") { try await server.metric("tickwire_sockets_open") == 0 }
        _ = sockets
    }
}

/// The proxy's own faults, seen through a real gateway's HTTP port: each does what it says.
@Suite(.timeLimit(.minutes(1)))
struct ChaosProxyFaults {
    @Test func itForwardsUntouchedByDefaultAndAddsLatencyEachWay() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let proxy = try await ChaosProxy.start(upstreamPort: server.port)
        #expect(try await TestHTTP.request(port: proxy.port, method: "GET", path: "/healthz").status == 200)
        proxy.set(.init(latency: .milliseconds(300)))
        let start = ContinuousClock.now
        #expect(try await TestHTTP.request(port: proxy.port, method: "GET", path: "/healthz").status == 200)
        #expect(ContinuousClock.now - start >= .milliseconds(600), "300 ms to the server and 300 ms back")
    }

    @Test func itThrottlesEachDirectionToTheBandwidth() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let proxy = try await ChaosProxy.start(upstreamPort: server.port)
        proxy.set(.init(bytesPerSecond: 16 * 1024))
        let start = ContinuousClock.now
        let sdk = try await TestHTTP.request(port: proxy.port, method: "GET", path: "/sdk/tickwire.js")
        #expect(sdk.status == 200 && sdk.body.utf8.count > 32 * 1024)
        #expect(ContinuousClock.now - start >= .seconds(Double(sdk.body.utf8.count) / (16 * 1024) - 0.1))
    }

    @Test func aStallHoldsTheBytesAndReleasesThemWhenItEnds() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let proxy = try await ChaosProxy.start(upstreamPort: server.port)
        proxy.set(.init(stalled: true))
        let request = Task { try await TestHTTP.request(port: proxy.port, method: "GET", path: "/healthz") }
        try await Task.sleep(for: .milliseconds(500))
        #expect(proxy.connectionCount == 1)
        proxy.set(.none)
        #expect(try await request.value.status == 200)
    }

    @Test func itRefusesNewConnectionsOnCommandAndAcceptsThemAgain() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let proxy = try await ChaosProxy.start(upstreamPort: server.port)
        try await proxy.refuseNewConnections()
        await #expect(throws: (any Error).self) { try await TestHTTP.request(port: proxy.port, method: "GET", path: "/healthz") }
        try await proxy.acceptNewConnections()
        #expect(try await TestHTTP.request(port: proxy.port, method: "GET", path: "/healthz").status == 200)
    }

    @Test func aCutClosesBothSidesAtOnce() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let proxy = try await ChaosProxy.start(upstreamPort: server.port)
        let socket = try await TestWebSocket.connect(port: proxy.port, path: "/ws", token: Tokens.make(subject: "cut"))
        _ = try await socket.expectEvent("connected")
        proxy.cutAll()
        try await socket.expectEnd(timeout: .seconds(2))
        try await eventually("the gateway saw it go") { try await server.metric("tickwire_connections_active") == 0 }
    }
}
