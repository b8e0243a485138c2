import Foundation

/// Any `tickwire` subcommand as a child process (the feed, say), with its output collected.
final class TestProcess: @unchecked Sendable {
    let process: Process
    private let output: OutputCollector

    /// `openFilesLimit` starts it under `prlimit --nofile` (hard and soft), as a small host would.
    static func launch(_ arguments: [String], environment: [String: String] = [:], openFilesLimit: Int? = nil) throws -> TestProcess {
        let process = Process()
        if let openFilesLimit {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
            process.arguments = ["--nofile=\(openFilesLimit):\(openFilesLimit)", TestServer.binary.path] + arguments
        } else {
            process.executableURL = TestServer.binary
            process.arguments = arguments
        }
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("TICKWIRE_") && $0.key != "REDIS_URL" }
        env.merge(environment) { $1 }
        process.environment = env
        let output = OutputCollector()
        process.standardOutput = output.stdoutPipe
        process.standardError = output.stderrPipe
        try process.run()
        return TestProcess(process: process, output: output)
    }

    /// A `tickwire feed` on `redisURL`, publishing every `interval` with a short leader lock.
    static func feed(redisURL: String, interval: String = "0.2", extra: [String] = []) throws -> TestProcess {
        try launch(["feed", "--redis-url", redisURL, "--price-interval", interval, "--feed-tick", "0.1",
                    "--leader-ttl", "2", "--log-level", "debug"] + extra)
    }

    private init(process: Process, output: OutputCollector) {
        self.process = process
        self.output = output
    }

    deinit {
        if ChildProcess.isAlive(process.processIdentifier) { kill(process.processIdentifier, SIGKILL) }
    }

    var stdout: String { output.stdout }
    var stderr: String { output.stderr }
    /// The port of a `serve` that printed `listening on ws://HOST:PORT/ws`.
    var listeningPort: Int? { output.listeningPort }
    var isLeader: Bool { stderr.contains("feed became the leader") }

    func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    var cpuTime: Duration? { ChildProcess.cpuTime(process.processIdentifier) }

    func waitForExit(timeout: Duration) async throws -> Int32 {
        try await ChildProcess.waitForExit(process, timeout: timeout)
    }
}
