// The JWT verifier on random and mutated tokens, with an HMAC secret, an RSA, a P-256 and an
// Ed25519 key (each with a `kid`, as a JWKS gives them). Properties: no crash; a token is accepted
// only if one of the keys' private halves signed its header and payload (`signedInputs`): anything
// else accepted is a forgery.
import FuzzSupport
import TickwireCore
import TickwireProtocol

runFuzzer { start, count in
    guard let start else { return 0 }
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    let token = String(decoding: bytes, as: UTF8.self)
    switch verifier.verify(token, now: now) {
    case .success(let verified):
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        let signingInput = parts.count == 3 ? "\(parts[0]).\(parts[1])" : ""
        fuzzCheck(signedInputs.contains(signingInput), "forgery accepted for \(verified.subject): \(token)")
    case .failure(let rejection):
        fuzzCheck(!rejection.message.isEmpty, "a refusal without a message")
    }
    return 0
}
