import ArgumentParser
import Logging
import NIOCore
import NIOPosix
import RESP
import ServiceLifecycle
import TickwireCore
import TickwireFeed
import TickwireProtocol
import TickwireRedis

#if canImport(Glibc)
import Glibc
#endif

struct Feed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish prices to a cluster through Redis. Run several: one leader publishes, the others stand by.",
        discussion: "Every option can also be set as TICKWIRE_<OPTION>; --redis-url also reads REDIS_URL."
    )

    @Option(help: "The cluster's Redis (redis://[:password@]host[:port][/db], rediss:// for TLS).")
    var redisURL: String?

    @Option(help: "Prefix for every Redis key and channel (the gateways' --redis-prefix).")
    var redisPrefix = ""

    @Option(help: "Where prices come from: simulated.")
    var source = "simulated"

    @Option(help: "Comma-separated symbols to publish.")
    var symbols = SimulatedPriceSource.defaultSymbols.joined(separator: ",")

    @Option(help: "Per-symbol window in seconds: the newest price of each symbol is published at most once per window.")
    var priceInterval = 5.0

    @Option(help: "Seconds between ticks of the simulated source.")
    var feedTick = 1.0

    @Option(help: "Seconds the leader's lock lives without renewal; a standby takes over within about this long.")
    var leaderTtl = 6.0

    @Option(help: "trace, debug (logs every price published), info, notice, warning, error or critical.")
    var logLevel = "info"

    func validate() throws {
        guard let redisURL else { throw ValidationError("--redis-url (or REDIS_URL) is required") }
        do { _ = try RedisConfiguration(url: redisURL) } catch { throw ValidationError("--redis-url: \(error)") }
        guard source == "simulated" else { throw ValidationError("--source must be simulated") }
        guard priceInterval >= 0 else { throw ValidationError("--price-interval must not be negative") }
        guard feedTick > 0 else { throw ValidationError("--feed-tick must be positive") }
        guard leaderTtl >= 1 else { throw ValidationError("--leader-ttl must be at least 1 second") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: unknown level \(logLevel)") }
        do {
            guard !(try Symbol.parseList(symbols)).isEmpty else { throw ValidationError("--symbols must name at least one symbol") }
        } catch let violation as ProtocolViolation {
            throw ValidationError("--symbols: \(violation.message)")
        }
    }

    func run() async throws {
        let logger = Logging.bootstrap(level: Logger.Level(rawValue: logLevel)!)
        let symbols = try Symbol.parseList(symbols)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var brokerSettings = RedisBroker.Settings()
        brokerSettings.keys = RedisKeys(prefix: redisPrefix)
        let broker = RedisBroker(
            configuration: try RedisConfiguration(url: redisURL!), settings: brokerSettings, eventLoop: group.next(),
            logger: logger)
        var settings = FeedService.Settings(symbols: symbols, holderID: FeedHolder.id())
        settings.priceInterval = .nanoseconds(Int64(priceInterval * 1e9))
        settings.leaderTTL = .nanoseconds(Int64(leaderTtl * 1e9))
        let feed = FeedService(
            source: SimulatedPriceSource(tickInterval: .nanoseconds(Int64(feedTick * 1e9))), broker: broker,
            lock: RedisLeaderLock(client: broker.client, key: brokerSettings.keys.feedLeader), settings: settings,
            eventLoop: group.next(), logger: logger)
        logger.info("feed starting", metadata: [
            "redis": "\(broker.client.configuration.redacted)", "symbols": "\(symbols.count)", "holder": "\(settings.holderID)",
        ])
        let serviceGroup = ServiceGroup(
            services: [feed], gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [], logger: logger)
        try await serviceGroup.run()
        await broker.shutdown()
        try await group.shutdownGracefully()
    }
}

enum FeedHolder {
    /// host-pid-random: unique per replica, readable in `GET feed:leader`.
    static func id() -> String {
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count)
        let host = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return "\(host)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }
}
