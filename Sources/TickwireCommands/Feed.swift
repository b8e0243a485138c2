import ArgumentParser
import Logging
import Metrics
import Prometheus
import NIOCore
import NIOPosix
import RESP
import ServiceLifecycle
import TickwireCore
import TickwireFeed
import TickwireProtocol
import TickwireRedis
import TickwireServer

#if canImport(Glibc)
import Glibc
#endif

struct Feed: AsyncParsableCommand, OptionGroups {
    static let optionGroups: [ParsableArguments.Type] = [MarketDataOptions.self]

    static let configuration = CommandConfiguration(
        abstract: "Publish prices to a cluster through Redis. Run several: one leader publishes, the others stand by.",
        discussion: "Every option can also be set as TICKWIRE_<OPTION>; --redis-url also reads REDIS_URL."
    )

    @Option(help: "The cluster's Redis: redis://[:password@]host[:port][/db] (rediss:// for TLS), redis+sentinel://host1:26379,host2:26379/MASTER_NAME[/db], or redis+cluster://host1:7000,host2:7001.")
    var redisURL: String?

    @Option(help: "Prefix for every Redis key and channel (the gateways' --redis-prefix).")
    var redisPrefix = ""

    @Option(help: "Where prices come from, highest priority first: simulated, or any of coinbase, kraken, binance, coingecko-rest, coingecko-ws, replay:FILE (comma-separated).")
    var source = "simulated"

    @OptionGroup var marketData: MarketDataOptions

    @Option(help: "Serve /metrics and /healthz on this port (the feed serves no clients otherwise).")
    var metricsPort: Int?

    @Option(help: "Address for --metrics-port.")
    var metricsHost = "0.0.0.0"

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
        _ = try MarketDataOptions.parseSources(source, option: "--source")
        guard metricsPort.map({ (0...65535).contains($0) }) ?? true else { throw ValidationError("--metrics-port must be 0 to 65535") }
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
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory.tickwire(registry: registry))
        let source = try marketData.makeSource(
            try MarketDataOptions.parseSources(self.source, option: "--source"), symbols: symbols, feedTick: feedTick, logger: logger)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        if let metricsPort {
            let listener = try await MetricsListener.bind(host: metricsHost, port: metricsPort, group: group) { registry.emitToBuffer() }
            StandardStream.write("metrics on http://\(Banner.shown(metricsHost)):\(listener.localAddress?.port ?? metricsPort)/metrics\n", to: 1)
        }
        var brokerSettings = RedisBroker.Settings()
        brokerSettings.keys = RedisKeys(prefix: redisPrefix)
        let broker = RedisBroker(
            configuration: try RedisConfiguration(url: redisURL!), settings: brokerSettings, eventLoop: group.next(),
            logger: logger)
        var settings = FeedService.Settings(symbols: symbols, holderID: FeedHolder.id())
        settings.priceInterval = .nanoseconds(Int64(priceInterval * 1e9))
        settings.leaderTTL = .nanoseconds(Int64(leaderTtl * 1e9))
        let feed = FeedService(
            source: source, broker: broker,
            lock: RedisLeaderLock(client: broker.client, key: brokerSettings.keys.feedLeader), settings: settings,
            eventLoop: group.next(), logger: logger)
        logger.info("feed starting", metadata: [
            "redis": "\(broker.configuration.redacted)", "symbols": "\(symbols.count)", "holder": "\(settings.holderID)",
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
