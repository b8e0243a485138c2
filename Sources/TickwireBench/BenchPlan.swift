/// What one benchmark run does. The coordinator builds it from the command line and
/// hands it, as JSON, to every worker process.
public struct BenchPlan: Codable, Sendable {
    public enum Scenario: String, Codable, Sendable, CaseIterable {
        /// N connections, 10 symbols each, held with pings every 30 s: memory and idle CPU.
        case idle
        /// N connections, 20 of 100 symbols each plus their own notifications; all 100 prices move
        /// every 5 s; 1% of users get a notification per second.
        case wallet
        /// N connections on one symbol (no window); publishes at `publishRate`.
        case fanout
        /// N connections; the server is restarted; time until every client is back and resubscribed.
        case reconnect
    }

    public enum Target: String, Codable, Sendable {
        case tickwire
        /// nginx with the Nchan module: WebSocket subscriber `/sub/CH1,CH2`, HTTP publisher `/pub/CH`.
        case nchan
    }

    public var scenario: Scenario
    public var target: Target
    /// Server base URLs (`ws://host:port`); connections are spread over them round-robin.
    public var servers: [String]
    /// HTTP base URL for publishing (Tickwire: a gateway; Nchan: the publisher location).
    public var publishURL: String
    /// Tickwire with Redis: publish straight to Redis, as `tickwire feed` and backends do.
    public var publishRedisURL: String?
    public var apiKey: String
    public var jwtSecret: String
    public var connections: Int
    public var workers: Int
    /// New connections per second, all workers together.
    public var connectRate: Int
    /// Seconds of the measured phase: holding (idle) or publishing (wallet, fanout).
    public var duration: Double
    /// Fanout: messages per second.
    public var publishRate: Double
    /// Wallet: seconds between moves of each price (a little over the 5 s window, so none is held).
    public var priceCadence: Double
    /// Wallet: move all symbols at the same instant instead of spreading them over the cadence.
    public var priceBurst = false
    /// Wallet: fraction of users that get a notification each second.
    public var notificationFraction: Double
    /// Seconds between a client's pings.
    public var pingInterval: Double
    /// Loopback source addresses to spread connections over (beyond ~28k per address).
    public var sourceAddresses: [String]
    public var connectionsPerSourceAddress: Int
    /// Reconnect: the shell command that restarts the server.
    public var restartCommand: String?
    /// The frame size (bytes) Nchan messages are padded to, to match Tickwire's frames.
    public var nchanPayloadBytes: Int

    public init(
        scenario: Scenario, target: Target, servers: [String], publishURL: String, apiKey: String, jwtSecret: String,
        connections: Int, workers: Int, connectRate: Int, duration: Double, publishRate: Double, priceCadence: Double,
        notificationFraction: Double, pingInterval: Double, sourceAddresses: [String], connectionsPerSourceAddress: Int,
        restartCommand: String?, nchanPayloadBytes: Int
    ) {
        self.scenario = scenario
        self.target = target
        self.servers = servers
        self.publishURL = publishURL
        self.publishRedisURL = nil
        self.apiKey = apiKey
        self.jwtSecret = jwtSecret
        self.connections = connections
        self.workers = workers
        self.connectRate = connectRate
        self.duration = duration
        self.publishRate = publishRate
        self.priceCadence = priceCadence
        self.notificationFraction = notificationFraction
        self.pingInterval = pingInterval
        self.sourceAddresses = sourceAddresses
        self.connectionsPerSourceAddress = connectionsPerSourceAddress
        self.restartCommand = restartCommand
        self.nchanPayloadBytes = nchanPayloadBytes
    }

    public static let walletSymbolCount = 100
    public static let walletSymbolsPerConnection = 20
    public static let idleSymbolsPerConnection = 10
    /// The notification stream id; price streams are symbol indices below it.
    public static let notificationStream: UInt16 = 1000

    /// The symbols a gateway must serve for the bench: B0 ... B99.
    public static let symbols = (0..<walletSymbolCount).map { "B\($0)" }

    /// The symbol indices connection `index` subscribes to.
    public func symbolIndices(forConnection index: Int) -> [Int] {
        switch scenario {
        case .fanout: return [0]
        case .idle, .reconnect: return Array(0..<Self.idleSymbolsPerConnection)
        case .wallet:
            // Twenty distinct symbols, a different set for neighbouring connections.
            return (0..<Self.walletSymbolsPerConnection).map { (index * 13 + $0 * 5) % Self.walletSymbolCount }
        }
    }

    public var subscribesToNotifications: Bool { scenario == .wallet }

    public static func user(_ index: Int) -> String { "u\(index)" }

    public func server(forConnection index: Int) -> String { servers[index % servers.count] }

    /// A server URL's host and port (`ws://HOST:PORT[/...]`); nil for anything else.
    public static func hostAndPort(ofServer url: String) -> (host: String, port: Int)? {
        guard url.hasPrefix("ws://") else { return nil }
        var rest = url.dropFirst(5)
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        guard let colon = rest.lastIndex(of: ":"), colon > rest.startIndex,
            let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port)
        else { return nil }
        return (String(rest[..<colon]), port)
    }

    public func sourceAddress(forConnection index: Int) -> String? {
        guard !sourceAddresses.isEmpty else { return nil }
        return sourceAddresses[(index / max(1, connectionsPerSourceAddress)) % sourceAddresses.count]
    }
}

/// The part of the plan one worker process runs: connections `first ..< first + count`.
public struct WorkerAssignment: Codable, Sendable {
    public var plan: BenchPlan
    public var worker: Int
    public var first: Int
    public var count: Int
}
