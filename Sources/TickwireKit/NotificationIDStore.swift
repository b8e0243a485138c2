import NIOConcurrencyHelpers

#if canImport(Darwin)
import Foundation
#endif

/// Where the client keeps the id of the last notification it delivered, per gateway and user, so
/// that the next subscription asks for what came after it: after a reconnect, and after an app
/// relaunch when the store persists.
public protocol NotificationIDStore: Sendable {
    func lastID(forKey key: String) -> String?
    func setLastID(_ id: String?, forKey key: String)
}

/// Kept in memory: catches up across reconnects, not across relaunches. The default.
public final class InMemoryNotificationIDStore: NotificationIDStore {
    private let ids = NIOLockedValueBox<[String: String]>([:])

    public init() {}

    public func lastID(forKey key: String) -> String? { ids.withLockedValue { $0[key] } }

    public func setLastID(_ id: String?, forKey key: String) { ids.withLockedValue { $0[key] = id } }
}

#if canImport(Darwin)
/// `UserDefaults`: survives relaunches, so an app catches up on what came while it was not running.
public struct UserDefaultsNotificationIDStore: NotificationIDStore, @unchecked Sendable {
    // UserDefaults is thread-safe (Apple documents it so), though not marked Sendable.
    private let defaults: UserDefaults

    public init(_ defaults: UserDefaults = .standard) {
        self.defaults = defaults
    }

    public func lastID(forKey key: String) -> String? { defaults.string(forKey: key) }

    public func setLastID(_ id: String?, forKey key: String) { defaults.set(id, forKey: key) }
}
#endif

extension NotificationIDStore where Self == InMemoryNotificationIDStore {
    public static var inMemory: InMemoryNotificationIDStore { InMemoryNotificationIDStore() }
}
