import ArgumentParser
import TickwireCore

struct Token: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print an HS256 token for a user (for development and scripts).",
        discussion: "The secret can also come from TICKWIRE_SECRET or TICKWIRE_JWT_SECRET."
    )

    @Option(help: "The shared secret the gateway verifies with (its --jwt-secret).")
    var secret: String?

    @Option(help: "The user id (the token's sub claim).")
    var sub: String?

    @Option(help: "Lifetime in seconds.")
    var ttl: Int = 3600

    @Option(help: "The iss claim, when the gateway checks one.")
    var issuer: String?

    @Option(help: "The aud claim, when the gateway checks one.")
    var audience: String?

    func validate() throws {
        guard let secret, !secret.isEmpty else { throw ValidationError("--secret is required") }
        do { _ = try JWTKeySet.hmacSecret(Array(secret.utf8), name: "--secret") } catch { throw ValidationError(error.description) }
        guard let sub, !sub.isEmpty, sub.count <= JWTVerifier.maximumSubjectLength else {
            throw ValidationError("--sub must be a user id of 1 to 128 characters")
        }
        guard ttl > 0 else { throw ValidationError("--ttl must be a positive number of seconds") }
    }

    func run() throws {
        let signer = HS256TokenSigner(secret: secret!)
        print(signer.token(subject: sub!, lifetimeSeconds: Int64(ttl), issuer: issuer, audience: audience))
    }
}
