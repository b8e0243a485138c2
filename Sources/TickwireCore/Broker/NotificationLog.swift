import DequeModule
import TickwireProtocol

/// The in-memory notification store: the newest `capacity` events per user, none
/// older than `retentionMilliseconds`, with ids strictly increasing across the process.
///
/// `recovered` is true only when nothing after `since` can have been lost: `since` must
/// not be older than the newest event dropped by the cap or the age limit, nor older
/// than this process (a restart forgets everything before it).
public struct NotificationLog: Sendable {
    struct UserLog {
        var events: Deque<NotificationEnvelope> = []
        /// Everything at or below this id may have been dropped.
        var coveredAfter: StreamID
    }

    public let capacity: Int
    public let retentionMilliseconds: Int64
    private let origin: StreamID
    private var lastID: StreamID
    private var users: [String: UserLog] = [:]

    public init(capacity: Int = 1000, retentionMilliseconds: Int64 = 7 * 86_400_000, now: Timestamp = .now()) {
        self.capacity = capacity
        self.retentionMilliseconds = retentionMilliseconds
        self.origin = StreamID(milliseconds: UInt64(max(0, now.millisecondsSinceEpoch)), sequence: 0)
        self.lastID = origin
    }

    public mutating func append(
        kind: NotificationKind, data: JSONObject, userID: String, now: Timestamp
    ) -> NotificationEnvelope {
        lastID = lastID.next(atLeast: UInt64(max(0, now.millisecondsSinceEpoch)))
        let envelope = NotificationEnvelope(id: lastID, kind: kind, data: data, timestamp: now)
        var log = users[userID] ?? UserLog(coveredAfter: origin)
        log.events.append(envelope)
        if log.events.count > capacity, let dropped = log.events.popFirst() {
            log.coveredAfter = max(log.coveredAfter, dropped.id)
        }
        Self.expire(&log, now: now, retention: retentionMilliseconds)
        users[userID] = log
        return envelope
    }

    public mutating func replay(userID: String, after since: StreamID, now: Timestamp) -> NotificationReplay {
        guard var log = users[userID] else {
            return NotificationReplay(events: [], recovered: since >= origin)
        }
        Self.expire(&log, now: now, retention: retentionMilliseconds)
        users[userID] = log
        return NotificationReplay(events: log.events.filter { $0.id > since }, recovered: since >= log.coveredAfter)
    }

    static func expire(_ log: inout UserLog, now: Timestamp, retention: Int64) {
        let cutoff = now.millisecondsSinceEpoch - retention
        while let first = log.events.first, first.timestamp.millisecondsSinceEpoch < cutoff {
            log.coveredAfter = max(log.coveredAfter, first.id)
            log.events.removeFirst()
        }
    }
}
