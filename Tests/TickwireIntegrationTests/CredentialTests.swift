import Foundation
import Testing
import TickwireProtocol

/// Keys are keys or startup errors: nothing short, empty or half-configured starts, and dev
/// mode (generated credentials) happens only when asked for or when nothing was configured.
@Suite(.timeLimit(.minutes(1)))
struct Credentials {
    static let secret = TestServer.jwtSecret
    static let apiKey = TestServer.apiKey

    /// Runs `tickwire` to its exit (it must refuse to start), with the given environment only.
    func refusal(_ arguments: [String], environment: [String: String] = [:]) async throws -> String {
        let child = try TestProcess.launch(arguments + ["--port", "0", "--feed", "none"], environment: environment)
        let status = try await child.waitForExit(timeout: .seconds(20))
        #expect(status != 0, "started: \(child.stdout)")
        let lines = child.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines.first?.hasPrefix("tickwire: error: ") == true, "\(child.stderr)")
        return child.stderr
    }

    /// `--api-key ''` once started silently, and `Bearer` with two spaces then matched the empty key.
    @Test func anEmptyOrShortAPIKeyIsAStartupErrorByFlagAndByEnvironment() async throws {
        #expect(try await refusal(["serve", "--jwt-secret", Self.secret, "--api-key", ""]).contains("--api-key"))
        #expect(try await refusal(["serve", "--jwt-secret", Self.secret, "--api-key", "short"]).contains("--api-key"))
        #expect(try await refusal(["serve", "--jwt-secret", Self.secret], environment: ["TICKWIRE_API_KEY": ""]).contains("--api-key"))
        #expect(try await refusal(["serve", "--jwt-secret", Self.secret, "--api-key", "with spaces with spaces with spaces"])
            .contains("--api-key"))
    }

    @Test func aShortHMACSecretIsAStartupError() async throws {
        #expect(try await refusal(["serve", "--jwt-secret", "only-twenty-bytes-ok", "--api-key", Self.apiKey]).contains("32"))
        #expect(try await refusal(["token", "--secret", "short", "--sub", "alice"]).contains("32"))
        let emptyOct = try TestKeys.write(#"{"keys":[{"kty":"oct","kid":"k1","k":""}]}"#, name: "empty-oct.json")
        #expect(try await refusal(["serve", "--jwks", emptyOct, "--api-key", Self.apiKey]).contains("JWKS key 0"))
    }

    /// Once any credential is configured, a missing one is an error naming it, never a generated key.
    @Test func aMissingCredentialIsNamedUnlessDevModeIsAskedFor() async throws {
        #expect(try await refusal(["serve", "--jwt-secret", Self.secret]).contains("--api-key"))
        #expect(try await refusal(["serve", "--api-key", Self.apiKey]).contains("--jwt-secret"))
        #expect(try await refusal(["serve", "--redis-url", "redis://127.0.0.1:1"]).contains("--jwt-secret"))
        let dev = try await TestServer.start(["--feed", "none", "--dev", "--jwt-secret", Self.secret], credentials: .none)
        #expect(dev.stdout.contains("DEV MODE: no --api-key given"))
        #expect(!dev.stdout.contains("no --jwt-secret"), "the configured secret is used, not replaced")
    }

    @Test func theBearerHeaderMustBeExact() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let body = #"{"user_id":"alice","event":"notification","data":\#(JSONText.sampleNotification.text)}"#
        for header in ["Bearer  \(Self.apiKey)", "Bearer \(Self.apiKey) ", "Bearer", "Bearer  ", "Basic \(Self.apiKey)"] {
            let result = try await server.http("POST", "/api/v1/publish", headers: [("Authorization", header)], body: body)
            #expect(result.status == 401, "\(header.debugDescription) -> \(result.status)")
        }
        let accepted = try await server.http("POST", "/api/v1/publish", headers: [("Authorization", "bearer \(Self.apiKey)")], body: body)
        #expect(accepted.status == 200)
    }
}
