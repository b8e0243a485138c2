import NIOConcurrencyHelpers

/// The verification keys in force, replaceable while the gateway runs (a JWKS refreshed from
/// its URL). Read once per token verified; replaced when a fetch brings a new set.
public final class JWTKeyStore: Sendable {
    private struct State {
        var keys: JWTKeySet
        var unknownKeyIDSeen: (@Sendable (String) -> Void)?
    }
    private let state: NIOLockedValueBox<State>

    public init(_ keys: JWTKeySet = JWTKeySet()) {
        state = NIOLockedValueBox(State(keys: keys))
    }

    public var keys: JWTKeySet { state.withLockedValue { $0.keys } }

    public func replace(with keys: JWTKeySet) {
        state.withLockedValue { $0.keys = keys }
    }

    /// Called, off the verifying thread's critical path, with each `kid` no key has (a rotation
    /// the gateway has not seen yet).
    public func onUnknownKeyID(_ handler: @escaping @Sendable (String) -> Void) {
        state.withLockedValue { $0.unknownKeyIDSeen = handler }
    }

    func unknownKeyIDSeen(_ keyID: String) {
        state.withLockedValue { $0.unknownKeyIDSeen }?(keyID)
    }
}
