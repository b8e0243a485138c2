import Dispatch

/// Runs blocking work (waiting for a child process, reading its output to the end) on a Dispatch
/// thread. On the cooperative pool it would hold one of its threads (two on a 2-core machine),
/// and every other test's tasks would wait: timeouts everywhere.
public func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            continuation.resume(with: Result { try body() })
        }
    }
}
