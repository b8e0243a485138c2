import Foundation
import NIOConcurrencyHelpers
import Testing
import TickwireProtocol

@testable import TickwireCore

/// What the broker hears from the interest tracker, and when.
@Suite(.timeLimit(.minutes(1)))
struct InterestTracking {
    /// Records each `setInterest`, and whether another thread could read the tracker meanwhile:
    /// the Redis broker delivers a user's events with its own lock held and reads the tracker
    /// from there, so a tracker that held its lock while telling the broker would deadlock.
    final class ListeningBroker: Broker, @unchecked Sendable {
        let heard = NIOLockedValueBox<[String]>([])
        let readableWhileTold = NIOLockedValueBox<[Bool]>([])
        weak var tracker: InterestTracker?

        func setInterest(_ channel: BrokerChannel, active: Bool) {
            heard.withLockedValue { $0.append("\(channel) \(active)") }
            guard let tracker else { return }
            let read = DispatchSemaphore(value: 0)
            Thread { _ = tracker.loops(interestedIn: channel); read.signal() }.start()
            readableWhileTold.withLockedValue { $0.append(read.wait(timeout: .now() + 2) == .success) }
        }

        func start(delegate: any BrokerDelegate) async {}
        func shutdown() async {}
        var isReady: Bool { true }
        func publish(prices: [PriceUpdate]) async throws {}
        func latestPrices() async throws -> [PriceUpdate] { [] }
        func publish(notification kind: NotificationKind, data: JSONObject, userID: String) async throws
            -> NotificationEnvelope
        {
            throw CancellationError()  // not used here
        }
        func replay(userID: String, after since: StreamID) async throws -> NotificationReplay {
            NotificationReplay(events: [], recovered: true)
        }
    }

    @Test func theBrokerHearsTheFirstLoopAndTheLastInOrder() {
        let tracker = InterestTracker()
        let broker = ListeningBroker()
        tracker.attach(broker)
        let alice = BrokerChannel.notifications(userID: "alice")
        tracker.change(alice, loop: 0, active: true)
        tracker.change(alice, loop: 1, active: true)
        tracker.change(alice, loop: 0, active: false)
        tracker.change(alice, loop: 1, active: false)
        tracker.change(alice, loop: 1, active: true)
        #expect(broker.heard.withLockedValue { $0 } == ["\(alice) true", "\(alice) false", "\(alice) true"])
        #expect(tracker.loops(interestedIn: alice) == [1])
    }

    @Test func interestGatheredBeforeTheBrokerIsReplayedToIt() {
        let tracker = InterestTracker()
        tracker.change(.notifications(userID: "bob"), loop: 2, active: true)
        let broker = ListeningBroker()
        tracker.attach(broker)
        #expect(broker.heard.withLockedValue { $0 } == ["\(BrokerChannel.notifications(userID: "bob")) true"])
    }

    @Test func theTrackerStaysReadableWhileItTellsTheBroker() {
        let tracker = InterestTracker()
        let broker = ListeningBroker()
        broker.tracker = tracker
        tracker.attach(broker)
        tracker.change(.notifications(userID: "carol"), loop: 0, active: true)
        tracker.change(.notifications(userID: "carol"), loop: 0, active: false)
        #expect(broker.readableWhileTold.withLockedValue { $0 } == [true, true])
    }
}
