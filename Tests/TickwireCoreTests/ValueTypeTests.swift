import Testing
import TickwireProtocol

@testable import TickwireCore

@Suite struct PriceWindows {
    // One fixed timestamp: two calls to .now() may fall in different milliseconds.
    let pricedAt = Timestamp.now()

    func price(_ value: String) -> PriceUpdate {
        PriceUpdate(symbol: "BTC", priceUSD: value, change24h: "0", volume24h: nil, timestamp: pricedAt)
    }

    @Test func theFirstPriceGoesAtOnceAndTheNewestHeldOneWhenTheWindowOpens() {
        var window = PriceWindow(intervalNanoseconds: 100)
        #expect(window.offer(price("1"), now: 0) == .release(price("1")))
        #expect(window.offer(price("2"), now: 10) == .hold(deadline: 100))
        #expect(window.offer(price("3"), now: 20) == .hold(deadline: nil), "one timer per window")
        #expect(window.windowOpened(now: 100) == price("3"), "latest wins")
        #expect(window.offer(price("4"), now: 150) == .hold(deadline: 200))
        #expect(window.windowOpened(now: 200) == price("4"))
        #expect(window.windowOpened(now: 300) == nil)
        #expect(window.offer(price("5"), now: 400) == .release(price("5")))
    }

    @Test func aZeroIntervalReleasesEverything() {
        var window = PriceWindow(intervalNanoseconds: 0)
        for index in 0..<5 { #expect(window.offer(price("\(index)"), now: 7) == .release(price("\(index)"))) }
    }
}

@Suite struct SlidingWindows {
    @Test func countsExactlyWithinTheWindow() {
        var limit = SlidingWindowLimit(limit: 3, windowNanoseconds: 100)
        let first = [limit.record(now: 0), limit.record(now: 10), limit.record(now: 20), limit.record(now: 99)]
        #expect(first == [true, true, true, false])
        let later = [limit.record(now: 100), limit.record(now: 105)]
        #expect(later == [true, false], "the event at 0 left the window at 100")
        #expect(limit.count(now: 105) == 3)
    }

    @Test func aSuspensionOutlastsTheWindow() {
        var limit = SuspendingLimit(limit: 1, windowNanoseconds: 10, suspensionNanoseconds: 5_000_000)
        let decisions = [limit.check(now: 0), limit.check(now: 1), limit.check(now: 2_000_001), limit.check(now: 5_000_001)]
        #expect(decisions == [.allowed, .refused(retryAfterMilliseconds: 5), .refused(retryAfterMilliseconds: 3), .allowed])
    }
}

@Suite struct SymbolSets {
    @Test func insertRemoveIterateAcrossWords() {
        var set = SymbolSet()
        let inserted = [set.insert(3), set.insert(70), set.insert(64), set.insert(3)]
        #expect(inserted == [true, true, true, false])
        #expect(Array(set) == [3, 64, 70] && set.count == 3)
        let removed = [set.remove(64), set.remove(64)]
        #expect(removed == [true, false])
        #expect(set.contains(70) && !set.contains(64) && !set.contains(500))
        set.removeAll()
        #expect(set.isEmpty && Array(set).isEmpty)
    }
}

@Suite struct NotificationLogs {
    let start = Timestamp(millisecondsSinceEpoch: 1_000_000)

    @Test func idsIncreaseAndReplayReturnsWhatFollowsSince() {
        var log = NotificationLog(capacity: 10, now: start)
        let ids = (0..<4).map { _ in log.append(kind: .notification, data: [:], userID: "u", now: start).id }
        #expect(ids == ids.sorted() && Set(ids).count == 4)
        let replay = log.replay(userID: "u", after: ids[1], now: start)
        #expect(replay.events.map(\.id) == Array(ids[2...]) && replay.recovered)
    }

    @Test func theCapAndTheAgeLimitMakeOldSincesUnrecoverable() {
        var log = NotificationLog(capacity: 2, retentionMilliseconds: 1000, now: start)
        let ids = (0..<4).map { _ in log.append(kind: .notification, data: [:], userID: "u", now: start).id }
        // ids[0] and ids[1] were dropped by the cap: after ids[0], ids[1] is missing.
        #expect(!log.replay(userID: "u", after: ids[0], now: start).recovered)
        let fromLastDropped = log.replay(userID: "u", after: ids[1], now: start)
        #expect(fromLastDropped.recovered && fromLastDropped.events.map(\.id) == Array(ids[2...]))
        let later = start.adding(milliseconds: 5000)
        let afterExpiry = log.replay(userID: "u", after: ids[2], now: later)
        #expect(afterExpiry.events.isEmpty && !afterExpiry.recovered)
    }

    @Test func aSinceFromBeforeThisProcessIsNotRecovered() {
        var log = NotificationLog(now: start)
        let before = StreamID(milliseconds: 5, sequence: 0)
        #expect(!log.replay(userID: "nobody", after: before, now: start).recovered)
        _ = log.append(kind: .notification, data: [:], userID: "u", now: start)
        #expect(!log.replay(userID: "u", after: before, now: start).recovered)
    }
}

@Suite struct JWTVerification {
    let secret = "s"
    var verifier: JWTVerifier {
        var keys = JWTKeySet()
        keys.add(.hmac(Array(secret.utf8)))
        return JWTVerifier(keys: keys, issuer: "iss", audience: "aud", leewaySeconds: 0)
    }

    @Test func acceptsAValidTokenAndReadsItsClaims() throws {
        let token = HS256TokenSigner(secret: secret).token(subject: "alice", lifetimeSeconds: 60, issuer: "iss", audience: "aud")
        let verified = try verifier.verify(token, now: .now()).get()
        #expect(verified.subject == "alice")
    }

    @Test func distinguishesMissingInvalidAndExpired() {
        #expect(verifier.verify(nil, now: .now()) == .failure(.missing))
        #expect(verifier.verify("", now: .now()) == .failure(.missing))
        let expired = HS256TokenSigner(secret: secret).token(
            subject: "a", lifetimeSeconds: 1, now: .now().adding(milliseconds: -10_000), issuer: "iss", audience: "aud")
        #expect(verifier.verify(expired, now: .now()) == .failure(.expired))
        guard case .failure(.invalid) = verifier.verify("x.y.z", now: .now()) else { Issue.record("expected invalid"); return }
    }

    @Test func parsesPEMKindsAndRefusesPrivateKeys() {
        #expect(throws: KeyLoadingError.self) { try JWTKeySet.parsePEM("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----") }
        #expect(throws: KeyLoadingError.self) { try JWTKeySet.parsePEM("garbage") }
        #expect(throws: KeyLoadingError.self) { try JWTKeySet.parseJWKS(Array(#"{"keys":[]}"#.utf8)) }
        #expect(throws: KeyLoadingError.self) { try JWTKeySet.parseJWKS(Array(#"{"keys":[{"kty":"EC","crv":"P-521"}]}"#.utf8)) }
    }

    /// RFC 7515 base64url: a signature re-spelled with `+`, `/` or padding decodes to the same
    /// bytes under a lenient decoder, so it would verify under a different string.
    @Test func refusesReEncodedTokens() {
        let signer = HS256TokenSigner(secret: secret)
        var token = ""
        // Find a token whose signature uses both URL-only characters, so each re-spelling changes it.
        for lifetime in 60... {
            token = signer.token(subject: "alice", lifetimeSeconds: Int64(lifetime), issuer: "iss", audience: "aud")
            let signature = token.split(separator: ".")[2]
            if signature.contains("-") && signature.contains("_") { break }
        }
        #expect((try? verifier.verify(token, now: .now()).get()) != nil)
        let respelled = [
            String(token.map { $0 == "-" ? "+" : $0 }),
            String(token.map { $0 == "_" ? "/" : $0 }),
            token + "=",
        ]
        for variant in respelled {
            guard case .failure(.invalid) = verifier.verify(variant, now: .now()) else {
                Issue.record("accepted a re-encoded token: \(variant)")
                continue
            }
        }
    }

    /// With named keys, a `kid` that names none of them is refused, never tried on the unnamed keys.
    @Test func refusesAnUnknownKidWhenTheKeysHaveKids() throws {
        var keys = JWTKeySet()
        keys.add(.hmac(Array("named".utf8)), keyID: "k1")
        keys.add(.hmac(Array("unnamed".utf8)))
        let verifier = JWTVerifier(keys: keys, leewaySeconds: 0)
        let claims: JSONObject = ["sub": "alice", "exp": .number(String(Timestamp.now().millisecondsSinceEpoch / 1000 + 60))]
        func token(_ secret: String, kid: String?) -> String {
            var header: JSONObject = ["alg": "HS256", "typ": "JWT"]
            if let kid { header["kid"] = .string(kid) }
            return HS256TokenSigner(secret: secret).sign(claims: claims, header: header)
        }
        #expect(verifier.verify(token("unnamed", kid: "k9"), now: .now()) == .failure(.invalid("unknown kid")))
        #expect(verifier.verify(token("unnamed", kid: "k1"), now: .now()) == .failure(.invalid("signature does not verify")))
        #expect((try? verifier.verify(token("named", kid: "k1"), now: .now()).get())?.subject == "alice")
        #expect((try? verifier.verify(token("unnamed", kid: nil), now: .now()).get())?.subject == "alice")
    }
}
