import Foundation
import Testing
import TickwireProtocol

/// The price board and the JavaScript SDK, served by the gateway itself.
@Suite(.timeLimit(.minutes(1)))
struct ServedToBrowsers {
    @Test func theBoardAndTheSDKComeWithValidators() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let board = try await server.http("GET", "/")
        #expect(board.status == 200 && board.header("Content-Type") == "text/html; charset=utf-8")
        #expect(board.body.contains("<title>") && board.body.contains(#"from "/sdk/tickwire.js""#))
        #expect(board.header("Cache-Control") == "no-cache")
        #expect(board.header("Content-Security-Policy")?.contains("default-src 'self'") == true)

        let sdk = try await server.http("GET", "/sdk/tickwire.js")
        #expect(sdk.status == 200 && sdk.header("Content-Type") == "text/javascript; charset=utf-8")
        #expect(sdk.body.contains("export class Tickwire"))
        #expect(sdk.header("Cache-Control") == "public, max-age=300")
        #expect(sdk.header("Access-Control-Allow-Origin") == "*", "imported by pages of other origins")
        let etag = try #require(sdk.header("ETag"))
        let revalidated = try await server.http("GET", "/sdk/tickwire.js", headers: [("If-None-Match", etag)])
        #expect(revalidated.status == 304 && revalidated.body.isEmpty)
        #expect(try await server.http("GET", "/sdk/tickwire.js", headers: [("If-None-Match", #""other""#)]).status == 200)
        let types = try await server.http("GET", "/sdk/tickwire.d.ts")
        #expect(types.status == 200 && types.body.contains("export declare class Tickwire"))
    }

    /// The board's publish-to-yourself form works in dev mode only, with the user's own token.
    @Test func theDevEndpointsExistInDevModeOnly() async throws {
        let production = try await TestServer.start(["--feed", "none"])
        #expect(try await production.http("GET", "/api/v1/dev").status == 404)
        let refused = try await production.http(
            "POST", "/api/v1/dev/publish", headers: [("Authorization", "Bearer \(Tokens.make(subject: "alice"))")],
            body: #"{"event":"notification","data":\#(JSONText.sampleNotification.text)}"#)
        #expect(refused.status == 404)

        let dev = try await TestServer.start(["--feed", "none", "--dev"])
        #expect(try await dev.http("GET", "/api/v1/dev").status == 200)
        let alice = try await dev.connectReady(user: "alice")
        try await alice.send(#"{"action":"subscribe","channel":"notifications","user_id":"alice"}"#)
        _ = try await alice.expectEvent("subscribed")
        // The body's user_id is ignored: a user publishes to themselves only.
        let published = try await dev.http(
            "POST", "/api/v1/dev/publish", headers: [("Authorization", "Bearer \(Tokens.make(subject: "alice"))")],
            body: #"{"user_id":"bob","event":"notification","data":\#(JSONText.sampleNotification.text)}"#)
        #expect(published.status == 200 && published.json?["user_id"] == "alice")
        #expect(try await alice.expectEvent("notification").id == published.json?["id"]?.stringValue)
        let anonymous = try await dev.http(
            "POST", "/api/v1/dev/publish", body: #"{"event":"notification","data":\#(JSONText.sampleNotification.text)}"#)
        #expect(anonymous.status == 401)
    }
}
