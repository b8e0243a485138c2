import ArgumentParser
import Foundation
import NIOCore
import TickwireBench

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load-generate against Tickwire or Nchan and report what the clients saw.",
        discussion: """
            Scenarios: idle (memory and idle CPU), wallet (the realistic mix), fanout (one symbol, many clients), \
            reconnect (restart the server, time until everyone is back). Prints a JSON result and a BENCHMARKS.md row. \
            Gateways under test serve the symbols B0...B99 (scripts/bench/ starts them so). See BENCHMARKS.md.
            """
    )

    @Argument(help: "idle, wallet, fanout or reconnect.")
    var scenario: String

    @Option(help: "tickwire or nchan.")
    var target = "tickwire"

    @Option(help: "Comma-separated WebSocket base URLs; connections are spread over them.")
    var url = "ws://127.0.0.1:8080"

    @Option(help: "HTTP base URL to publish to (default: the first --url over http).")
    var publishUrl: String?

    @Option(help: "Tickwire with Redis: publish straight to this Redis, as tickwire feed and backends do, instead of through a gateway's HTTP API.")
    var publishRedisUrl: String?

    @Option(help: "The gateways' API key (publishing to Tickwire).")
    var apiKey: String?

    @Option(help: "The gateways' JWT secret; the bench mints one token per user.")
    var jwtSecret: String?

    @Option(name: .shortAndLong, help: "Connections.")
    var connections = 1000

    @Option(help: "Worker processes (default: one per 15000 connections, at least 1).")
    var workers: Int?

    @Option(help: "New connections per second, all workers together.")
    var connectRate = 2000

    @Option(help: "Seconds of the measured phase (idle: holding; wallet, fanout: publishing).")
    var duration = 30.0

    @Option(help: "fanout: messages per second.")
    var publishRate = 10.0

    @Option(help: "wallet: seconds between price moves.")
    var priceCadence = 5.05

    @Flag(help: "wallet: move all 100 prices at the same instant instead of spreading them over the cadence.")
    var priceBurst = false

    @Option(help: "wallet: fraction of users notified each second.")
    var notificationFraction = 0.01

    @Option(help: "Seconds between a client's pings.")
    var pingInterval = 30.0

    @Option(help: "Comma-separated loopback source addresses to spread connections over (e.g. 127.0.0.1,127.0.0.2).")
    var sourceAddresses: String?

    @Option(help: "Connections per source address before moving to the next.")
    var connectionsPerSourceAddress = 25_000

    @Option(help: "Comma-separated server process ids: RSS per connection and CPU are read from /proc.")
    var serverPid: String?

    @Option(help: "reconnect: the shell command that restarts the server.")
    var restartCommand: String?

    @Option(help: "A name for the target in the result (e.g. \"tickwire memory\").")
    var label: String?

    @Option(help: "Write the JSON result to this file.")
    var json: String?

    @Option(help: "Append the markdown row to this file.")
    var markdown: String?

    func validate() throws {
        guard BenchPlan.Scenario(rawValue: scenario) != nil else { throw ValidationError("scenario must be idle, wallet, fanout or reconnect") }
        guard BenchPlan.Target(rawValue: target) != nil else { throw ValidationError("--target must be tickwire or nchan") }
        guard connections > 0, connectRate > 0, duration > 0, publishRate > 0 else {
            throw ValidationError("--connections, --connect-rate, --duration and --publish-rate must be positive")
        }
        if target == "tickwire", jwtSecret == nil { throw ValidationError("--jwt-secret is required for --target tickwire") }
        if target == "tickwire", ["wallet", "fanout"].contains(scenario), apiKey == nil {
            throw ValidationError("--api-key is required to publish to Tickwire")
        }
        if scenario == "reconnect", restartCommand == nil { throw ValidationError("reconnect needs --restart-command") }
        for server in url.split(separator: ",").map(String.init) {
            guard let target = BenchPlan.hostAndPort(ofServer: server) else {
                throw ValidationError("--url must be comma-separated ws://HOST:PORT URLs, not '\(server)'")
            }
            guard (try? SocketAddress.makeAddressResolvingHost(target.host, port: target.port)) != nil else {
                throw ValidationError("--url: cannot resolve the host '\(target.host)'")
            }
        }
        if let serverPid, serverPid.split(separator: ",").contains(where: { Int32($0) == nil }) {
            throw ValidationError("--server-pid must be comma-separated process ids")
        }
    }

    func run() async throws {
        let servers = url.split(separator: ",").map(String.init)
        let publishURL = publishUrl ?? servers[0].replacingOccurrences(of: "ws://", with: "http://")
        var plan = BenchPlan(
            scenario: BenchPlan.Scenario(rawValue: scenario)!, target: BenchPlan.Target(rawValue: target)!,
            servers: servers, publishURL: publishURL, apiKey: apiKey ?? "", jwtSecret: jwtSecret ?? "",
            connections: connections, workers: workers ?? max(1, (connections + 14_999) / 15_000), connectRate: connectRate,
            duration: duration, publishRate: publishRate, priceCadence: priceCadence,
            notificationFraction: notificationFraction, pingInterval: pingInterval,
            sourceAddresses: sourceAddresses?.split(separator: ",").map(String.init) ?? [],
            connectionsPerSourceAddress: connectionsPerSourceAddress, restartCommand: restartCommand,
            nchanPayloadBytes: BenchPublisherSizes.tickwirePriceFrameBytes)
        plan.priceBurst = priceBurst
        plan.publishRedisURL = publishRedisUrl
        let coordinator = BenchCoordinator(
            plan: plan, serverPIDs: serverPid?.split(separator: ",").compactMap { Int32($0) } ?? [],
            executable: CommandLine.arguments[0].hasPrefix("/") ? CommandLine.arguments[0] : FileManager.default.currentDirectoryPath + "/" + CommandLine.arguments[0],
            label: label ?? target, command: "tickwire " + CommandLine.arguments.dropFirst().joined(separator: " "),
            log: { message in FileHandle.standardError.write(Data(("bench: " + message + "\n").utf8)) })
        let result = try await coordinator.run()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let text = String(decoding: try encoder.encode(result), as: UTF8.self)
        if let json { try text.write(toFile: json, atomically: true, encoding: String.Encoding.utf8) }
        print(text)
        print(BenchResult.markdownHeader)
        print(result.markdownRow)
        if let markdown {
            let handle = FileHandle(forWritingAtPath: markdown) ?? {
                _ = FileManager.default.createFile(atPath: markdown, contents: nil)
                return FileHandle(forWritingAtPath: markdown)!
            }()
            handle.seekToEndOfFile()
            handle.write(Data((result.markdownRow + "\n").utf8))
        }
        if result.subscribed < connections { throw CLIError("only \(result.subscribed) of \(connections) clients subscribed") }
    }
}

struct BenchWorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-worker", abstract: "One process of `tickwire bench` (started by it).", shouldDisplay: false)

    @Option(help: "The worker's assignment, as JSON.")
    var assignment: String

    func run() async throws {
        let decoded = try JSONDecoder().decode(WorkerAssignment.self, from: Data(assignment.utf8))
        try await BenchWorker.run(assignment: decoded)
    }
}
