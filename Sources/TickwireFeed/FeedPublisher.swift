import Logging
import ServiceLifecycle
import TickwireCore
import TickwireProtocol

/// Runs a price source and publishes what it emits through a broker, until graceful shutdown.
public struct FeedPublisher: Service {
    let source: any PriceSource
    let symbols: [String]
    let broker: any Broker
    let logger: Logger

    public init(source: any PriceSource, symbols: [String], broker: any Broker, logger: Logger) {
        self.source = source
        self.symbols = symbols
        self.broker = broker
        self.logger = logger
    }

    public func run() async throws {
        logger.info("price feed started", metadata: ["source": "\(source.name)", "symbols": "\(symbols.count)"])
        let broker = self.broker
        let logger = self.logger
        do {
            try await cancelWhenGracefulShutdown {
                try await source.run(symbols: symbols) { price in
                    do {
                        try await broker.publish(price: price)
                        logger.trace("published price", metadata: ["symbol": "\(price.symbol)", "price": "\(price.priceUSD)"])
                    } catch {
                        logger.warning("could not publish a price", metadata: ["symbol": "\(price.symbol)", "error": "\(error)"])
                    }
                }
            }
        } catch is CancellationError {
            // Graceful shutdown: the source stops between ticks.
        }
        logger.info("price feed stopped")
    }
}
