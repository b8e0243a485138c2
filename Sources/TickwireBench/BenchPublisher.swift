import NIOConcurrencyHelpers
import NIOHTTP1
import TickwireHTTPClient
import TickwireProtocol
import TickwireRedis

/// Publishes stamped messages for `fanout` and `wallet`, through Tickwire's HTTP API
/// (`/api/v1/prices`, `/api/v1/publish`) or Nchan's publisher (`/pub/CHANNEL`), over a few
/// kept-alive connections.
final class BenchPublisher: Sendable {
    let plan: BenchPlan
    let connections: [HTTPConnection]
    /// With `publishRedisURL`: prices and notifications go through the broker's scripts instead of HTTP.
    let redis: RedisBroker?
    private let counter = NIOLockedValueBox(0)
    private let errors = NIOLockedValueBox(0)

    init(plan: BenchPlan, connections: [HTTPConnection], redis: RedisBroker?) {
        self.plan = plan
        self.connections = connections
        self.redis = redis
    }

    struct Outcome: Sendable {
        var published: Int
        var priceSequences: [UInt16: UInt32]
        var notificationsPublished: Int
        var errors: Int
    }

    /// `fanout`: one message on B0 every 1/rate seconds, for `duration`.
    func fanout() async -> Outcome {
        let start = ContinuousClock.now
        let total = Int(plan.publishRate * plan.duration)
        var sequence: UInt32 = 0
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<total {
                let due = start + .seconds(Double(index) / plan.publishRate)
                if due > .now { try? await Task.sleep(until: due) }
                sequence += 1
                let seq = sequence
                // Four pipelined connections, round-robin: a server's HTTP ingestion is not the thing
                // measured. The reordering this causes is small and the accounting tolerates it.
                group.addTask { await self.publishPrices([(0, seq)]) }
            }
        }
        return Outcome(published: total, priceSequences: [0: sequence], notificationsPublished: 0, errors: errors.withLockedValue { $0 })
    }

    /// `wallet`: each symbol moves once per `priceCadence` seconds, the symbols spread evenly over
    /// it as a real feed's updates are (or all at once with `priceBurst`); `notificationFraction` of
    /// users get a notification each second, in turn, spread over the second.
    func wallet() async -> Outcome {
        let start = ContinuousClock.now
        let perSecond = max(1, Int((Double(plan.connections) * plan.notificationFraction).rounded()))
        let end = start + .seconds(plan.duration)
        let symbols = BenchPlan.walletSymbolCount
        var symbolSequences = [UInt32](repeating: 0, count: symbols)
        // When each symbol moves next.
        var due = (0..<symbols).map { symbol in
            start + .seconds(plan.priceBurst ? 0 : plan.priceCadence * Double(symbol) / Double(symbols))
        }
        var notifications = 0
        var published = 0
        var userSequences: [Int: UInt32] = [:]
        await withTaskGroup(of: Void.self) { group in
            var tick = start
            var slice = 0
            while tick < end {
                var moving: [(UInt16, UInt32)] = []
                for symbol in 0..<symbols where due[symbol] <= tick {
                    symbolSequences[symbol] += 1
                    moving.append((UInt16(symbol), symbolSequences[symbol]))
                    due[symbol] = due[symbol] + .seconds(plan.priceCadence)
                }
                if !moving.isEmpty {
                    published += moving.count
                    group.addTask { await self.publishPrices(moving) }
                }
                // This 10 ms slice's share of the second's notifications.
                let count = perSecond * (slice % 100 + 1) / 100 - perSecond * (slice % 100) / 100
                slice += 1
                for _ in 0..<count {
                    let user = notifications % plan.connections
                    notifications += 1
                    let sequence = (userSequences[user] ?? 0) + 1
                    userSequences[user] = sequence
                    group.addTask { await self.publishNotification(user: user, sequence: sequence) }
                }
                published += count
                tick = tick + .milliseconds(10)
                try? await Task.sleep(until: tick)
            }
        }
        var sequences: [UInt16: UInt32] = [:]
        for symbol in 0..<symbols { sequences[UInt16(symbol)] = symbolSequences[symbol] }
        return Outcome(published: published, priceSequences: sequences, notificationsPublished: notifications, errors: errors.withLockedValue { $0 })
    }

    private var nextConnection: HTTPConnection {
        let index = counter.withLockedValue { value in
            value += 1
            return value
        }
        return connections[index % connections.count]
    }

    private func publishPrices(_ items: [(stream: UInt16, sequence: UInt32)], on connection: HTTPConnection? = nil) async {
        let sent = Timestamp.nowMicroseconds()
        if let redis {
            let prices = items.map { item in
                PriceUpdate(
                    symbol: "B\(item.stream)", priceUSD: "100.00", change24h: "0.0", volume24h: nil, timestamp: .now(),
                    extra: ["bench": .string(BenchStamp.text(stream: item.stream, sequence: item.sequence, sentMicroseconds: sent))])
            }
            do { try await redis.publish(prices: prices) } catch { errors.withLockedValue { $0 += 1 } }
            return
        }
        switch plan.target {
        case .tickwire:
            let prices = items.map { item in
                #"{"symbol":"B\#(item.stream)","price_usd":"100.00","price_change_24h":"0.0","bench":"\#(BenchStamp.text(stream: item.stream, sequence: item.sequence, sentMicroseconds: sent))"}"#
            }
            await send("/api/v1/prices", #"{"prices":[\#(prices.joined(separator: ","))]}"#, on: connection)
        case .nchan:
            for item in items {
                let stamp = BenchStamp.text(stream: item.stream, sequence: item.sequence, sentMicroseconds: Timestamp.nowMicroseconds())
                await send("/pub/B\(item.stream)", Self.padded(stamp: stamp, to: plan.nchanPayloadBytes), on: connection)
            }
        }
    }

    private func publishNotification(user: Int, sequence: UInt32) async {
        let stamp = BenchStamp.text(stream: BenchPlan.notificationStream, sequence: sequence, sentMicroseconds: Timestamp.nowMicroseconds())
        if let redis {
            let data: JSONObject = [
                "notification_id": .string("n\(sequence)"), "type": "bench", "title": "Bench", "message": "A benchmark notification",
                "priority": "normal", "bench": .string(stamp),
            ]
            do { _ = try await redis.publish(notification: .notification, data: data, userID: BenchPlan.user(user)) } catch {
                errors.withLockedValue { $0 += 1 }
            }
            return
        }
        switch plan.target {
        case .tickwire:
            await send("/api/v1/publish", #"{"user_id":"\#(BenchPlan.user(user))","event":"notification","data":{"notification_id":"n\#(sequence)","type":"bench","title":"Bench","message":"A benchmark notification","priority":"normal","bench":"\#(stamp)"}}"#)
        case .nchan:
            await send("/pub/\(BenchPlan.user(user))", Self.padded(stamp: stamp, to: plan.nchanPayloadBytes + 100))
        }
    }

    private func send(_ path: String, _ body: String, on connection: HTTPConnection? = nil) async {
        var headers: [(String, String)] = []
        if plan.target == .tickwire { headers.append(("Authorization", "Bearer \(plan.apiKey)")) }
        do {
            let response = try await (connection ?? nextConnection).request(method: .POST, path: path, headers: headers, body: Array(body.utf8))
            if response.status >= 300 { errors.withLockedValue { $0 += 1 } }
        } catch {
            errors.withLockedValue { $0 += 1 }
        }
    }

    /// A JSON message of `size` bytes carrying the stamp (Nchan delivers the body as the frame).
    static func padded(stamp: String, to size: Int) -> String {
        let base = #"{"bench":"\#(stamp)","pad":""}"#
        return #"{"bench":"\#(stamp)","pad":"\#(String(repeating: "x", count: max(0, size - base.utf8.count)))"}"#
    }

    /// The size of a Tickwire `price_update` frame as the fanout sends it, for matching Nchan's messages.
    public static var tickwirePriceFrameBytes: Int {
        let price = PriceUpdate(
            symbol: "B0", priceUSD: "100.00", change24h: "0.0", volume24h: nil, timestamp: .now(),
            extra: ["bench": .string(BenchStamp.text(stream: 0, sequence: 12345, sentMicroseconds: Timestamp.nowMicroseconds()))])
        return ServerMessage.priceUpdate(price).encode(sentAt: .now()).count
    }
}

/// Frame sizes the comparison with Nchan matches.
public enum BenchPublisherSizes {
    public static var tickwirePriceFrameBytes: Int { BenchPublisher.tickwirePriceFrameBytes }
}
