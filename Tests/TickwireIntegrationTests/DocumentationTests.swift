import Foundation
import Testing
import TickwireRedis

@Suite struct Documentation {
    /// Other languages load docs/redis/publish-notification.lua; it must be the script Tickwire runs.
    @Test func thePublishedLuaScriptIsTheOneTickwireRuns() throws {
        let file = try String(contentsOf: TestServer.packageRoot.appendingPathComponent("docs/redis/publish-notification.lua"), encoding: .utf8)
        let code = file.split(separator: "\n", omittingEmptySubsequences: false)
            .drop { $0.hasPrefix("--") }
            .joined(separator: "\n")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(code == RedisScripts.publishNotification.source.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// An EVAL of the documented file, as a backend in another language would do it, reaches clients.
    @Test func aBackendCanPublishWithTheDocumentedScript() async throws {
        let redis = try await RedisServer.start()
        let gateway = try await TestServer.start(["--redis-url", redis.url])
        let socket = try await gateway.connectReady(user: "nia")
        try await socket.send(#"{"action":"subscribe","channel":"notifications","user_id":"nia"}"#)
        _ = try await socket.expectEvent("subscribed")
        try await eventually("followed") { try redis.cli("PUBSUB", "NUMSUB", "notifications:nia").hasSuffix("1") }
        let script = try String(contentsOf: TestServer.packageRoot.appendingPathComponent("docs/redis/publish-notification.lua"), encoding: .utf8)
        let id = try redis.cli(
            "EVAL", script, "2", "notifications:stream:nia", "notifications:nia", "balance_update",
            #"{"wallet_id":"w9","balance":"3.00","balance_usd":"9000.00","symbol":"SOL"}"#, "2026-11-29T10:30:00.123Z",
            "1000", "604800000")
        let event = try await socket.expectEvent("balance_update")
        #expect(event.id == id && event.data["wallet_id"] == "w9")
        let refused = try redis.cli("EVAL", script, "2", "s", "c", "balance_update", "[1,2]", "2026-11-29T10:30:00.123Z", "10", "1000")
        #expect(refused.contains("data must be a JSON object"))
    }
}
