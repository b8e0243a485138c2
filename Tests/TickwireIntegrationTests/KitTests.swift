import Foundation
import NIOConcurrencyHelpers
import NIOSSL
import Testing
import TickwireKit

/// TickwireKit against a real `tickwire serve`: what an app sees from a real gateway.
@Suite(.timeLimit(.minutes(1))) struct KitTests {
    /// Collects a stream for the test to read with deadlines.
    final class Collector<Element: Sendable>: Sendable {
        let items = Mailbox<Element>()

        init(_ stream: AsyncStream<Element>) {
            let items = items
            Task { for await item in stream { items.push(item) } }
        }

        func next(_ what: String, timeout: Duration = .seconds(10), where predicate: (Element) -> Bool = { _ in true }) async throws
            -> Element
        {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                guard let item = await items.next(timeout: deadline - ContinuousClock.now) else { break }
                if predicate(item) { return item }
            }
            throw TestFailure("no \(what) within \(timeout)")
        }
    }

    final class Reasons: Sendable {
        let list = NIOLockedValueBox<[TokenReason]>([])
        func record(_ reason: TokenReason) -> Int { list.withLockedValue { $0.append(reason); return $0.count } }
        var all: [TokenReason] { list.withLockedValue { $0 } }
    }

    static func url(_ port: Int) -> URL { URL(string: "ws://127.0.0.1:\(port)/ws")! }

    @Test func pricesAndNotificationsFromARealGateway() async throws {
        let server = try await TestServer.start(["--price-interval", "0.2"])
        let client = TickwireClient(url: Self.url(server.port), token: { Tokens.make(subject: "alice") })
        defer { client.close() }
        let prices = Collector(client.prices(["btc", "ETH"]))
        let events = Collector(client.notifications())
        let states = Collector(client.states)
        _ = try await states.next("connected") { $0.isConnected }
        var seen: Set<String> = []
        while seen.count < 2 {
            let price = try await prices.next("a price")
            #expect(price.priceUSDDecimal != nil)
            seen.insert(price.symbol)
        }
        #expect(seen == ["BTC", "ETH"])
        let (id, event) = try await publishUntilDelivered(events) { try await server.publish(user: "alice") }
        #expect(event.id.description == id)
        guard case .notification(let notification) = event else { throw TestFailure("expected a notification, got \(event)") }
        #expect(notification.title == "KYC Verification Approved")
        #expect(notification.priority == .high)
    }

    /// The gateway is killed; events published while it is down come after the reconnect, each once.
    @Test func aGatewayRestartMissesNothing() async throws {
        let redis = try await RedisServer.start()
        let first = try await TestServer.start(["--redis-url", redis.url])
        let port = first.port
        let client = TickwireClient(url: Self.url(port), token: { Tokens.make(subject: "alice") })
        defer { client.close() }
        let events = Collector(client.notifications())
        let gaps = Collector(client.gaps)
        let states = Collector(client.states)
        _ = try await states.next("connected") { $0.isConnected }
        var published = [try await publishUntilDelivered(events) { try await first.publish(user: "alice", data: .notification("n1")) }.id]
        first.signal(SIGKILL)
        _ = try await first.waitForExit(timeout: .seconds(10))
        _ = try await states.next("reconnecting") { if case .reconnecting = $0 { true } else { false } }
        for n in 2...4 {
            let result = try await TestProcess.run(
                nil, ["publish", "--redis-url", redis.url, "--user", "alice", "--event", "notification", "--data", JSONText.notification("n\(n)").text])
            #expect(result.status == 0, "\(result.stderr)")
            published.append(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let second = try await TestServer.start(["--redis-url", redis.url, "--port", String(port)])
        _ = try await states.next("connected again", timeout: .seconds(40)) { $0.isConnected }
        var received: [String] = []
        for _ in 2...4 { received.append(try await events.next("a missed event").id.description) }
        published.append(try await second.publish(user: "alice", data: .notification("n5")))
        received.append(try await events.next("n5").id.description)
        #expect(received == Array(published.dropFirst()))
        #expect(await gaps.items.next(timeout: .milliseconds(200)) == nil)
    }

    @Test func aTokenIsRefreshedBeforeItExpiresOnTheSameConnection() async throws {
        let server = try await TestServer.start(["--jwt-leeway", "0"])
        let reasons = Reasons()
        // Five-second tokens (`exp` is whole seconds: 4 to 5 s left), refreshed halfway: without a
        // refresh the gateway closes with 4001 within a second of each expiry.
        let client = TickwireClient(
            url: Self.url(server.port),
            tokenProvider: { reason in _ = reasons.record(reason); return Tokens.make(subject: "alice", lifetime: 5) })
        defer { client.close() }
        let states = Collector(client.states)
        let errors = Collector(client.errors)
        guard case .connected(_, let connectionID) = try await states.next("connected", where: \.isConnected) else { return }
        // More than two token lifetimes on one connection.
        let changed = await states.items.next(timeout: .seconds(12))
        #expect(changed == nil, "the connection changed: \(String(describing: changed))")
        #expect(client.state == .connected(userID: "alice", connectionID: connectionID))
        #expect(reasons.all.first == .connect)
        #expect(reasons.all.filter { $0 == .refresh }.count >= 3)
        #expect(await errors.items.next(timeout: .milliseconds(10)) == nil)
    }

    @Test func aRefusedTokenIsReplacedByTheProvider() async throws {
        let server = try await TestServer.start()
        let reasons = Reasons()
        let client = TickwireClient(
            url: Self.url(server.port),
            tokenProvider: { reason in reasons.record(reason) == 1 ? "not-a-token" : Tokens.make(subject: "alice") })
        defer { client.close() }
        let states = Collector(client.states)
        let refused = try await states.next("reconnecting after 4001") { if case .reconnecting = $0 { true } else { false } }
        guard case .reconnecting(let reconnecting) = refused else { return }
        #expect(reconnecting.code == 4001)
        #expect(reconnecting.error?.code == "INVALID_TOKEN")
        _ = try await states.next("connected") { $0.isConnected }
        #expect(reasons.all == [.connect, .refused])
    }

    @Test func aFixedTokenThatIsRefusedClosesTheClient() async throws {
        let server = try await TestServer.start()
        let client = TickwireClient(url: Self.url(server.port), token: Tokens.make(subject: "alice", lifetime: -60))
        defer { client.close() }
        let states = Collector(client.states)
        let closed = try await states.next("closed") { if case .closed = $0 { true } else { false } }
        guard case .closed(let details) = closed else { return }
        #expect(details.reason == .unauthorized)
        #expect(details.code == 4001)
        #expect(details.error?.code == "TOKEN_EXPIRED")
    }

    @Test func watchPrintsPricesAndNotificationsThroughARestart() async throws {
        let redis = try await RedisServer.start()
        let feed = try TestProcess.feed(redisURL: redis.url)
        defer { feed.signal(SIGKILL) }
        let first = try await TestServer.start(["--redis-url", redis.url])
        let port = first.port
        let token = Tokens.make(subject: "alice")
        let watch = try TestProcess.launch(["watch", "btc", "ETH", "--url", "ws://127.0.0.1:\(port)/ws", "--token", token, "--notifications"])
        defer { watch.signal(SIGKILL) }
        try await poll("a BTC line") { watch.stdout.split(separator: "\n").contains { $0.hasPrefix("BTC ") && ($0.hasSuffix(" live") || $0.hasSuffix(" stale")) } }
        // The first subscription has no `since`: publish until one arrives, as it goes live.
        var before = ""
        try await poll("the first notification") {
            if !before.isEmpty, watch.stdout.contains("notification \(before) {") { return true }
            before = try await first.publish(user: "alice", data: .notification("w1"))
            try await Task.sleep(for: .seconds(1))
            return watch.stdout.contains("notification \(before) {")
        }
        first.signal(SIGKILL)
        _ = try await first.waitForExit(timeout: .seconds(10))
        try await poll("reconnecting on stderr") { watch.stderr.contains("state: reconnecting") }
        let missed = try await TestProcess.run(
            nil, ["publish", "--redis-url", redis.url, "--user", "alice", "--event", "notification", "--data", JSONText.notification("w2").text])
        let missedID = missed.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let second = try await TestServer.start(["--redis-url", redis.url, "--port", String(port)])
        try await poll("the missed notification", timeout: .seconds(40)) { watch.stdout.contains("notification \(missedID) {") }
        #expect(second.port == port)
        #expect(watch.stdout.components(separatedBy: "notification \(before) ").count == 2, "printed once")
        watch.signal(SIGINT)
        #expect(try await watch.waitForExit(timeout: .seconds(10)) == 0)
    }

    @Test func watchExitsWithOneLineWhenTheTokenIsRefused() async throws {
        let server = try await TestServer.start()
        let result = try await TestProcess.run(nil, ["watch", "BTC", "--url", "ws://127.0.0.1:\(server.port)/ws", "--token", "bad"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("tickwire watch: the gateway refused the token (INVALID_TOKEN"))
        let usage = try await TestProcess.run(nil, ["watch", "BTC", "--url", "http//nope", "--token", "t"])
        #expect(usage.status != 0)
        #expect(usage.stderr.contains("--url must be a ws:// or wss:// URL"))
    }

    /// `wss://` through swift-nio-ssl: trusted with the gateway's CA, refused (and reported) without it.
    @Test func pricesOverTLSWithAPrivateCA() async throws {
        let authority = try await TestCertificateAuthority()
        let certificate = try await authority.issue("server")
        let server = try await TestServer.start(
            ["--price-interval", "0.2", "--tls-cert", certificate.certificatePath, "--tls-key", certificate.keyPath])
        let url = URL(string: "wss://localhost:\(server.port)/ws")!
        var trusting = TickwireClient.Configuration()
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(authority.certificatePath)
        trusting.transport = NIOWebSocketTransport(tlsConfiguration: tls)
        let client = TickwireClient(url: url, token: Tokens.make(subject: "alice"), configuration: trusting)
        defer { client.close() }
        let prices = Collector(client.prices(["BTC"]))
        #expect(try await prices.next("a price over wss").symbol == "BTC")

        let untrusting = TickwireClient(url: url, token: Tokens.make(subject: "alice"))
        defer { untrusting.close() }
        let states = Collector(untrusting.states)
        let failed = try await states.next("reconnecting") { if case .reconnecting = $0 { true } else { false } }
        guard case .reconnecting(let reconnecting) = failed else { return }
        #expect(reconnecting.error?.code == "CONNECTION_FAILED")
        #expect(reconnecting.error?.message.lowercased().contains("certificate_verify_failed") == true, "\(String(describing: reconnecting.error))")

        let watch = try TestProcess.launch(
            ["watch", "ETH", "--url", url.absoluteString, "--token", Tokens.make(subject: "alice"), "--ca-file", authority.certificatePath])
        defer { watch.signal(SIGKILL) }
        try await poll("an ETH line from watch over wss") { watch.stdout.contains("ETH ") }
    }

    /// README's Swift quick start is `Examples/QuickStart/main.swift` word for word, and that
    /// program, built with the package, shows prices and notifications from `tickwire serve`.
    @Test func theReadmeSwiftQuickStartWorksAsWritten() async throws {
        let readme = try String(contentsOf: TestServer.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let source = try String(
            contentsOf: TestServer.packageRoot.appendingPathComponent("Examples/QuickStart/main.swift"), encoding: .utf8)
        #expect(readme.contains("```swift\n" + source + "```\n"), "README's Swift quick start differs from Examples/QuickStart/main.swift")
        #expect(source.split(separator: "\n").count <= 10)
        let server = try await TestServer.start(["--price-interval", "0.2"])
        let program = TestServer.binary.deletingLastPathComponent().appendingPathComponent("tickwire-quickstart").path
        // stdbuf: `print` to a pipe is block-buffered; a terminal sees each line at once.
        let quickStart = try TestProcess.launch(
            ["-oL", program],
            environment: ["TICKWIRE_URL": "ws://127.0.0.1:\(server.port)/ws", "TICKWIRE_TOKEN": Tokens.make(subject: "alice")],
            program: "stdbuf")
        defer { quickStart.signal(SIGKILL) }
        try await poll("prices from the quick start") {
            let lines = quickStart.stdout.split(separator: "\n")
            return lines.contains { $0.hasPrefix("BTC ") } && lines.contains { $0.hasPrefix("ETH ") } && lines.contains { $0.hasPrefix("SOL ") }
        }
        #expect(quickStart.stdout.contains("state: connected user=alice"))
        var id = ""
        try await poll("a notification from the quick start") {
            if !id.isEmpty, quickStart.stdout.contains("notification \(id) {") { return true }
            id = try await server.publish(user: "alice")
            try await Task.sleep(for: .seconds(1))
            return quickStart.stdout.contains("notification \(id) {")
        }
    }

    private func poll(_ what: String, timeout: Duration = .seconds(15), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await !condition() {
            guard ContinuousClock.now < deadline else { throw TestFailure("no \(what) within \(timeout)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Publishes until an event arrives: a first subscription has no `since`, so an event published
    /// before the gateway made it live is not replayed. Returns the id that arrived and the event.
    private func publishUntilDelivered(
        _ events: Collector<WalletEvent>, _ publish: () async throws -> String
    ) async throws -> (id: String, event: WalletEvent) {
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline {
            let id = try await publish()
            if let event = await events.items.next(timeout: .seconds(2)) {
                guard event.id.description == id else { throw TestFailure("expected \(id), got \(event.id)") }
                return (id, event)
            }
        }
        throw TestFailure("no published event arrived")
    }
}
