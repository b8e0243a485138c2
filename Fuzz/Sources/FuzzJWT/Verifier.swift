import FuzzSupport
import TickwireCore
import TickwireProtocol

/// The verifier every input goes through: a global outside main.swift, so that its keys stay
/// reachable from static storage and the leak checker does not count them.
let verifier: JWTVerifier = {
    var keys = JWTKeySet()
    do {
        keys.add(try JWTKeySet.hmacSecret(Array(hmacSecret.utf8)), keyID: "hmac")
        keys.add(try JWTKeySet.parsePEM(rsaPublicKey), keyID: "rsa")
        keys.add(try JWTKeySet.parsePEM(p256PublicKey), keyID: "ec")
        keys.add(try JWTKeySet.parsePEM(ed25519PublicKey), keyID: "ed")
    } catch {
        fuzzFailure("the fuzz keys do not load: \(error)")
    }
    let verifier = JWTVerifier(keys: keys)
    for token in validTokens {
        guard case .success = verifier.verify(token, now: now) else { fuzzFailure("a valid seed token is refused: \(token)") }
    }
    return verifier
}()

/// A fixed clock: the seeds' expiry (2100) and not-before times stay where they are.
let now = Timestamp(secondsSinceEpoch: 1_800_000_000)

