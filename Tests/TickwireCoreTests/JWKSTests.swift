import NIOConcurrencyHelpers
import NIOCore
import Testing
import TickwireProtocol

@testable import TickwireCore

@Suite struct JWKSRefreshing {
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
    var schedule = JWKSRefreshSchedule(minimumInterval: .seconds(60), maximumInterval: .hours(24), defaultInterval: .hours(1))

    @Test mutating func maxAgeSetsTheNextFetchWithinBounds() {
        #expect(schedule.fetched(maxAge: .seconds(600), at: start) == start + .seconds(600))
        #expect(schedule.fetched(maxAge: .seconds(15), at: start) == start + .seconds(60), "raised to the minimum")
        #expect(schedule.fetched(maxAge: .hours(48), at: start) == start + .hours(24), "lowered to the maximum")
        #expect(schedule.fetched(maxAge: nil, at: start) == start + .hours(1))
    }

    @Test mutating func failuresRetrySoonerButNeverLaterThanTheInterval() {
        _ = schedule.fetched(maxAge: .seconds(120), at: start)
        #expect(schedule.failed(at: start) == start + .seconds(1))
        #expect(schedule.failed(at: start) == start + .seconds(2))
        #expect(schedule.failed(at: start) == start + .seconds(4))
        for _ in 0..<10 { _ = schedule.failed(at: start) }
        #expect(schedule.failed(at: start) == start + .seconds(120))
        #expect(schedule.fetched(maxAge: .seconds(120), at: start) == start + .seconds(120))
        #expect(schedule.failed(at: start) == start + .seconds(1), "a success resets the backoff")
    }

    @Test mutating func anUnknownKidFetchesAtMostOncePerMinimumInterval() {
        #expect(schedule.shouldFetchForUnknownKeyID(at: start), "nothing fetched yet")
        schedule.attempting(at: start)
        #expect(!schedule.shouldFetchForUnknownKeyID(at: start + .seconds(59)))
        #expect(schedule.shouldFetchForUnknownKeyID(at: start + .seconds(60)))
    }

    /// Before the first fetch there are no keys: the token is refused, and the refresher is told.
    @Test func anEmptyStoreRefusesAndAsksForKeys() {
        let store = JWTKeyStore()
        let asked = NIOLockedValueBox<[String]>([])
        store.onUnknownKeyID { kid in asked.withLockedValue { $0.append(kid) } }
        let verifier = JWTVerifier(keyStore: store)
        let token = HS256TokenSigner(secret: String(repeating: "k", count: 32)).sign(
            claims: ["sub": "alice", "exp": 9_999_999_999], header: ["alg": "HS256", "kid": "k1"])
        guard case .failure(.invalid) = verifier.verify(token, now: .now()) else { Issue.record("accepted"); return }
        #expect(asked.withLockedValue { $0 } == ["k1"])
        var keys = JWTKeySet()
        keys.add(.hmac(Array(String(repeating: "k", count: 32).utf8)), keyID: "k1")
        store.replace(with: keys)
        #expect((try? verifier.verify(token, now: .now()).get())?.subject == "alice")
    }
}
