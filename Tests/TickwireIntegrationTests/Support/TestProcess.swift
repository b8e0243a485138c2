import Foundation

/// Any `tickwire` subcommand as a child process (the feed, say), or another program a test
/// drives (node, curl, openssl), with its output collected.
final class TestProcess: @unchecked Sendable {
    let process: Process
    private let output: OutputCollector

    /// `openFilesLimit` starts it under `prlimit --nofile` (hard and soft), as a small host would.
    static func launch(
        _ arguments: [String], environment: [String: String] = [:], openFilesLimit: Int? = nil, program: String? = nil
    ) throws -> TestProcess {
        let process = Process()
        let executable = program.map { $0.hasPrefix("/") ? $0 : Executables.find($0) ?? "/usr/bin/\($0)" } ?? TestServer.binary.path
        if let openFilesLimit {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
            process.arguments = ["--nofile=\(openFilesLimit):\(openFilesLimit)", executable] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: executable)
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

    /// Runs a program to its end: its status and output.
    static func run(
        _ program: String?, _ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(30)
    ) async throws -> (status: Int32, stdout: String, stderr: String) {
        let child = try launch(arguments, environment: environment, program: program)
        let status = try await child.waitForExit(timeout: timeout)
        // The pipes may hand over their last bytes a moment after the exit.
        try await Task.sleep(for: .milliseconds(50))
        return (status, child.stdout, child.stderr)
    }
}
