import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
import TickwireTestSupport

@testable import RESP

let loop = MultiThreadedEventLoopGroup.singleton.next()
let logger = Logger(label: "resp-tests")

func configuration(_ url: String, timeout: Duration = .seconds(2)) throws -> RedisConfiguration {
    var configuration = try RedisConfiguration(url: url)
    configuration.commandTimeout = timeout
    return configuration
}

@Suite(.timeLimit(.minutes(1)))
struct RedisConnections {
    @Test func speaksRESP3AndRoundTrips() async throws {
        let redis = try await RedisServer.start()
        let connection = try await RedisConnection.connect(try configuration(redis.url), eventLoop: loop)
        #expect(connection.protocolVersion == 3)
        try await connection.send(RESPCommand("SET", ["k", "välue"]))
        #expect(try await connection.send(RESPCommand("GET", ["k"])).string == "välue")
        #expect(try await connection.send(RESPCommand("GET", ["missing"])) == .null)
        let hash = try await connection.send(RESPCommand("HGETALL", ["nothing"]))
        #expect(hash == .map([]))
        await #expect(throws: RedisError.self) { try await connection.send(RESPCommand("NOSUCHCOMMAND")) }
    }

    /// Thousands of commands in flight at once: each reply reaches its own command.
    @Test func pipelinedRepliesMatchTheirCommands() async throws {
        let redis = try await RedisServer.start()
        let connection = try await RedisConnection.connect(try configuration(redis.url), eventLoop: loop)
        try await withThrowingTaskGroup(of: (Int, String?).self) { group in
            for index in 0..<2000 {
                group.addTask { (index, try await connection.send(RESPCommand("ECHO", ["m\(index)"])).string) }
            }
            for try await (index, reply) in group { #expect(reply == "m\(index)") }
        }
        let counts = try await withThrowingTaskGroup(of: Int64.self) { group in
            for _ in 0..<500 { group.addTask { try await connection.send(RESPCommand("INCR", ["n"])).int ?? 0 } }
            return try await group.reduce(into: Set<Int64>()) { $0.insert($1) }
        }
        #expect(counts == Set(1...500))
    }

    @Test func aCommandPastItsDeadlineFailsAndTheClientRecovers() async throws {
        let redis = try await RedisServer.start()
        let client = RedisClient(configuration: try configuration(redis.url), eventLoop: loop, name: "t", logger: logger)
        try await client.send(RESPCommand("SET", ["before", "1"]), timeout: .seconds(5))
        try redis.cli("CLIENT", "PAUSE", "3000", "ALL")
        let start = ContinuousClock.now
        await #expect(throws: RedisError.timeout) { try await client.send(RESPCommand("GET", ["before"]), timeout: .milliseconds(300)) }
        // Failed by its deadline while Redis was still paused, not by a late reply.
        #expect(ContinuousClock.now - start < .seconds(3))
        try await eventually(timeout: .seconds(10), "the client works again after the pause") {
            (try? await client.send(RESPCommand("GET", ["before"]), timeout: .seconds(5)))?.string == "1"
        }
    }

    @Test func aCommandOnAClosedChannelFailsInsteadOfWaitingForever() async throws {
        let redis = try await RedisServer.start()
        let connection = try await RedisConnection.connect(try configuration(redis.url), eventLoop: loop)
        try await connection.channel.close()
        // Past the connection's own checks, as a command written while the channel closes is.
        await #expect(throws: (any Error).self) {
            _ = try await RedisConnection.send(RESPCommand("PING"), on: connection.channel, timeout: .seconds(600))
        }
    }

    @Test func passwordAndDatabaseComeFromTheURL() async throws {
        let redis = try await RedisServer.start(arguments: ["--requirepass", "s3cr%t"])
        let connection = try await RedisConnection.connect(
            try configuration("redis://:s3cr%25t@127.0.0.1:\(redis.port)/3"), eventLoop: loop)
        try await connection.send(RESPCommand("SET", ["where", "db3"]))
        #expect(try redis.cli("-a", "s3cr%t", "--no-auth-warning", "-n", "3", "GET", "where") == "db3")
        await #expect(throws: RedisError.self) {
            _ = try await RedisConnection.connect(try configuration("redis://:wrong@127.0.0.1:\(redis.port)"), eventLoop: loop)
        }
    }

    @Test func scriptsAreSentWholeOnlyWhenTheServerLacksThem() async throws {
        let redis = try await RedisServer.start()
        let client = RedisClient(configuration: try configuration(redis.url), eventLoop: loop, name: "t", logger: logger)
        let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        #expect(try await client.evaluate(script, keys: ["s"], arguments: ["5"]).int == 5)
        #expect(try await client.evaluate(script, keys: ["s"], arguments: ["5"]).int == 10)
        _ = try await client.send("SCRIPT", "FLUSH")
        #expect(try await client.evaluate(script, keys: ["s"], arguments: ["1"]).int == 11)
        let stats = try redis.cli("INFO", "commandstats")
        #expect(stats.contains("cmdstat_evalsha:calls=3"), "\(stats)")
        #expect(stats.contains("cmdstat_eval:calls=2"), "\(stats)")
    }

    @Test func tlsWithATrustedCertificateAuthority() async throws {
        let authority = try await TestCertificateAuthority()
        let server = try await authority.issue("redis")
        let tlsPort = try FreePort.find()
        let redis = try await RedisServer.start(arguments: [
            "--tls-port", String(tlsPort), "--tls-cert-file", server.certificatePath,
            "--tls-key-file", server.keyPath, "--tls-ca-cert-file", authority.certificatePath,
            "--tls-auth-clients", "no",
        ])
        _ = redis
        let url = "rediss://localhost:\(tlsPort)?tls_ca_file=\(authority.certificatePath)"
        let connection = try await RedisConnection.connect(try configuration(url), eventLoop: loop)
        #expect(try await connection.send(RESPCommand("PING")).string == "PONG")
        await #expect(throws: (any Error).self, "an untrusted certificate is refused") {
            _ = try await RedisConnection.connect(try configuration("rediss://localhost:\(tlsPort)"), eventLoop: loop)
        }
    }
}

@Suite(.timeLimit(.minutes(1)))
struct MisbehavingServers {
    @Test func garbageFailsTheCommandAndClosesTheConnection() async throws {
        let server = try await ScriptedServer { command in
            command.name == "HELLO" ? .bytes("%0\r\n") : .bytes("?what is this\r\n")
        }
        let connection = try await RedisConnection.connect(try configuration("redis://127.0.0.1:\(server.port)"), eventLoop: loop)
        await #expect(throws: RedisError.protocolError("unknown type byte 0x3f")) { try await connection.send(RESPCommand("GET", ["x"])) }
        try await eventually("the connection is closed") { !connection.isActive }
    }

    @Test func aTruncatedReplyThenCloseFailsTheCommand() async throws {
        let server = try await ScriptedServer { command in
            command.name == "HELLO" ? .bytes("%0\r\n") : .bytesThenClose("$10\r\nabc")
        }
        let connection = try await RedisConnection.connect(try configuration("redis://127.0.0.1:\(server.port)"), eventLoop: loop)
        await #expect(throws: RedisError.connectionClosed) { try await connection.send(RESPCommand("GET", ["x"])) }
    }

    @Test func aTruncatedReplyThenSilenceTimesOutInsteadOfHanging() async throws {
        let server = try await ScriptedServer { command in
            command.name == "HELLO" ? .bytes("%0\r\n") : .bytes("$10\r\nabc")
        }
        let connection = try await RedisConnection.connect(try configuration("redis://127.0.0.1:\(server.port)", timeout: .milliseconds(200)), eventLoop: loop)
        await #expect(throws: RedisError.timeout) { try await connection.send(RESPCommand("GET", ["x"])) }
    }

    @Test func serversWithoutRESP3AreSpokenToInRESP2() async throws {
        let seen = NIOLockedValueBox<[String]>([])
        let server = try await ScriptedServer { command in
            seen.withLockedValue { $0.append(command.name) }
            switch command.name {
            case "HELLO": return .bytes("-ERR unknown command 'HELLO'\r\n")
            case "AUTH": return command.arguments == ["pw"] ? .bytes("+OK\r\n") : .bytes("-ERR invalid password\r\n")
            case "SELECT": return .bytes("+OK\r\n")
            default: return .bytes("+PONG\r\n")
            }
        }
        let connection = try await RedisConnection.connect(try configuration("redis://:pw@127.0.0.1:\(server.port)/2"), eventLoop: loop)
        #expect(connection.protocolVersion == 2)
        #expect(try await connection.send(RESPCommand("PING")).string == "PONG")
        #expect(seen.withLockedValue { $0 } == ["HELLO", "AUTH", "SELECT", "PING"])
    }

    @Test func anUnreachableServerFailsFastWhileBackingOff() async throws {
        let port = try FreePort.find()
        let client = RedisClient(
            configuration: try configuration("redis://127.0.0.1:\(port)"), eventLoop: loop, name: "t", logger: logger,
            backoff: Backoff(base: .seconds(5), cap: .seconds(5)))
        await #expect(throws: RedisError.self) { try await client.send("PING") }
        let start = ContinuousClock.now
        for _ in 0..<100 { _ = try? await client.send("PING") }
        // Waiting for the backoff would take 5 s for the first send alone; half of it leaves a loaded machine room.
        #expect(ContinuousClock.now - start < .milliseconds(2500))
    }
}

@Suite struct RedisURLs {
    @Test func readsEveryPart() throws {
        let full = try RedisConfiguration(url: "rediss://user:p%40ss@cache.example.com:6380/4?tls_verify=none")
        #expect(full.tls && full.host == "cache.example.com" && full.port == 6380 && full.database == 4)
        #expect(full.username == "user" && full.password == "p@ss" && !full.tlsVerify)
        #expect(full.redacted == "rediss://cache.example.com:6380/4")
        let plain = try RedisConfiguration(url: "redis://localhost")
        #expect(plain.port == 6379 && plain.database == 0 && plain.password == nil && !plain.tls)
        let v6 = try RedisConfiguration(url: "redis://[::1]:7000")
        #expect(v6.host == "::1" && v6.port == 7000)
    }

    @Test(arguments: ["http://x", "redis://", "redis://h:0", "redis://h:99999", "redis://h/abc", "redis://h?color=red"])
    func refusesMalformedURLs(_ url: String) {
        #expect(throws: RedisConfiguration.InvalidURL.self) { try RedisConfiguration(url: url) }
    }
}
