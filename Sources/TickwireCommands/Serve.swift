import ArgumentParser
import Logging
import Metrics
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle
import TickwireCore
import TickwireFeed
import TickwireHTTPClient
import RESP
import TickwireProtocol
import TickwireRedis
import TickwireServer
import UnixSignals

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct Serve: AsyncParsableCommand, OptionGroups {
    static let optionGroups: [ParsableArguments.Type] = [MarketDataOptions.self]

    static let configuration = CommandConfiguration(
        abstract: "Run a gateway. With no options: one process, in-memory broker, simulated prices, dev token.",
        discussion: "Every option can also be set as TICKWIRE_<OPTION>, e.g. TICKWIRE_JWT_SECRET."
    )

    @Option(help: "Address to listen on.")
    var host = "0.0.0.0"

    @Option(help: "Port for WebSocket (/ws) and HTTP (/healthz, /readyz, /metrics, /api/v1/*). 0 picks a free one.")
    var port = 8080

    @Option(help: "PEM certificate (chain allowed) for wss:// and https:// on the public port; with --tls-key. SIGHUP reloads it.")
    var tlsCert: String?

    @Option(help: "PEM private key of --tls-cert.")
    var tlsKey: String?

    @Option(help: "Serve /metrics (and /healthz, /readyz) on this port instead of the public one. 0 picks a free one.")
    var metricsPort: Int?

    @Option(help: "Address for --metrics-port (default: --host).")
    var metricsHost: String?

    @Option(help: "Comma-separated symbols this gateway serves.")
    var symbols = SimulatedPriceSource.defaultSymbols.joined(separator: ",")

    @Option(help: "Price feed run inside this process: simulated, none, or real sources highest priority first (coinbase, kraken, binance, coingecko-rest, coingecko-ws, replay:FILE). Default: simulated alone, none with --redis-url (run `tickwire feed`).")
    var feed: String?

    @OptionGroup var marketData: MarketDataOptions

    @Option(help: "Join a cluster through this Redis: redis://[:password@]host[:port][/db] (rediss:// for TLS), the master Sentinel names: redis+sentinel://[:password@]host1:26379,host2:26379/MASTER_NAME[/db], or a Redis Cluster: redis+cluster://[:password@]host1:7000,host2:7001. Also REDIS_URL.")
    var redisURL: String?

    @Option(help: "Prefix for every Redis key and channel.")
    var redisPrefix = ""

    @Option(help: "With --redis-url: a notification's publish succeeds only once this many replicas have it (Redis WAIT), so a failover cannot lose it; 0: do not wait.")
    var redisWait = 0

    @Option(help: "With --redis-wait: seconds WAIT may take before the publish fails (503; the master still has the notification).")
    var redisWaitTimeout = 1.0

    @Option(help: "Seconds between ticks of the simulated feed.")
    var feedTick = 1.0

    @Option(help: "Shared secret for HS256/384/512 tokens.")
    var jwtSecret: String?

    @Option(help: "PEM file with an RSA, EC P-256 or Ed25519 public key.")
    var jwtPublicKey: String?

    @Option(help: "JWKS file with the verification keys.")
    var jwks: String?

    @Option(help: "https:// URL of the identity provider's JWKS (Auth0, Cognito, Keycloak, Firebase): fetched at start, refreshed on its Cache-Control max-age and on an unknown kid.")
    var jwksURL: String?

    @Option(help: "With --jwks-url: a PEM file of CA certificates to trust instead of the system's.")
    var jwksCaFile: String?

    @Option(help: "With --jwks-url: seconds between fetches at least (max-age is raised to it; an unknown kid refetches at most this often).")
    var jwksMinRefresh = 60.0

    @Option(help: "Required iss claim.")
    var jwtIssuer: String?

    @Option(help: "Required aud claim.")
    var jwtAudience: String?

    @Option(help: "Clock leeway for exp, nbf and iat, in seconds.")
    var jwtLeeway = 30

    @Option(help: "Key for POST /api/v1/publish and /api/v1/prices (Authorization: Bearer KEY), at least 24 characters.")
    var apiKey: String?

    @Flag(help: "Development mode: generate any missing JWT secret or API key for this run and print them. Implied when no credential at all is given (and no --redis-url).")
    var dev = false

    @Option(help: "Seconds of client silence before closing with 4008.")
    var heartbeatTimeout = 60.0

    @Option(help: "Per-symbol window in seconds: at most one price per symbol per window (0: none, benchmarks only).")
    var priceInterval = 5.0

    @Option(help: "Most open connections, HTTP and WebSocket together; a WebSocket past it is closed with 1013. Default: the open-files limit minus 128.")
    var maxConnections: Int?

    @Option(help: "Most WebSocket connections of one user (the token's sub); more are refused with CONNECTION_LIMIT and 1008.")
    var maxConnectionsPerUser = 20

    @Option(help: "Largest inbound frame in bytes; larger ones close with 1009.")
    var maxFrameBytes = 16384

    @Option(help: "Outbound bytes a client may have queued before it is closed with 4009.")
    var maxPendingBytes = 256 * 1024

    @Option(help: "The kernel send buffer of each client socket in bytes (SO_SNDBUF), so that --max-pending-bytes bounds how far behind a slow client falls; 0 leaves it to the kernel's autotuning (up to 4 MiB).")
    var socketSendBuffer = 64 * 1024

    @Option(help: "Comma-separated Origin allowlist for WebSocket upgrades (default: any).")
    var allowedOrigins: String?

    @Option(help: "Seconds a client may take to send an HTTP request head, and then a body it declared (408).")
    var httpRequestTimeout = 10.0

    @Option(help: "Seconds a kept-alive HTTP connection may sit idle between requests.")
    var httpKeepAliveTimeout = 30.0

    @Option(help: "Seconds over which SIGTERM closes clients with 1001.")
    var drainSeconds = 10.0

    @Option(help: "Sliding window and suspension of the per-connection rate limits, in seconds.")
    var rateLimitWindow = 60.0

    @Option(help: "Notifications kept per user for replay with since.")
    var notificationCapacity = 1000

    @Option(help: "Seconds a notification is kept for replay.")
    var notificationTtl = 7 * 86400

    @Option(help: "Event-loop threads (default: one per CPU core). Gateways sharing a machine should split its cores between them.")
    var threads: Int?

    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    @Flag(help: "Serve /echo, a WebSocket echo with the same frame handling as /ws, for conformance tests.")
    var conformanceEcho = false

    @Flag(help: "Share the port (SO_REUSEPORT) so a new process can start before this one drains: zero-downtime restarts.")
    var reusePort = false

    @Option(help: "Listen backlog: connections the kernel queues before they are accepted (capped by net.core.somaxconn). A reconnect storm needs it deep.")
    var listenBacklog: Int32 = 65535

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0 to 65535") }
        guard metricsPort.map({ (0...65535).contains($0) }) ?? true else { throw ValidationError("--metrics-port must be 0 to 65535") }
        guard metricsHost == nil || metricsPort != nil else { throw ValidationError("--metrics-host needs --metrics-port") }
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
        if let feed, feed != "none" { _ = try MarketDataOptions.parseSources(feed, option: "--feed") }
        if let redisURL {
            do { _ = try RedisConfiguration(url: redisURL) } catch { throw ValidationError("--redis-url: \(error)") }
        }
        guard feedTick > 0 else { throw ValidationError("--feed-tick must be positive") }
        guard jwtLeeway >= 0 else { throw ValidationError("--jwt-leeway must not be negative") }
        guard heartbeatTimeout > 0 else { throw ValidationError("--heartbeat-timeout must be positive") }
        guard priceInterval >= 0 else { throw ValidationError("--price-interval must not be negative") }
        guard maxConnections.map({ $0 > 0 }) ?? true else { throw ValidationError("--max-connections must be positive") }
        guard maxConnectionsPerUser > 0 else { throw ValidationError("--max-connections-per-user must be positive") }
        guard threads.map({ (1...256).contains($0) }) ?? true else { throw ValidationError("--threads must be 1 to 256") }
        guard listenBacklog > 0 else { throw ValidationError("--listen-backlog must be positive") }
        guard maxFrameBytes >= 128 else { throw ValidationError("--max-frame-bytes must be at least 128") }
        guard maxPendingBytes >= 4096 else { throw ValidationError("--max-pending-bytes must be at least 4096") }
        guard socketSendBuffer == 0 || socketSendBuffer >= 4096 else {
            throw ValidationError("--socket-send-buffer must be 0 (the kernel's autotuning) or at least 4096")
        }
        guard drainSeconds >= 0 else { throw ValidationError("--drain-seconds must not be negative") }
        guard httpRequestTimeout > 0 else { throw ValidationError("--http-request-timeout must be positive") }
        guard httpKeepAliveTimeout > 0 else { throw ValidationError("--http-keep-alive-timeout must be positive") }
        guard rateLimitWindow > 0 else { throw ValidationError("--rate-limit-window must be positive") }
        guard notificationCapacity > 0 else { throw ValidationError("--notification-capacity must be positive") }
        guard notificationTtl > 0 else { throw ValidationError("--notification-ttl must be positive") }
        guard redisWait >= 0 else { throw ValidationError("--redis-wait must not be negative") }
        guard redisWaitTimeout > 0 else { throw ValidationError("--redis-wait-timeout must be positive") }
        guard redisWait == 0 || redisURL != nil else { throw ValidationError("--redis-wait needs --redis-url") }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        let keySources = [jwtSecret, jwtPublicKey, jwks, jwksURL].compactMap { $0 }.count
        guard keySources <= 1 else { throw ValidationError("give one of --jwt-secret, --jwt-public-key, --jwks and --jwks-url") }
        if let jwksURL {
            guard jwksURL.hasPrefix("https://"), (try? HTTPClient.Target(url: jwksURL)) != nil else {
                throw ValidationError("--jwks-url must be an https:// URL: keys fetched in the clear could be anyone's")
            }
        }
        guard jwksCaFile == nil || jwksURL != nil else { throw ValidationError("--jwks-ca-file goes with --jwks-url") }
        guard jwksMinRefresh > 0 else { throw ValidationError("--jwks-min-refresh must be positive") }
        if let jwtSecret {
            do { _ = try JWTKeySet.hmacSecret(Array(jwtSecret.utf8), name: "--jwt-secret") } catch { throw ValidationError(error.description) }
        }
        if let apiKey, apiKey.count < Self.minimumAPIKeyLength || !BearerCredential.isToken(apiKey) {
            throw ValidationError(
                "--api-key must be at least \(Self.minimumAPIKeyLength) characters of A-Z a-z 0-9 - . _ ~ + / (e.g. `openssl rand -hex 16`)")
        }
        if !isDevMode {
            guard keySources > 0 else {
                throw ValidationError("no JWT key: give --jwt-secret, --jwt-public-key, --jwks or --jwks-url (or --dev to generate one for this run)")
            }
            guard apiKey != nil else {
                throw ValidationError("no API key: give --api-key (or --dev to generate one for this run)")
            }
        }
        _ = try symbolList()
    }

    static let minimumAPIKeyLength = 24

    /// Dev mode generates the credentials that are missing. It must be asked for once any
    /// credential is configured, so that a forgotten one is an error, never a key in the log;
    /// and in a cluster, where each process would generate its own.
    var isDevMode: Bool {
        dev || ([jwtSecret, jwtPublicKey, jwks, jwksURL, apiKey].allSatisfy { $0 == nil } && redisURL == nil)
    }

    func symbolList() throws -> [String] {
        do {
            let list = try Symbol.parseList(symbols)
            guard !list.isEmpty else { throw ValidationError("--symbols must name at least one symbol") }
            return list
        } catch let violation as ProtocolViolation {
            throw ValidationError("--symbols: \(violation.message)")
        }
    }

    func run() async throws {
        let logger = Logging.bootstrap(level: Logger.Level(rawValue: logLevel)!)
        let symbols = try symbolList()
        let (verifier, devSecret) = try makeVerifier()
        let apiKey = self.apiKey ?? DevCredentials.randomSecret()
        let tls = try loadTLS(logger: logger)

        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory.tickwire(registry: registry))
        // Before the port opens: a feed that cannot start (a symbol no source lists, a missing key,
        // an unreadable file) ends the command before any client is let in.
        let feedSources = feed ?? (redisURL == nil ? "simulated" : "none")
        let priceSource = feedSources == "none" ? nil : try marketData.makeSource(
            try MarketDataOptions.parseSources(feedSources, option: "--feed"), symbols: symbols, feedTick: feedTick, logger: logger)

        let ceiling = OpenFilesLimit.raiseToHardLimit()
        // Room below the limit for the sockets let in past the cap only to hear 1013, and for Redis and files.
        let connectionCap = maxConnections ?? max(1, ceiling - Gateway.overCapacityAllowance - 64)
        logger.info("open files limit", metadata: ["limit": "\(ceiling)", "max_connections": "\(connectionCap)"])

        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads ?? System.coreCount)
        let eventLoops = Array(group.makeIterator())
        // Prices, the broker's connections and the in-process feed run here, away from the client loops.
        let dispatchGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let dispatchLoop = dispatchGroup.next()
        let jwksRefresher = try makeJWKSRefresher(store: verifier.keyStore, eventLoop: dispatchLoop, logger: logger)
        jwksRefresher?.start()
        var limits = SessionLimits()
        limits.windowNanoseconds = UInt64(rateLimitWindow * 1e9)
        limits.suspensionNanoseconds = UInt64(rateLimitWindow * 1e9)
        let settings = SessionSettings(
            symbols: SymbolTable(symbols), verifier: verifier, limits: limits,
            heartbeatTimeoutNanoseconds: UInt64(heartbeatTimeout * 1e9))
        let metrics = GatewayMetrics(brokerName: redisURL == nil ? "memory" : "redis", loops: eventLoops.count)
        let broker: any Broker
        var redis: RedisBroker? = nil
        if let redisURL {
            var redisSettings = RedisBroker.Settings()
            redisSettings.keys = RedisKeys(prefix: redisPrefix)
            redisSettings.notificationCapacity = notificationCapacity
            redisSettings.retentionMilliseconds = Int64(notificationTtl) * 1000
            redisSettings.replicasToWait = redisWait
            redisSettings.replicaWaitTimeout = .milliseconds(Int64(redisWaitTimeout * 1000))
            redisSettings.symbols = symbols
            let redisBroker = RedisBroker(
                configuration: try RedisConfiguration(url: redisURL), settings: redisSettings, eventLoop: dispatchLoop,
                logger: logger,
                metrics: RedisBroker.Metrics(
                    reconnected: { metrics.brokerReconnects.increment() }, dropped: { metrics.droppedMessages.increment() }))
            redis = redisBroker
            broker = redisBroker
        } else {
            broker = InMemoryBroker(
                notificationCapacity: notificationCapacity, retentionMilliseconds: Int64(notificationTtl) * 1000)
        }
        let gateway = Gateway(
            settings: settings, eventLoops: eventLoops, dispatchLoop: dispatchLoop, broker: broker, metrics: metrics,
            priceIntervalNanoseconds: UInt64(priceInterval * 1e9), maximumConnections: connectionCap,
            maximumConnectionsPerUser: maxConnectionsPerUser, logger: logger)

        var serverConfiguration = ServerConfiguration()
        serverConfiguration.host = host
        serverConfiguration.port = port
        serverConfiguration.maximumFrameSize = maxFrameBytes
        serverConfiguration.maximumPendingBytes = maxPendingBytes
        serverConfiguration.socketSendBufferBytes = socketSendBuffer == 0 ? nil : socketSendBuffer
        serverConfiguration.allowedOrigins = (allowedOrigins ?? "").split(separator: ",").map {
            $0.trimmingWhitespace()
        }
        serverConfiguration.conformanceEcho = conformanceEcho
        serverConfiguration.reusePort = reusePort
        serverConfiguration.tls = tls
        serverConfiguration.devEndpoints = isDevMode
        serverConfiguration.metricsPort = metricsPort
        serverConfiguration.metricsHost = metricsHost
        serverConfiguration.listenBacklog = listenBacklog
        serverConfiguration.drainDuration = .nanoseconds(Int64(drainSeconds * 1e9))
        serverConfiguration.requestTimeout = .nanoseconds(Int64(httpRequestTimeout * 1e9))
        serverConfiguration.keepAliveTimeout = .nanoseconds(Int64(httpKeepAliveTimeout * 1e9))
        serverConfiguration.apiKey = apiKey
        let server = GatewayServer(
            configuration: serverConfiguration, gateway: gateway, group: group,
            renderMetrics: { registry.emitToBuffer() }, logger: logger)

        let sweepInterval = TimeAmount.nanoseconds(Int64(min(1.0, heartbeatTimeout / 4) * 1e9))
        await gateway.start(sweepInterval: sweepInterval)
        let address: SocketAddress
        do {
            address = try await server.bind()
        } catch {
            try? await group.shutdownGracefully()
            try? await dispatchGroup.shutdownGracefully()
            throw CLIError("cannot listen on \(host):\(port): \(error)")
        }
        let boundPort = address.port ?? port
        Banner.print(
            host: host, port: boundPort, symbols: symbols, devSecret: devSecret, generatedAPIKey: self.apiKey == nil ? apiKey : nil,
            echo: conformanceEcho, tls: tls != nil, metrics: server.metricsAddress.map { (metricsHost ?? host, $0.port ?? 0) })
        logger.info("listening", metadata: [
            "address": "\(host):\(boundPort)", "symbols": "\(symbols.count)",
            "broker": "\(redis.map { "redis \($0.configuration.redacted)" } ?? "memory")",
        ])

        var services: [any Service] = []
        if let priceSource {
            var feedSettings = FeedService.Settings(symbols: symbols, holderID: FeedHolder.id())
            feedSettings.priceInterval = .nanoseconds(Int64(priceInterval * 1e9))
            // In a cluster, gateways that also run a feed elect one publisher among themselves.
            let lock = redis.map { RedisLeaderLock(client: $0.client, key: $0.settings.keys.feedLeader) }
            services.append(FeedService(
                source: priceSource, broker: broker,
                lock: lock, settings: feedSettings, eventLoop: dispatchLoop, logger: logger))
        }
        // Shut down in reverse order: the server drains its clients while prices still flow.
        services.append(server)
        let serviceGroup = ServiceGroup(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [], logger: logger)
        let reloads = Task { if let tls { await Self.reloadOnSIGHUP(tls, logger: logger) } }
        defer {
            reloads.cancel()
            jwksRefresher?.stop()
        }
        try await serviceGroup.run()
        try await group.shutdownGracefully()
        try await dispatchGroup.shutdownGracefully()
    }

    /// The certificate for `--tls-cert` and `--tls-key`, if given; a file that cannot be used ends the command.
    func loadTLS(logger: Logger) throws -> ServerTLS? {
        guard let tlsCert, let tlsKey else { return nil }
        do {
            let tls = try ServerTLS(certificatePath: tlsCert, keyPath: tlsKey)
            Self.logValidity(tls.loaded, logger: logger)
            return tls
        } catch {
            throw CLIError("--tls-cert/--tls-key: \(error)")
        }
    }

    /// Certificate rotation: SIGHUP reads the files again; new connections get the new certificate,
    /// open ones keep theirs. A file that cannot be used leaves the current certificate in place.
    static func reloadOnSIGHUP(_ tls: ServerTLS, logger: Logger) async {
        for await _ in await UnixSignalsSequence(trapping: .sighup) {
            do {
                logValidity(try tls.reload(), logger: logger, reloaded: true)
            } catch {
                logger.error("TLS reload failed, the current certificate stays", metadata: ["error": "\(error)"])
            }
        }
    }

    static func logValidity(_ loaded: ServerTLS.Loaded, logger: Logger, reloaded: Bool = false) {
        let notAfter = Timestamp(millisecondsSinceEpoch: Int64(loaded.notValidAfter) * 1000)
        let metadata: Logger.Metadata = ["valid_until": "\(notAfter.rfc3339)"]
        if notAfter < Timestamp.now() {
            logger.warning("TLS certificate has expired: clients will refuse it", metadata: metadata)
        } else {
            logger.info(reloaded ? "TLS certificate reloaded" : "TLS certificate loaded", metadata: metadata)
        }
    }

    /// With `--jwks-url`: what keeps the verifier's keys fetched and fresh.
    func makeJWKSRefresher(store: JWTKeyStore, eventLoop: EventLoop, logger: Logger) throws -> JWKSRefresher? {
        guard let jwksURL else { return nil }
        let target = try HTTPClient.Target(url: jwksURL)
        let trust = HTTPClient.Trust(caFile: jwksCaFile)
        var schedule = JWKSRefreshSchedule()
        schedule.minimumInterval = .nanoseconds(Int64(jwksMinRefresh * 1e9))
        return JWKSRefresher(store: store, schedule: schedule, eventLoop: eventLoop, logger: logger) {
            let response = try await HTTPClient.request(target, method: .GET, headers: [("Accept", "application/json")], trust: trust)
            guard response.status == 200 else { throw CLIError("\(jwksURL) answered \(response.status)") }
            return JWKSRefresher.Fetched(keys: try JWTKeySet.parseJWKS(Array(response.body.utf8)), maxAge: response.maxAge)
        }
    }

    /// The verifier for the configured keys; with none, a random secret (dev mode), returned too.
    func makeVerifier() throws -> (JWTVerifier, devSecret: String?) {
        var keys = JWTKeySet()
        var devSecret: String? = nil
        if let jwtSecret {
            keys.add(try JWTKeySet.hmacSecret(Array(jwtSecret.utf8)))
        } else if let path = jwtPublicKey {
            let pem = try FileReader.readText(path, option: "--jwt-public-key")
            do { keys.add(try JWTKeySet.parsePEM(pem)) } catch { throw CLIError("--jwt-public-key \(path): \(error)") }
        } else if let path = jwks {
            let bytes = try FileReader.readBytes(path, option: "--jwks")
            do { keys = try JWTKeySet.parseJWKS(bytes) } catch { throw CLIError("--jwks \(path): \(error)") }
        } else if jwksURL != nil {
            // Filled by the JWKS refresher once the gateway runs.
        } else {
            let secret = DevCredentials.randomSecret()
            keys.add(.hmac(Array(secret.utf8)))
            devSecret = secret
        }
        return (JWTVerifier(keys: keys, issuer: jwtIssuer, audience: jwtAudience, leewaySeconds: jwtLeeway), devSecret)
    }
}
