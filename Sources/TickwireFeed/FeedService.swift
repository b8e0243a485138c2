import Logging
import NIOCore
import ServiceLifecycle
import TickwireCore
import TickwireProtocol

/// `tickwire feed`: runs a price source, applies the per-symbol window (latest wins),
/// and publishes through a broker. With a lock, several replicas run and only the
/// elected leader publishes; a standby takes over when the leader's lock expires.
public final class FeedService: Service, Sendable {
    public struct Settings: Sendable {
        public var symbols: [String]
        public var priceInterval: Duration = .seconds(5)
        public var leaderTTL: Duration = .seconds(6)
        public var holderID: String

        public init(symbols: [String], holderID: String) {
            self.symbols = symbols
            self.holderID = holderID
        }
    }

    let source: any PriceSource
    let broker: any Broker
    let lock: (any LeaderLock)?
    let settings: Settings
    let eventLoop: EventLoop
    let logger: Logger

    public init(
        source: any PriceSource, broker: any Broker, lock: (any LeaderLock)?, settings: Settings, eventLoop: EventLoop,
        logger: Logger
    ) {
        self.source = source
        self.broker = broker
        self.lock = lock
        self.settings = settings
        self.eventLoop = eventLoop
        self.logger = logger
    }

    public func run() async throws {
        guard let lock else {
            logger.info("feed publishing (no leader election)", metadata: ["source": "\(source.name)"])
            await cancelWhenGracefulShutdown { await self.publish() }
            return
        }
        var election = LeaderElection(ttl: settings.leaderTTL)
        var publishing: Task<Void, Never>?
        logger.info("feed standing by for leadership", metadata: ["holder": "\(settings.holderID)"])
        func perform(_ action: LeaderElection.Action) {
            switch action {
            case .startPublishing:
                logger.info("feed became the leader: publishing", metadata: ["holder": "\(settings.holderID)"])
                publishing = Task { await self.publish() }
            case .stopPublishing:
                logger.warning("feed lost the leadership: standing by", metadata: ["holder": "\(settings.holderID)"])
                publishing?.cancel()
                publishing = nil
            case .tryToAcquire, .renew, .none:
                break
            }
        }
        // A leader renews three times per lock lifetime; a standby asks every second at most,
        // so it takes over within a second of a clean hand-over and within the lifetime of a crash.
        let renewInterval = settings.leaderTTL / 3
        let standbyInterval = min(renewInterval, .seconds(1))
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            switch election.tick() {
            case .tryToAcquire:
                let result = await Result(catching: { try await lock.acquire(holder: settings.holderID, ttl: settings.leaderTTL) })
                perform(election.acquireFinished(result, now: .now))
            case .renew:
                let result = await Result(catching: { try await lock.renew(holder: settings.holderID, ttl: settings.leaderTTL) })
                perform(election.renewFinished(result, now: .now))
            default:
                break
            }
            let pause = election.isLeader ? renewInterval : standbyInterval
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
        }
        publishing?.cancel()
        await publishing?.value
        if election.resign() {
            try? await lock.release(holder: settings.holderID)
            logger.info("feed released the leadership")
        }
    }

    /// Source, window, broker, until cancelled.
    func publish() async {
        let broker = self.broker
        let logger = self.logger
        let gate = PriceGate(
            eventLoop: eventLoop, symbols: SymbolTable(settings.symbols),
            intervalNanoseconds: UInt64(settings.priceInterval.components.seconds) * 1_000_000_000
                + UInt64(settings.priceInterval.components.attoseconds / 1_000_000_000)
        ) { batch in
            let prices = batch.map(\.price)
            Task {
                do {
                    try await broker.publish(prices: prices)
                    for price in prices {
                        logger.debug("published", metadata: ["symbol": "\(price.symbol)", "price_usd": "\(price.priceUSD)"])
                    }
                } catch {
                    logger.warning("could not publish prices", metadata: ["count": "\(prices.count)", "error": "\(error)"])
                }
            }
        }
        do {
            try await source.run(symbols: settings.symbols) { prices in gate.offer(prices) }
        } catch is CancellationError {
        } catch {
            logger.error("price source failed", metadata: ["source": "\(source.name)", "error": "\(error)"])
        }
    }
}

extension Result where Failure == Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
