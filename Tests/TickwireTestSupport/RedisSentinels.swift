import Foundation

/// A replicated Redis watched by Sentinel, on loopback: a master, `replicas` replicas and
/// `sentinels` sentinels (`redis-server --sentinel`) with a quorum of two, which call a master
/// down after one second of silence.
public final class RedisSentinelGroup: @unchecked Sendable {
    public static let masterName = "tickwire"
    public let master: RedisServer
    public let replicas: [RedisServer]
    public let sentinels: [RedisSentinel]

    public static func start(replicas replicaCount: Int = 2, sentinels sentinelCount: Int = 3) async throws -> RedisSentinelGroup {
        let master = try await RedisServer.start()
        var replicas: [RedisServer] = []
        for _ in 0..<replicaCount {
            replicas.append(try await RedisServer.start(arguments: ["--replicaof", "127.0.0.1", String(master.port)]))
        }
        var sentinels: [RedisSentinel] = []
        for _ in 0..<sentinelCount { sentinels.append(try await RedisSentinel.start(masterPort: master.port, name: masterName)) }
        let group = RedisSentinelGroup(master: master, replicas: replicas, sentinels: sentinels)
        // Sentinels learn the replicas from the master's INFO and each other from hello messages
        // every 2 s; on a loaded CI machine that once took longer than 15 s. A precondition, not a
        // measurement: waiting longer weakens no assertion.
        try await eventually(timeout: .seconds(45), "the replicas are in sync and every sentinel knows them") {
            for replica in replicas where try replica.cli("INFO", "replication").contains("master_link_status:up") == false {
                return false
            }
            for sentinel in sentinels {
                let known = try sentinel.cli("SENTINEL", "replicas", masterName)
                guard replicas.allSatisfy({ known.contains(String($0.port)) }) else { return false }
                guard try sentinel.cli("SENTINEL", "sentinels", masterName).components(separatedBy: "\n")
                    .filter({ $0 == "runid" }).count == sentinelCount - 1
                else { return false }
            }
            return true
        }
        return group
    }

    private init(master: RedisServer, replicas: [RedisServer], sentinels: [RedisSentinel]) {
        self.master = master
        self.replicas = replicas
        self.sentinels = sentinels
    }

    public var servers: [RedisServer] { [master] + replicas }

    /// `redis+sentinel://127.0.0.1:P1,127.0.0.1:P2,.../tickwire`.
    public var url: String {
        "redis+sentinel://" + sentinels.map { "127.0.0.1:\($0.port)" }.joined(separator: ",") + "/\(Self.masterName)"
    }

    /// The port the sentinels name as master now.
    public func masterPort() throws -> Int? {
        for sentinel in sentinels where sentinel.isRunning {
            let reply = try sentinel.cli("SENTINEL", "get-master-addr-by-name", Self.masterName).split(separator: "\n")
            if reply.count == 2, let port = Int(reply[1]) { return port }
        }
        return nil
    }

    /// The server that is master now.
    public func currentMaster() throws -> RedisServer? {
        let port = try masterPort()
        return servers.first { $0.port == port }
    }
}

/// One `redis-server --sentinel` on a free loopback port.
public final class RedisSentinel: @unchecked Sendable {
    public let port: Int
    private let directory: String
    private let process: Process

    public static func start(masterPort: Int, name: String) async throws -> RedisSentinel {
        let directory = NSTemporaryDirectory() + "tickwire-sentinel-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var lastError: Error?
        for _ in 0..<5 {
            let port = try FreePort.find()
            // Sentinel rewrites its configuration file as it learns: it must be its own and writable.
            let file = "\(directory)/sentinel-\(port).conf"
            try """
            port \(port)
            bind 127.0.0.1
            dir \(directory)
            sentinel monitor \(name) 127.0.0.1 \(masterPort) 2
            sentinel down-after-milliseconds \(name) 1000
            sentinel failover-timeout \(name) 5000
            sentinel parallel-syncs \(name) 2

            """.write(toFile: file, atomically: true, encoding: .utf8)
            do {
                let process = try await RedisServer.launch(
                    arguments: [file, "--sentinel", "--loglevel", "warning"], port: port, extra: [])
                return RedisSentinel(port: port, directory: directory, process: process)
            } catch {
                lastError = error
            }
        }
        throw lastError ?? SupportFailure("redis-server --sentinel did not start")
    }

    private init(port: Int, directory: String, process: Process) {
        self.port = port
        self.directory = directory
        self.process = process
    }

    deinit {
        if ChildProcess.isAlive(process.processIdentifier) { Foundation.kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    public var isRunning: Bool { ChildProcess.isAlive(process.processIdentifier) }

    public func kill() async {
        Foundation.kill(process.processIdentifier, SIGKILL)
        _ = try? await ChildProcess.waitForExit(process, timeout: .seconds(10))
    }

    @discardableResult
    public func cli(_ arguments: String...) throws -> String {
        try RedisServer.cli(port: port, arguments)
    }
}
