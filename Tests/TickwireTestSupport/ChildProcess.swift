import Foundation

/// Waiting for child processes without trusting Foundation alone: on Linux, `Process` sometimes
/// never reaps a child that exited (it stays a zombie and `isRunning` stays true), which once
/// hung the test run. These helpers read /proc and reap the child themselves when needed.
public enum ChildProcess {
    /// True while the process exists and has not exited (a zombie has exited).
    public static func isAlive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        let state = stat[stat.index(after: close)...].drop(while: { $0 == " " }).first
        return state != "Z" && state != "X"
    }

    /// The CPU time the process has used so far (user and system), from /proc.
    public static func cpuTime(_ pid: Int32) -> Duration? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // After the command's ")": state is field 3, utime and stime are fields 14 and 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Int64(fields[11]), let system = Int64(fields[12]) else { return nil }
        let ticks = Int64(sysconf(Int32(_SC_CLK_TCK)))
        return .milliseconds((user + system) * 1000 / max(1, ticks))
    }

    /// Waits until `process` exits and returns its exit status, or throws after `timeout`.
    public static func waitForExit(_ process: Process, timeout: Duration) async throws -> Int32 {
        let pid = process.processIdentifier
        let deadline = ContinuousClock.now + timeout
        var zombieSince: ContinuousClock.Instant?
        while ContinuousClock.now < deadline {
            if !process.isRunning { return process.terminationStatus }
            if !isAlive(pid) {
                let since = zombieSince ?? .now
                zombieSince = since
                if ContinuousClock.now - since > .milliseconds(300) {
                    // Foundation did not reap it: do it here.
                    var status: Int32 = 0
                    if waitpid(pid, &status, WNOHANG) == pid {
                        return status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
                    }
                    if !process.isRunning { return process.terminationStatus }
                }
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw SupportFailure("process \(pid) still running after \(timeout)")
    }
}

extension ChildProcess {
    /// The blocking form, for synchronous helpers (a CLI run, `redis-cli`): polls, reaps if needed.
    public static func waitForExitBlocking(_ process: Process, timeout: Duration = .seconds(30)) throws -> Int32 {
        let pid = process.processIdentifier
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if !process.isRunning { return process.terminationStatus }
            if !isAlive(pid) {
                var status: Int32 = 0
                usleep(300_000)
                if !process.isRunning { return process.terminationStatus }
                if waitpid(pid, &status, WNOHANG) == pid {
                    return status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
                }
            }
            usleep(5_000)
        }
        throw SupportFailure("process \(pid) still running after \(timeout)")
    }
}
