import Foundation
import Testing
import TickwireProtocol

@Suite(.timeLimit(.minutes(1)))
struct Lifecycle {
    @Test func sigtermClosesEveryClientWith1001SpreadOverTheDrainThenExitsZero() async throws {
        let server = try await TestServer.start(["--feed-tick", "0.1", "--drain-seconds", "1.5"])
        var sockets: [TestWebSocket] = []
        for index in 0..<6 { sockets.append(try await server.connectReady(user: "u\(index)")) }
        server.signal(SIGTERM)
        let start = ContinuousClock.now
        // Wait on every socket at once: each records when its own close arrived.
        let closes = try await withThrowingTaskGroup(of: (UInt16?, Duration).self) { group in
            for socket in sockets {
                group.addTask { (try await socket.expectClose(timeout: .seconds(5)), ContinuousClock.now - start) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(closes.allSatisfy { $0.0 == 1001 })
        let closedAt = closes.map(\.1)
        #expect(try await server.waitForExit(timeout: .seconds(10)) == 0)
        let spread = closedAt.max()! - closedAt.min()!
        #expect(spread >= .milliseconds(400), "closes were not spread out: \(closedAt)")
        #expect(closedAt.max()! <= .seconds(3))
        #expect(server.stderr.contains("shutdown complete"))
        #expect(!server.stderr.contains("error:"), "\(server.stderr)")
    }

    /// The 4009 close frame waits behind the bytes the client does not read, so the server does not
    /// wait for the client's answer: it lets go of the socket (and the bytes queued for it) after a
    /// short grace, while the client still reads nothing.
    @Test func aSlowReaderIsCutWith4009AndReleasedWhileAFastReaderKeepsReceiving() async throws {
        let server = try await TestServer.start([
            // 1,600 prices a second: a reader that stops fills 64 KiB in a fraction of a second, while
            // one that reads keeps up even on a loaded machine.
            "--feed-tick", "0.005", "--price-interval", "0", "--max-pending-bytes", "65536",
        ])
        let fast = try await server.connectReady(user: "fast")
        let slow = try await server.connectReady(user: "slow")
        let all = #"{"action":"subscribe","channel":"prices","symbols":["BTC","ETH","SOL","XLM","XRP","BNB","ADA","DOGE"]}"#
        try await fast.send(all)
        try await slow.send(all)
        _ = try await slow.expectEvent("price_update")
        try await slow.pauseReading()
        try await eventually(timeout: .seconds(30), "the server gives up on the slow reader") {
            try await server.metric(#"tickwire_slow_consumer_closes_total"#) ?? 0 >= 1
        }
        let fastAfter = try await fast.collectEvents(for: .milliseconds(300)).filter { $0.name == "price_update" }
        #expect(fastAfter.count > 5, "the fast reader keeps receiving")
        #expect(try await server.metric(#"tickwire_disconnects_total{code="4009"}"#) == 1)
        try await eventually(timeout: .seconds(5), "the slow reader's socket is released (grace 1 s, not 10 s)") {
            try await server.metric("tickwire_connections_active") == 1
        }
        try await slow.resumeReading()
        try await slow.expectEnd(timeout: .seconds(10))
    }

    /// The kernel's send buffer is part of what a slow client can hold back (ChaosTests shows it).
    @Test func aSendBufferTooSmallToUseIsRefusedWithOneLine() async throws {
        let result = try await TestProcess.run(nil, ["serve", "--port", "0", "--socket-send-buffer", "100"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("--socket-send-buffer must be 0 (the kernel's autotuning) or at least 4096"))
    }

    /// With `--metrics-port`, metrics leave the public port for a port of their own.
    @Test func metricsCanMoveOffThePublicPort() async throws {
        let server = try await TestServer.start(["--feed", "none", "--metrics-port", "0"])
        let port = try #require(server.metricsPort)
        #expect(try await server.http("GET", "/metrics").status == 404)
        #expect(try await server.http("GET", "/healthz").status == 200)
        let metrics = try await TestHTTP.request(port: port, method: "GET", path: "/metrics")
        #expect(metrics.status == 200 && metrics.body.contains("tickwire_connects_total"))
        #expect(try await TestHTTP.request(port: port, method: "GET", path: "/readyz").status == 200)
        #expect(try await TestHTTP.request(port: port, method: "GET", path: "/api/v1/prices").status == 404)
        #expect(try await TestHTTP.request(port: port, method: "POST", path: "/api/v1/publish", body: "{}").status == 404)
    }

    @Test func healthReadinessAndMetrics() async throws {
        let server = try await TestServer.start(["--feed-tick", "0.1", "--price-interval", "0.2"])
        #expect(try await server.http("GET", "/healthz").status == 200)
        let ready = try await server.http("GET", "/readyz")
        #expect(ready.status == 200 && ready.json?["status"] == "ready")
        let socket = try await server.connectReady()
        try await socket.send(#"{"action":"subscribe","channel":"prices","symbols":["BTC"]}"#)
        _ = try await socket.expectEvent("price_update")
        try await socket.send(#"{"action":"bogus"}"#)
        _ = try await socket.expectEvent("error")
        _ = try await server.publish(user: "alice")
        let metrics = try await server.http("GET", "/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.header("Content-Type")?.hasPrefix("text/plain") == true)
        for name in [
            "tickwire_connections_active 1", #"tickwire_messages_sent_total{event="price_update"}"#,
            #"tickwire_messages_received_total{action="subscribe"}"#, "tickwire_delivery_latency_seconds_bucket",
            "tickwire_connects_total", "tickwire_reconnects_total", #"tickwire_errors_total{code="UNKNOWN_ACTION"} 1"#,
            "tickwire_broker_lag_seconds",
        ] {
            #expect(metrics.body.contains(name), "missing \(name)")
        }
    }

    @Test func aUserWhoComesBackWithinAMinuteCountsAsAReconnect() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let first = try await server.connectReady(user: "returning")
        _ = try await first.close()
        // The server ends the session just after it answers the close: only a user who has left can come back.
        try await eventually("the first session ended") { try await server.metric("tickwire_connections_active") == 0 }
        _ = try await server.connectReady(user: "returning")
        try await eventually("the reconnect is counted") { try await server.metric("tickwire_reconnects_total") == 1 }
        #expect(try await server.metric("tickwire_connects_total") == 2)
    }
}

@Suite(.timeLimit(.minutes(1)))
struct CommandLine {
    func run(_ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await TestProcess.run(nil, arguments, environment: environment)
    }

    @Test(arguments: [
        ["serve", "--bogus"], ["serve", "--port", "99999"], ["serve", "--feed", "carrier-pigeon"],
        ["serve", "--jwt-public-key", "/does/not/exist.pem"], ["serve", "--jwks", "/does/not/exist.json"],
        ["serve", "--symbols", "BTC,NOT-A-SYMBOL"], ["serve", "--jwt-secret", "a", "--jwks", "b"],
        ["token", "--sub", "alice"], ["nonsense"],
        ["bench", "idle", "--jwt-secret", "s", "--url", "ws://127.0.0.1"], ["bench", "idle", "--jwt-secret", "s", "--url", "http://x:1"],
        ["bench", "idle", "--jwt-secret", "s", "--url", "ws://no.such.host.invalid:1"],
    ])
    func badInvocationsPrintOneLineAndFail(_ arguments: [String]) async throws {
        let result = try await run(arguments)
        #expect(result.status != 0)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(result.stderr)")
        #expect(lines.first?.hasPrefix("tickwire: error: ") == true)
    }

    @Test func aPEMThatIsNotAKeyIsAOneLineError() async throws {
        let path = try TestKeys.write("hello", name: "junk.pem")
        let result = try await run(["serve", "--jwt-public-key", path, "--api-key", TestServer.apiKey])
        #expect(result.status != 0)
        #expect(result.stderr.contains("--jwt-public-key") && result.stderr.split(separator: "\n").count == 1)
    }

    @Test func tokenPrintsAnHS256TokenTheGatewayAccepts() async throws {
        let result = try await run(["token", "--secret", TestServer.jwtSecret, "--sub", "cli-user", "--ttl", "120"])
        #expect(result.status == 0)
        let token = result.stdout.trimmingWhitespace()
        #expect(token.split(separator: ".").count == 3)
        let server = try await TestServer.start(["--feed", "none"])
        let socket = try await server.connect(token: token)
        #expect(try await socket.nextEvent().data["user_id"] == "cli-user")
    }

    @Test func optionsAlsoComeFromTheEnvironment() async throws {
        let server = try await TestServer.start(
            ["--feed", "none"],
            environment: ["TICKWIRE_HEARTBEAT_TIMEOUT": "3", "TICKWIRE_MAX_CONNECTIONS": "1", "TICKWIRE_SYMBOLS": "BTC,DOGE"])
        let socket = try await server.connectReady()
        // TICKWIRE_SYMBOLS (first: the 3 s heartbeat below starts with the connection)
        try await socket.send(#"{"action":"subscribe","channel":"prices","symbols":["DOGE","ETH"]}"#)
        #expect(try await socket.nextEvent().data["symbols"] == ["DOGE"])
        #expect(try await socket.nextEvent().errorCode == "UNKNOWN_SYMBOL")
        // TICKWIRE_MAX_CONNECTIONS: the one place is taken.
        let second = try await server.connect()
        #expect(try await second.expectClose() == 1013)
        // TICKWIRE_HEARTBEAT_TIMEOUT: the first client said nothing since.
        #expect(try await socket.expectClose(timeout: .seconds(8)) == 4008)
        let token = try await run(["token", "--sub", "env-user"], environment: ["TICKWIRE_JWT_SECRET": "environment-secret-0123456789abcdef"])
        #expect(token.status == 0 && token.stdout.split(separator: ".").count == 3)
    }

    @Test func withNoKeysServePrintsADevTokenThatWorks() async throws {
        let server = try await TestServer.start(["--feed", "none"], credentials: .none)
        #expect(server.stdout.contains("DEV MODE"))
        let url = try #require(server.stdout.split(separator: "\n").first { $0.contains("connect: ws://") })
        let token = String(url.split(separator: "token=").last!)
        let socket = try await server.connect(token: token)
        #expect(try await socket.nextEvent().data["user_id"] == "demo")
        let keyLine = try #require(server.stdout.split(separator: "\n").first { $0.contains("Generated for this run:") })
        let apiKey = String(keyLine.split(separator: " ").last!)
        let body = #"{"user_id":"demo","event":"notification","data":\#(JSONText.sampleNotification.text)}"#
        #expect(try await server.http("POST", "/api/v1/publish", headers: [("Authorization", "Bearer \(apiKey)")], body: body).status == 200)
    }
}
