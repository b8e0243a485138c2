import Logging
import Prometheus
import TickwireCore
import TickwireProtocol

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum Logging {
    /// Logs go to stderr, one line per event with key=value metadata. Tokens and query
    /// strings are never logged anywhere in Tickwire.
    static func bootstrap(level: Logger.Level) -> Logger {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: "tickwire")
    }
}

extension PrometheusMetricsFactory {
    static func tickwire(registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        // Delivery and lag are sub-millisecond when healthy and seconds when not.
        factory.defaultDurationHistogramBuckets = [
            .microseconds(50), .microseconds(100), .microseconds(150), .microseconds(200), .microseconds(300),
            .microseconds(400), .microseconds(500), .microseconds(750), .milliseconds(1), .milliseconds(1.5),
            .milliseconds(2), .milliseconds(3), .milliseconds(5), .milliseconds(7.5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
        ]
        return factory
    }
}

enum OpenFilesLimit {
    /// Raises the soft RLIMIT_NOFILE to the hard limit and returns the resulting soft limit.
    /// Each WebSocket connection holds one file descriptor.
    static func raiseToHardLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return Int(clamping: limit.rlim_cur)
    }
}

enum DevCredentials {
    /// 32 random bytes as base64url: a dev JWT secret or API key.
    static func randomSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Base64.encodeURL(bytes)
    }
}

enum FileReader {
    static func readBytes(_ path: String, option: String) throws -> [UInt8] {
        guard let file = fopen(path, "rb") else {
            throw CLIError("cannot read \(option) \(path): \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count > 0 { bytes.append(contentsOf: chunk[0..<count]) }
            if count < chunk.count { break }
            if bytes.count > 1 << 20 { throw CLIError("\(option) \(path) is larger than 1 MiB") }
        }
        return bytes
    }

    static func readText(_ path: String, option: String) throws -> String {
        let bytes = try readBytes(path, option: option)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw CLIError("\(option) \(path) is not UTF-8 text")
        }
        return text
    }
}

enum Banner {
    /// What `serve` prints on stdout once it listens: the URL, and in dev mode the generated credentials.
    static func print(
        host: String, port: Int, symbols: [String], devSecret: String?, generatedAPIKey: String?, echo: Bool,
        tls: Bool = false, metrics: (host: String, port: Int)?
    ) {
        let shownHost = Self.shown(host)
        let (ws, http) = tls ? ("wss", "https") : ("ws", "http")
        var lines = ["tickwire \(Tickwire.version) listening on \(ws)://\(host):\(port)/ws"]
        if let metrics {
            lines += ["  \(http)://\(shownHost):\(port)/healthz /readyz /api/v1/prices /api/v1/publish",
                      "  metrics on http://\(Self.shown(metrics.host)):\(metrics.port)/metrics"]
        } else {
            lines += ["  \(http)://\(shownHost):\(port)/healthz /readyz /metrics /api/v1/prices /api/v1/publish"]
        }
        lines += ["  symbols: \(symbols.joined(separator: ","))"]
        if echo { lines.append("  conformance echo on \(ws)://\(shownHost):\(port)/echo") }
        if let devSecret {
            let token = HS256TokenSigner(secret: devSecret).token(subject: "demo", lifetimeSeconds: 86400)
            lines += [
                "",
                "!! DEV MODE: no --jwt-secret, --jwt-public-key or --jwks given. A random secret was generated",
                "!! for this run only; tokens die with the process. Do not run this way in production.",
                "  dev token for user \"demo\" (24 h): \(token)",
                "  connect: \(ws)://\(shownHost):\(port)/ws?token=\(token)",
                "  board:   \(http)://\(shownHost):\(port)/?token=\(token)",
            ]
        }
        if let generatedAPIKey {
            lines += [
                "!! DEV MODE: no --api-key given. Generated for this run: \(generatedAPIKey)",
                "  publish: curl -X POST \(http)://\(shownHost):\(port)/api/v1/publish -H 'Authorization: Bearer \(generatedAPIKey)' \\",
                "    -d '{\"user_id\":\"demo\",\"event\":\"notification\",\"data\":{\"notification_id\":\"n1\",\"type\":\"info\",\"title\":\"Hello\",\"message\":\"It works\",\"priority\":\"normal\"}}'",
            ]
        }
        StandardStream.write(lines.joined(separator: "\n") + "\n", to: 1)
    }

    /// A wildcard address is reached through loopback on this machine.
    static func shown(_ host: String) -> String {
        host == "0.0.0.0" || host == "::" ? "127.0.0.1" : host
    }
}

enum StandardStream {
    /// Unbuffered write to a file descriptor (1: stdout, 2: stderr), so that lines reach a pipe at once.
    static func write(_ text: String, to descriptor: Int32) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { buffer in
                #if canImport(Glibc)
                Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                #else
                Darwin.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                #endif
            }
            if written <= 0 { return }
            offset += written
        }
    }
}
