// swift-tools-version: 6.1
// Tickwire's fuzz targets (libFuzzer). Not part of the main build: the targets are built with
// `-sanitize=fuzzer,address`, which replaces `main` with libFuzzer's. Run them with
// `scripts/fuzz.sh TARGET SECONDS`; docs/RELIABILITY.md lists them and what they have run.
import PackageDescription

let internals = Target.Dependency.product(name: "TickwireInternals", package: "Tickwire")
let protocolModule = Target.Dependency.product(name: "TickwireProtocol", package: "Tickwire")
let nioCore = Target.Dependency.product(name: "NIOCore", package: "swift-nio")

let package = Package(
    name: "TickwireFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Tickwire", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        .target(name: "FuzzSupport"),
        .executableTarget(name: "FuzzWebSocketFrames", dependencies: ["FuzzSupport", internals, nioCore]),
        .executableTarget(name: "FuzzClientMessages", dependencies: ["FuzzSupport", protocolModule]),
        .executableTarget(name: "FuzzJWT", dependencies: ["FuzzSupport", internals, protocolModule]),
        .executableTarget(name: "FuzzRESP", dependencies: ["FuzzSupport", internals, nioCore]),
        .executableTarget(name: "FuzzJSONDifferential", dependencies: ["FuzzSupport", protocolModule]),
        .executableTarget(name: "FuzzDecimalDifferential", dependencies: ["FuzzSupport", internals]),
        .executableTarget(
            name: "FuzzHTTP",
            dependencies: [
                "FuzzSupport", internals, protocolModule, nioCore,
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]),
    ]
)
