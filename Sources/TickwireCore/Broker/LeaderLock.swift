/// A lock with a time to live, held by at most one feed replica: the leader.
public protocol LeaderLock: Sendable {
    /// Takes the lock if nobody holds it. True when this holder got it.
    func acquire(holder: String, ttl: Duration) async throws -> Bool
    /// Extends the lock if this holder still owns it. False when it was lost.
    func renew(holder: String, ttl: Duration) async throws -> Bool
    /// Gives the lock back if this holder owns it.
    func release(holder: String) async throws
}
