import Foundation
import NIOConcurrencyHelpers
import Testing
@_exported import TickwireTestSupport

/// A real `tickwire serve` process on a free port, for one test.
final class TestServer: @unchecked Sendable {
    static let jwtSecret = "integration-test-secret-0123456789abcdef"
    static let apiKey = "integration-test-api-key"

    let child: TestProcess
    let port: Int

    /// The package root, found from this file's path.
    static let packageRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }
        return url
    }()

    static var binary: URL {
        if let path = ProcessInfo.processInfo.environment["TICKWIRE_BINARY"] { return URL(fileURLWithPath: path) }
        return packageRoot.appendingPathComponent(".build/debug/tickwire")
    }

    /// Starts `tickwire serve --port 0` with the test secret and API key plus `arguments`,
    /// and waits until it prints the port it listens on.
    /// Which of the test credentials `start` passes.
    enum Credentials {
        case secretAndAPIKey
        /// The test gives its own JWT key (a public key, a JWKS).
        case apiKeyOnly
        /// Nothing: dev mode, or a test of what happens without them.
        case none
    }

    static func start(
        _ arguments: [String] = [], environment: [String: String] = [:], credentials: Credentials = .secretAndAPIKey,
        openFilesLimit: Int? = nil
    ) async throws -> TestServer {
        var all = ["serve", "--host", "127.0.0.1", "--port", "0", "--log-level", "debug"]
        switch credentials {
        case .secretAndAPIKey: all += ["--jwt-secret", jwtSecret, "--api-key", apiKey]
        case .apiKeyOnly: all += ["--api-key", apiKey]
        case .none: break
        }
        all += arguments
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw TestFailure("\(binary.path) is missing: run `swift build` first")
        }
        let child = try TestProcess.launch(all, environment: environment, openFilesLimit: openFilesLimit)
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if let port = child.listeningPort { return TestServer(child: child, port: port) }
            if !ChildProcess.isAlive(child.process.processIdentifier) {
                throw TestFailure("tickwire exited: \(child.stderr)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        child.signal(SIGKILL)
        throw TestFailure("tickwire did not report its port: \(child.stdout) \(child.stderr)")
    }

    private init(child: TestProcess, port: Int) {
        self.child = child
        self.port = port
    }

    var stdout: String { child.stdout }
    var stderr: String { child.stderr }

    func connect(
        token: String? = nil, user: String = "alice", path: String = "/ws", headers: [(String, String)] = [],
        answersClose: Bool = true
    ) async throws -> TestWebSocket {
        try await TestWebSocket.connect(
            port: port, path: path, token: token ?? Tokens.make(subject: user), headers: headers, answersClose: answersClose)
    }

    /// Connects and reads the `connected` frame.
    func connectReady(user: String = "alice", token: String? = nil) async throws -> TestWebSocket {
        let socket = try await connect(token: token, user: user)
        let connected = try await socket.nextEvent()
        guard connected.name == "connected" else { throw TestFailure("expected connected, got \(connected)") }
        return socket
    }

    func signal(_ signal: Int32) {
        child.signal(signal)
    }

    /// Waits for the process to exit and returns its status.
    func waitForExit(timeout: Duration) async throws -> Int32 {
        try await child.waitForExit(timeout: timeout)
    }

    func http(_ method: String, _ path: String, headers: [(String, String)] = [], body: String? = nil) async throws -> HTTPResult {
        try await TestHTTP.request(port: port, method: method, path: path, headers: headers, body: body)
    }

    /// Publishes a notification through the HTTP API and returns its id.
    @discardableResult
    func publish(user: String, event: String = "notification", data: JSONText = .sampleNotification) async throws -> String {
        let body = #"{"user_id":"\#(user)","event":"\#(event)","data":\#(data.text)}"#
        let result = try await http("POST", "/api/v1/publish", headers: [("Authorization", "Bearer \(Self.apiKey)")], body: body)
        guard result.status == 200, let id = result.json?["id"]?.stringValue else {
            throw TestFailure("publish failed: \(result.status) \(result.body)")
        }
        return id
    }

    /// The port of `--metrics-port`, read from the banner (`metrics on http://HOST:PORT/metrics`).
    var metricsPort: Int? {
        guard let line = stdout.split(separator: "\n").first(where: { $0.contains("metrics on http://") }) else { return nil }
        return Int(line.split(separator: ":").last?.split(separator: "/").first ?? "")
    }

    /// The value of one Prometheus sample, e.g. `tickwire_disconnects_total{code="4009"}`, read from
    /// the metrics port when the server has one (a request there is not one of the sockets it counts).
    func metric(_ sample: String) async throws -> Double? {
        let text = try await TestHTTP.request(port: metricsPort ?? port, method: "GET", path: "/metrics").body
        for line in text.split(separator: "\n") where line.hasPrefix(sample + " ") {
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }
}

/// JSON text for a publish body's `data`.
struct JSONText: Sendable {
    var text: String
    static let sampleNotification = JSONText(
        text: #"{"notification_id":"n1","type":"kyc_approved","title":"KYC Verification Approved","message":"Your identity verification has been approved","priority":"high"}"#)
    static func notification(_ id: String) -> JSONText {
        JSONText(text: #"{"notification_id":"\#(id)","type":"info","title":"T","message":"M","priority":"normal"}"#)
    }
}

/// Collects a child's stdout and stderr as they arrive.
final class OutputCollector: @unchecked Sendable {
    let stdoutPipe = Pipe()
    let stderrPipe = Pipe()
    private let state = NIOLockedValueBox((stdout: "", stderr: ""))

    init() {
        stdoutPipe.fileHandleForReading.readabilityHandler = { [state] handle in
            let data = handle.availableData
            state.withLockedValue { $0.stdout += String(decoding: data, as: UTF8.self) }
        }
        stderrPipe.fileHandleForReading.readabilityHandler = { [state] handle in
            let data = handle.availableData
            state.withLockedValue { $0.stderr += String(decoding: data, as: UTF8.self) }
        }
    }

    var stdout: String { state.withLockedValue { $0.stdout } }
    var stderr: String { state.withLockedValue { $0.stderr } }

    var listeningPort: Int? {
        guard let range = stdout.range(of: #"listening on wss?://[^ ]*:(\d+)/ws"#, options: .regularExpression) else { return nil }
        let match = stdout[range]
        guard let colon = match.lastIndex(of: ":") else { return nil }
        return Int(match[match.index(after: colon)...].prefix { $0.isNumber })
    }
}
