import Foundation

/// A real `redis-server` on a free loopback port, in its own directory, for one test.
public final class RedisServer: @unchecked Sendable {
    public let port: Int
    public let directory: String
    private let arguments: [String]
    private var process: Process

    public var url: String { "redis://127.0.0.1:\(port)" }

    /// Starts a server. `appendOnly` keeps data across restarts (`appendonly yes`).
    public static func start(appendOnly: Bool = false, port fixedPort: Int? = nil, arguments extra: [String] = []) async throws -> RedisServer {
        let directory = NSTemporaryDirectory() + "tickwire-redis-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var lastError: Error?
        for _ in 0..<5 {
            let port = try fixedPort ?? FreePort.find()
            var arguments = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--dir", directory,
                             "--appendonly", appendOnly ? "yes" : "no", "--appendfsync", "always",
                             "--protected-mode", "no", "--loglevel", "warning"]
            arguments += extra
            do {
                let process = try await launch(arguments: arguments, port: port, extra: extra)
                return RedisServer(port: port, directory: directory, arguments: arguments, process: process)
            } catch {
                lastError = error
            }
        }
        throw lastError ?? SupportFailure("redis-server did not start")
    }

    private init(port: Int, directory: String, arguments: [String], process: Process) {
        self.port = port
        self.directory = directory
        self.arguments = arguments
        self.process = process
    }

    static func launch(arguments: [String], port: Int, extra: [String]) async throws -> Process {
        guard let binary = Executables.find("redis-server") else {
            throw SupportFailure("redis-server is not installed (scripts/test.sh installs it)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let probePort = extra.firstIndex(of: "--tls-port").map { Int(extra[$0 + 1])! } ?? port
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if !ChildProcess.isAlive(process.processIdentifier) { throw SupportFailure("redis-server exited") }
            if FreePort.accepts(probePort) { return process }
            try await Task.sleep(for: .milliseconds(20))
        }
        process.terminate()
        throw SupportFailure("redis-server did not listen on \(port)")
    }

    deinit {
        if ChildProcess.isAlive(process.processIdentifier) { Foundation.kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { ChildProcess.isAlive(process.processIdentifier) }

    /// SIGKILL: the server dies at once, as in a crash.
    public func kill() async {
        Foundation.kill(process.processIdentifier, SIGKILL)
        _ = try? await ChildProcess.waitForExit(process, timeout: .seconds(10))
    }

    /// SIGSTOP: the server stops answering but keeps its sockets open.
    public func pause() { Foundation.kill(process.processIdentifier, SIGSTOP) }
    public func resume() { Foundation.kill(process.processIdentifier, SIGCONT) }

    /// Starts the server again on the same port and directory (with `appendOnly`, with its data).
    public func restart() async throws {
        if ChildProcess.isAlive(process.processIdentifier) { await kill() }
        process = try await Self.launch(arguments: arguments, port: port, extra: [])
    }

    /// Runs `redis-cli` against this server and returns its output.
    @discardableResult
    public func cli(_ arguments: String...) throws -> String {
        try Self.cli(port: port, arguments)
    }

    /// Closes the connections of the clients that called themselves `name` (`CLIENT SETNAME`);
    /// returns how many. The server stays up: a cut link, seen from those clients.
    @discardableResult
    public func killClients(named name: String) throws -> Int {
        let ids = try cli("CLIENT", "LIST").split(whereSeparator: \.isNewline)
            .filter { $0.split(separator: " ").contains("name=\(name)") }
            .compactMap { $0.split(separator: " ").first { $0.hasPrefix("id=") }?.dropFirst(3) }
        for id in ids { try cli("CLIENT", "KILL", "ID", String(id)) }
        return ids.count
    }

    static func cli(port: Int, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Executables.find("redis-cli") ?? "/usr/bin/redis-cli")
        process.arguments = ["-p", String(port)] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        _ = try ChildProcess.waitForExitBlocking(process)
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

public struct SupportFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

public enum Executables {
    public static func find(_ name: String) -> String? {
        let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/bin:/usr/sbin:/usr/local/bin"
        for directory in paths.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}

public enum FreePort {
    /// A port the kernel just handed out for loopback, released again for the caller to bind.
    public static func find() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SupportFailure("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else { throw SupportFailure("bind() failed") }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Whether something accepts TCP connections on the loopback port.
    public static func accepts(_ port: Int) -> Bool {
        onLoopbackSocket(port: port) { fd, address, length in connect(fd, address, length) } == 0
    }

    /// Whether the loopback port can be bound now.
    static func canBind(_ port: Int) -> Bool {
        onLoopbackSocket(port: port) { fd, address, length in bind(fd, address, length) } == 0
    }

    /// Calls `body` with a fresh TCP socket and 127.0.0.1:`port`, then closes the socket; -1 without a socket.
    private static func onLoopbackSocket(
        port: Int, _ body: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Int32
    ) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return -1 }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }
}

/// Polls `condition` until it holds or `timeout` passes.
public func eventually(
    timeout: Duration = .seconds(5), interval: Duration = .milliseconds(50), _ what: String,
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: interval)
    }
    throw SupportFailure("timed out after \(timeout) waiting for: \(what)")
}
