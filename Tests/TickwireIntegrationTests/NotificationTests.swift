import Testing
import TickwireProtocol

@Suite(.timeLimit(.minutes(1)))
struct Notifications {
    func subscribe(_ socket: TestWebSocket, user: String, since: String? = nil) async throws -> Event {
        let sinceField = since.map { #","since":"\#($0)""# } ?? ""
        try await socket.send(#"{"action":"subscribe","channel":"notifications","user_id":"\#(user)"\#(sinceField)}"#)
        return try await socket.expectEvent("subscribed")
    }

    @Test func everyConnectionOfTheUserReceivesAndNoOtherUser() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let phone = try await server.connectReady(user: "alice")
        let laptop = try await server.connectReady(user: "alice")
        let bob = try await server.connectReady(user: "bob")
        for socket in [phone, laptop] { _ = try await subscribe(socket, user: "alice") }
        let bobSubscribed = try await subscribe(bob, user: "bob")
        #expect(bobSubscribed.data["user_id"] == "bob")

        let id = try await server.publish(user: "alice", event: "transaction_update", data: JSONText(text: #"""
            {"transaction_id":"t1","type":"receive","amount":"1.5","symbol":"ETH","status":"confirmed","confirmations":12,"from_address":"0xabc","tx_hash":"0xdef","memo":"extra fields pass through"}
            """#))
        for socket in [phone, laptop] {
            let event = try await socket.expectEvent("transaction_update")
            #expect(event.id == id)
            #expect(event.data["amount"] == "1.5")
            #expect(event.data["confirmations"] == 12)
            #expect(event.data["memo"] == "extra fields pass through")
        }
        // Bob's next notification is his own: Alice's never reached him.
        let bobsOwn = try await server.publish(user: "bob", event: "balance_update", data: JSONText(text: #"""
            {"wallet_id":"w1","balance":"5.25","balance_usd":"168000.00","symbol":"BTC"}
            """#))
        let received = try await bob.nextEvent()
        #expect(received.name == "balance_update" && received.id == bobsOwn)
    }

    @Test func subscribingToAnotherUsersNotificationsIsForbidden() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let alice = try await server.connectReady(user: "alice")
        try await alice.send(#"{"action":"subscribe","channel":"notifications","user_id":"bob","request_id":"x"}"#)
        let error = try await alice.nextEvent()
        #expect(error.errorCode == "FORBIDDEN" && error.data["request_id"] == "x")
        _ = try await server.publish(user: "bob")
        try await alice.expectNoEvent("notification", for: .milliseconds(300))
    }

    @Test func unsubscribeStopsDelivery() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let alice = try await server.connectReady(user: "alice")
        _ = try await subscribe(alice, user: "alice")
        try await alice.send(#"{"action":"unsubscribe","channel":"notifications","user_id":"alice"}"#)
        let unsubscribed = try await alice.expectEvent("unsubscribed")
        #expect(unsubscribed.data["channel"] == "notifications" && unsubscribed.data["user_id"] == "alice")
        _ = try await server.publish(user: "alice")
        try await alice.expectNoEvent("notification", for: .milliseconds(300))
    }

    @Test func sinceReplaysWhatWasMissedThenContinuesLive() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        var ids: [String] = []
        for index in 0..<5 { ids.append(try await server.publish(user: "alice", data: .notification("n\(index)"))) }
        #expect(ids == ids.sorted { StreamID($0)! < StreamID($1)! }, "ids strictly increase")
        let socket = try await server.connectReady(user: "alice")
        let subscribed = try await subscribe(socket, user: "alice", since: ids[1])
        #expect(subscribed.data["recovered"] == true)
        var replayed: [String] = []
        for _ in 0..<3 { replayed.append(try await socket.expectEvent("notification").id ?? "") }
        #expect(replayed == Array(ids[2...]))
        let live = try await server.publish(user: "alice")
        #expect(try await socket.expectEvent("notification").id == live)
    }

    @Test func withoutSinceNothingIsReplayed() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        _ = try await server.publish(user: "alice")
        let socket = try await server.connectReady(user: "alice")
        #expect(try await subscribe(socket, user: "alice").data["recovered"] == false)
        try await socket.expectNoEvent("notification", for: .milliseconds(300))
    }

    @Test func sinceOlderThanWhatIsRetainedIsNotRecovered() async throws {
        let server = try await TestServer.start(["--feed", "none", "--notification-capacity", "3"])
        var ids: [String] = []
        for index in 0..<6 { ids.append(try await server.publish(user: "alice", data: .notification("n\(index)"))) }
        let socket = try await server.connectReady(user: "alice")
        let subscribed = try await subscribe(socket, user: "alice", since: ids[0])
        #expect(subscribed.data["recovered"] == false)
        var replayed: [String] = []
        for _ in 0..<3 { replayed.append(try await socket.expectEvent("notification").id ?? "") }
        #expect(replayed == Array(ids[3...]), "what is retained still arrives")
    }

    /// Events published continuously while a client resubscribes with `since`: the
    /// client sees every id after `since` exactly once, in order.
    @Test func replayJoinsLiveWithNoGapAndNoDuplicate() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let first = try await server.publish(user: "alice")
        let publisher = Task {
            var ids: [String] = []
            for index in 0..<150 {
                ids.append(try await server.publish(user: "alice", data: .notification("p\(index)")))
            }
            return ids
        }
        try await Task.sleep(for: .milliseconds(30))
        let socket = try await server.connectReady(user: "alice")
        _ = try await subscribe(socket, user: "alice", since: first)
        let published = try await publisher.value
        var received: [String] = []
        while received.last != published.last {
            let event = try await socket.expectEvent("notification")
            received.append(event.id ?? "")
        }
        #expect(received == published)
    }

    @Test(arguments: [
        (#"{"user_id":"a","event":"notification","data":{"notification_id":"n","type":"t","title":"T","message":"M"}}"#, "data.priority"),
        (#"{"user_id":"a","event":"transaction_update","data":{"transaction_id":"t","type":"send","amount":1.5,"symbol":"ETH","status":"pending","confirmations":0,"from_address":"a","tx_hash":"h"}}"#, "data.amount"),
        (#"{"user_id":"a","event":"balance_update","data":{"wallet_id":"w","balance":"1","balance_usd":"2","symbol":"BT-C"}}"#, "data.symbol"),
        (#"{"user_id":"a","event":"price_update","data":{}}"#, "event"),
        (#"{"event":"notification","data":{}}"#, "user_id"),
        (#"{"user_id":"a","event":"notification","data":[]}"#, "data"),
    ])
    func publishRefusesInvalidBodiesNamingTheField(body: String, field: String) async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let result = try await server.http(
            "POST", "/api/v1/publish", headers: [("Authorization", "Bearer \(TestServer.apiKey)")], body: body)
        #expect(result.status == 400)
        #expect(result.json?["error"]?.objectValue?["field"]?.stringValue == field, "\(result.body)")
    }

    @Test func publishNeedsTheAPIKey() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let body = #"{"user_id":"a","event":"notification","data":\#(JSONText.sampleNotification.text)}"#
        #expect(try await server.http("POST", "/api/v1/publish", body: body).status == 401)
        #expect(try await server.http("POST", "/api/v1/publish", headers: [("Authorization", "Bearer wrong")], body: body).status == 401)
        #expect(try await server.http("POST", "/api/v1/publish", headers: [("Authorization", "Bearer \(TestServer.apiKey)")], body: "{not json").status == 400)
    }

    /// A user offline for long comes back to 1000 stored events of 250-550 bytes (more than the
    /// 256 KiB pending bound in all). Read at full speed, they all arrive, in order, and the
    /// connection stays open: the replay follows the socket instead of queueing it all at once.
    @Test func aLargeSinceReplayReachesAClientThatReadsAtFullSpeed() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let anchor = try await server.publish(user: "alice")
        var ids: [String] = []
        for index in 0..<1000 {
            let padding = String(repeating: "x", count: 50 + (index * 37) % 300)
            ids.append(try await server.publish(user: "alice", data: JSONText(text: #"""
                {"notification_id":"n\#(index)","type":"deposit","title":"Deposit \#(index)","message":"\#(padding)","priority":"normal"}
                """#)))
        }
        let socket = try await server.connectReady(user: "alice")
        let subscribed = try await subscribe(socket, user: "alice", since: anchor)
        #expect(subscribed.data["recovered"] == true)
        var received: [String] = []
        while received.count < ids.count {
            let event = try await socket.nextEvent(timeout: .seconds(10))
            guard event.name == "notification", let id = event.id else {
                Issue.record("expected the replayed notifications, got \(event)")
                break
            }
            received.append(id)
        }
        #expect(received == ids)
        let live = try await server.publish(user: "alice")
        #expect(try await socket.expectEvent("notification").id == live)
        #expect(try await server.metric(#"tickwire_disconnects_total{code="4009"}"#) == 0)
    }
}
