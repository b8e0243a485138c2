import Foundation
import Histogram
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import RESP
import TickwireHTTPClient
import TickwireRedis

/// Runs a scenario: starts the worker processes, waits until every client is subscribed,
/// measures the server, drives the publisher or the restart, collects and merges results.
public final class BenchCoordinator: @unchecked Sendable {
    public let plan: BenchPlan
    let serverPIDs: [Int32]
    let executable: String
    let label: String
    let command: String
    let log: @Sendable (String) -> Void

    private var workers: [WorkerProcess] = []

    public init(plan: BenchPlan, serverPIDs: [Int32], executable: String, label: String, command: String,
                log: @escaping @Sendable (String) -> Void) {
        self.plan = plan
        self.serverPIDs = serverPIDs
        self.executable = executable
        self.label = label
        self.command = command
        self.log = log
    }

    public func run() async throws -> BenchResult {
        let startedAt = ISO8601DateFormatter().string(from: Date())
        let before = ProcessMetrics.read(serverPIDs)
        try launchWorkers()
        defer { for worker in workers { worker.terminate() } }

        let connectDeadline = ContinuousClock.now + .seconds(Double(plan.connections) / Double(plan.connectRate) + 60)
        var lastCount = -1
        var stalledSince = ContinuousClock.now
        while true {
            try await Task.sleep(for: .seconds(1))
            let progress = workers.compactMap(\.progress)
            let subscribed = progress.reduce(0) { $0 + $1.everSubscribed }
            let failures = progress.reduce(into: [String: Int]()) { total, item in total.merge(item.failures, uniquingKeysWith: +) }
            log("connecting: \(subscribed)/\(plan.connections) subscribed\(failures.isEmpty ? "" : ", failures \(failures)")")
            if subscribed >= plan.connections { break }
            if subscribed != lastCount { lastCount = subscribed; stalledSince = .now }
            if ContinuousClock.now > connectDeadline || ContinuousClock.now - stalledSince > .seconds(30) {
                log("giving up waiting: \(subscribed) of \(plan.connections) subscribed")
                break
            }
        }
        try await Task.sleep(for: .seconds(2))  // let the server's memory settle
        let afterConnect = ProcessMetrics.read(serverPIDs)

        var outcome = BenchPublisher.Outcome(published: 0, priceSequences: [:], notificationsPublished: 0, errors: 0)
        var allBack: Double?
        var cpuStart = ProcessMetrics.read(serverPIDs)
        var cpuEnd: ProcessMetrics? = nil
        var publishingSeconds: Double? = nil
        var phaseStart = ContinuousClock.now
        switch plan.scenario {
        case .idle:
            log("holding \(plan.connections) connections for \(plan.duration) s")
            try await Task.sleep(for: .seconds(plan.duration))
        case .fanout, .wallet:
            let target = try HTTPClient.Target(url: plan.publishURL)
            var connections: [HTTPConnection] = []
            for _ in 0..<4 { connections.append(try await HTTPConnection.connect(target)) }
            var redis: RedisBroker? = nil
            if let url = plan.publishRedisURL {
                var logger = Logger(label: "bench")
                logger.logLevel = .error
                redis = RedisBroker(
                    configuration: try RedisConfiguration(url: url), settings: RedisBroker.Settings(),
                    eventLoop: MultiThreadedEventLoopGroup.singleton.next(), logger: logger)
            }
            let publisher = BenchPublisher(plan: plan, connections: connections, redis: redis)
            for worker in workers { worker.send(.measure) }
            try await Task.sleep(for: .milliseconds(200))
            cpuStart = ProcessMetrics.read(serverPIDs)
            phaseStart = .now
            log("publishing for \(plan.duration) s")
            outcome = plan.scenario == .fanout ? await publisher.fanout() : await publisher.wallet()
            publishingSeconds = (ContinuousClock.now - phaseStart).seconds
            for worker in workers { worker.send(.publishingEnded) }
            cpuEnd = ProcessMetrics.read(serverPIDs)
            try await waitForDeliveriesToSettle()
            for connection in connections { await connection.close() }
        case .reconnect:
            guard let restart = plan.restartCommand else { throw BenchError("reconnect needs --restart-command") }
            let dropped = workers.compactMap(\.progress).reduce(0) { $0 + $1.reconnected }
            log("restarting the server: \(restart)")
            phaseStart = .now
            try await Shell.run(restart)
            log("restart command finished after \((ContinuousClock.now - phaseStart).seconds) s")
            var lastReport = ContinuousClock.now
            // Done when every client has come back once: as many reconnections as clients, all subscribed.
            while ContinuousClock.now - phaseStart < .seconds(120) {
                try await Task.sleep(for: .milliseconds(100))
                let progress = workers.compactMap(\.progress)
                let subscribed = progress.reduce(0) { $0 + $1.subscribed }
                let reconnected = progress.reduce(0) { $0 + $1.reconnected } - dropped
                if ContinuousClock.now - lastReport > .seconds(1) {
                    lastReport = .now
                    log("reconnecting: \(subscribed) subscribed, \(reconnected) reconnected")
                }
                if reconnected >= plan.connections && subscribed >= plan.connections {
                    allBack = (ContinuousClock.now - phaseStart).seconds
                    break
                }
            }
            log(allBack.map { "all \(plan.connections) back after \($0) s" } ?? "not everyone came back within 120 s")
        }
        let phaseSeconds = publishingSeconds ?? (ContinuousClock.now - phaseStart).seconds
        if cpuEnd == nil { cpuEnd = ProcessMetrics.read(serverPIDs) }
        let afterPhase = ProcessMetrics.read(serverPIDs)

        for worker in workers { worker.send(.report(priceSequences: outcome.priceSequences, notificationsPublished: outcome.notificationsPublished)) }
        var reports: [WorkerReport] = []
        let deadline = ContinuousClock.now + .seconds(120)
        while reports.count < workers.count, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            reports = workers.compactMap(\.report)
        }
        for worker in workers where worker.report == nil {
            log("worker \(worker.index) did not report within 120 s: its \(worker.count) clients are missing from the result")
        }
        for worker in workers { worker.send(.exit) }

        var connect = Histogram<UInt64>(highestTrackableValue: 600_000, numberOfSignificantValueDigits: .three)
        var reconnect = connect
        var prices = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        var notifications = prices
        for report in reports {
            connect.add(report.connectTimes)
            reconnect.add(report.reconnectTimes)
            prices.add(report.priceLatency)
            notifications.add(report.notificationLatency)
        }
        var all = prices
        all.add(notifications)
        let delivered = reports.reduce(0) { $0 + $1.delivered }
        let measured = plan.scenario == .fanout || plan.scenario == .wallet
        let rss = afterConnect?.rssKB ?? afterPhase?.rssKB
        var result = BenchResult(
            scenario: plan.scenario.rawValue, target: plan.target.rawValue, label: label, connections: plan.connections,
            subscribed: reports.reduce(0) { $0 + $1.progress.everSubscribed }, workers: plan.workers,
            durationSeconds: phaseSeconds, connectMilliseconds: connect.totalCount > 0 ? Percentiles(connect) : nil,
            failures: reports.reduce(into: [String: Int]()) { $0.merge($1.progress.failures, uniquingKeysWith: +) },
            serverRSSBeforeKB: before?.rssKB, serverRSSAfterKB: rss, serverRSSPerConnectionBytes: nil, serverCPUPercent: nil,
            latencyMicroseconds: measured && all.totalCount > 0 ? Percentiles(all) : nil,
            priceLatencyMicroseconds: measured && prices.totalCount > 0 ? Percentiles(prices) : nil,
            notificationLatencyMicroseconds: measured && notifications.totalCount > 0 ? Percentiles(notifications) : nil,
            published: outcome.published, delivered: delivered,
            deliveredPerSecond: measured
                ? Double(reports.reduce(0) { $0 + $1.deliveredDuringPublishing }) / max(phaseSeconds, 0.001) : 0,
            expected: 0, lost: reports.reduce(0) { $0 + $1.lost }, duplicated: reports.reduce(0) { $0 + $1.duplicated },
            allBackSeconds: allBack, reconnectMilliseconds: reconnect.totalCount > 0 ? Percentiles(reconnect) : nil,
            command: command, startedAt: startedAt)
        if let before, let rss {
            result.serverRSSPerConnectionBytes = (rss - before.rssKB) * 1024 / max(1, plan.connections)
        }
        if let before, let afterConnect {
            result.serverCPUPerConnectionMicroseconds =
                (afterConnect.cpuSeconds - before.cpuSeconds) * 1_000_000 / Double(max(1, result.subscribed))
        }
        if let cpuStart, let cpuEnd {
            result.serverCPUPercent = (cpuEnd.cpuSeconds - cpuStart.cpuSeconds) / max(phaseSeconds, 0.001) * 100
        }
        if outcome.errors > 0 { result.failures["publish_errors"] = outcome.errors }
        return result
    }

    /// What is in flight when publishing ends still counts: waits until no worker has received
    /// anything for a second (at least 2 s, at most 120 s), so a server that fell behind shows
    /// it as latency, not as loss.
    private func waitForDeliveriesToSettle() async throws {
        let start = ContinuousClock.now
        var last = -1
        var quietSince = ContinuousClock.now
        while ContinuousClock.now - start < .seconds(120) {
            try await Task.sleep(for: .milliseconds(250))
            let delivered = workers.compactMap(\.progress).reduce(0) { $0 + $1.delivered }
            if delivered != last {
                last = delivered
                quietSince = .now
            } else if ContinuousClock.now - quietSince >= .seconds(1), ContinuousClock.now - start >= .seconds(2) {
                return
            }
        }
        log("deliveries still arriving 120 s after publishing ended")
    }

    private func launchWorkers() throws {
        let perWorker = (plan.connections + plan.workers - 1) / plan.workers
        var first = 0
        for index in 0..<plan.workers {
            let count = min(perWorker, plan.connections - first)
            guard count > 0 else { break }
            let assignment = WorkerAssignment(plan: plan, worker: index, first: first, count: count)
            workers.append(try WorkerProcess(executable: executable, assignment: assignment))
            first += count
        }
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A worker child process: its latest progress and its report, read from its stdout.
final class WorkerProcess: @unchecked Sendable {
    let process = Process()
    let input = Pipe()
    let output = Pipe()
    /// Which worker, and how many clients it runs.
    let index: Int
    let count: Int
    private let state = NIOLockedValueBox<(buffer: Data, progress: WorkerProgress?, report: WorkerReport?)>((Data(), nil, nil))

    init(executable: String, assignment: WorkerAssignment) throws {
        index = assignment.worker
        count = assignment.count
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["bench-worker", "--assignment", String(decoding: try JSONEncoder().encode(assignment), as: UTF8.self)]
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.standardError
        output.fileHandleForReading.readabilityHandler = { [state, workerIndex = assignment.worker] handle in
            let data = handle.availableData
            state.withLockedValue { state in
                state.buffer.append(data)
                while let newline = state.buffer.firstIndex(of: 0x0A) {
                    let line = state.buffer[state.buffer.startIndex..<newline]
                    state.buffer.removeSubrange(state.buffer.startIndex...newline)
                    switch try? JSONDecoder().decode(WorkerEvent.self, from: line) {
                    case .progress(let progress)?: state.progress = progress
                    case .report(let report)?: state.report = report
                    case nil:
                        FileHandle.standardError.write(Data("bench: an unreadable line from worker \(workerIndex) (\(line.count) bytes)\n".utf8))
                    }
                }
            }
        }
        try process.run()
    }

    var progress: WorkerProgress? { state.withLockedValue { $0.progress } }
    var report: WorkerReport? { state.withLockedValue { $0.report } }

    func send(_ command: WorkerCommand) {
        guard let data = try? JSONEncoder().encode(command) else { return }
        try? input.fileHandleForWriting.write(contentsOf: data + Data("\n".utf8))
    }

    func terminate() {
        if process.isRunning { process.terminate() }
    }
}

enum Shell {
    /// Runs `command` with /bin/sh and waits for it. posix_spawn and waitpid directly: Foundation's
    /// Process did not reap a quick child here (it stayed a zombie, and no termination callback came)
    /// in a process that already has other children.
    static func run(_ command: String) async throws {
        var pid: pid_t = 0
        let arguments = ["/bin/sh", "-c", command]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        // The calling thread (a Swift concurrency thread) blocks most signals, and a spawned process
        // inherits the mask: a shell with SIGCHLD blocked never returns from `wait`. Start it clean.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        var defaultSignals = sigset_t()
        sigfillset(&defaultSignals)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        posix_spawnattr_setsigdefault(&attributes, &defaultSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let spawned = posix_spawn(&pid, "/bin/sh", nil, &attributes, &argv, environ)
        guard spawned == 0 else { throw BenchError("cannot run `\(command)`: error \(spawned)") }
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid { break }
            guard result == 0 else { throw BenchError("waitpid failed for `\(command)`") }
            try await Task.sleep(for: .milliseconds(10))
        }
        let exitCode = (status >> 8) & 0xFF
        guard status & 0x7F == 0, exitCode == 0 else { throw BenchError("`\(command)` exited with \(exitCode)") }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
