// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Tickwire",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tickwire", targets: ["tickwire"]),
        .library(name: "TickwireProtocol", targets: ["TickwireProtocol"]),
        .library(name: "TickwireKit", targets: ["TickwireKit"]),
        // For the fuzz targets in Fuzz/ only: the parsers they feed. No API promise.
        .library(
            name: "TickwireInternals",
            targets: ["TickwireWebSocket", "RESP", "TickwireCore", "TickwireMarketData", "TickwireServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
    ],
    targets: [
        .target(name: "TickwireProtocol"),
        .target(
            name: "TickwireWeb",
            exclude: [],
            resources: [.embedInCode("board.html"), .embedInCode("tickwire.js"), .embedInCode("tickwire.d.ts")]
        ),
        .target(
            name: "RESP",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "TickwireWebSocket",
            dependencies: [
                "TickwireProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "TickwireCore",
            dependencies: [
                "TickwireProtocol",
                "TickwireWebSocket",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        .target(
            name: "TickwireFeed",
            dependencies: [
                "TickwireProtocol",
                "TickwireCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "TickwireMarketData",
            dependencies: [
                "TickwireProtocol",
                "TickwireFeed",
                "TickwireHTTPClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "TickwireServer",
            dependencies: [
                "TickwireProtocol",
                "TickwireCore",
                "TickwireWeb",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "TickwireKit",
            dependencies: [
                "TickwireProtocol",
                "TickwireWebSocket",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .target(
            name: "TickwireHTTPClient",
            dependencies: [
                "TickwireProtocol",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .target(
            name: "TickwireBench",
            dependencies: [
                "TickwireProtocol",
                "TickwireRedis",
                "RESP",
                .product(name: "Logging", package: "swift-log"),
                "TickwireWebSocket",
                "TickwireCore",
                "TickwireHTTPClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .target(
            name: "TickwireRedis",
            dependencies: [
                "RESP",
                "TickwireProtocol",
                "TickwireCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "TickwireCommands",
            dependencies: [
                "TickwireProtocol",
                "TickwireCore",
                "TickwireServer",
                "TickwireFeed",
                "TickwireMarketData",
                "TickwireRedis",
                "TickwireHTTPClient",
                "TickwireBench",
                "RESP",
                "TickwireWebSocket",
                "TickwireKit",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(name: "tickwire", dependencies: ["TickwireCommands"]),
        // README's Swift quick start, compiled with the package so that it stays true.
        .executableTarget(name: "tickwire-quickstart", dependencies: ["TickwireKit"], path: "Examples/QuickStart"),
        .testTarget(name: "TickwireProtocolTests", dependencies: ["TickwireProtocol"]),
        .testTarget(
            name: "TickwireCommandsTests",
            dependencies: ["TickwireCommands", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .testTarget(
            name: "TickwireBenchTests",
            dependencies: [
                "TickwireBench",
                "TickwireHTTPClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),
        .target(
            name: "TickwireTestSupport",
            dependencies: [
                "TickwireProtocol",
                "TickwireWebSocket",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Tests/TickwireTestSupport"
        ),
        .testTarget(
            name: "RESPTests",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                "RESP",
                "TickwireTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "TickwireWebSocketTests",
            dependencies: ["TickwireWebSocket", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "TickwireCoreTests",
            dependencies: [
                "TickwireCore",
                "TickwireProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "TickwireMarketDataTests",
            dependencies: [
                "TickwireMarketData",
                "TickwireProtocol",
                "TickwireTestSupport",
                "TickwireWebSocket",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "TickwireServerTests",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                "TickwireServer",
                "TickwireCore",
                "TickwireProtocol",
                "TickwireWebSocket",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "TickwireKitTests",
            dependencies: [
                "TickwireKit",
                "TickwireProtocol",
                "TickwireTestSupport",
                "TickwireWebSocket",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "TickwireIntegrationTests",
            dependencies: [
                "TickwireKit",
                "TickwireTestSupport",
                "TickwireRedis",
                "TickwireProtocol",
                "TickwireWebSocket",
                "TickwireCore",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
    ]
)
