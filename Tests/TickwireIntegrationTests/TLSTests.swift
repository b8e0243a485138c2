import Foundation
import NIOSSL
import Testing
import TickwireProtocol

/// `wss://` and `https://` on the gateway's one port, with a private CA made for each test.
@Suite(.timeLimit(.minutes(1)))
struct TLS {
    let authority: TestCertificateAuthority

    init() async throws {
        authority = try await TestCertificateAuthority()
    }

    func start(_ certificate: TestCertificateAuthority.Issued, _ extra: [String] = []) async throws -> TestServer {
        try await TestServer.start(
            ["--feed", "none", "--tls-cert", certificate.certificatePath, "--tls-key", certificate.keyPath] + extra)
    }

    /// A client context that trusts the test CA only.
    func trustingContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .file(authority.certificatePath)
        return try NIOSSLContext(configuration: configuration)
    }

    /// What `openssl s_client` sees of a TLS handshake with the gateway (`-brief` output, and the
    /// server certificate's serial number).
    func handshake(port: Int, _ options: [String] = []) async throws -> (status: Int32, output: String) {
        try await TestCertificateAuthority.openssl(
            ["s_client", "-connect", "127.0.0.1:\(port)", "-servername", "localhost", "-CAfile", authority.certificatePath,
             "-verify_return_error"] + options,
            input: "")
    }

    func servedSerial(port: Int) async throws -> String {
        let session = try await handshake(port: port)
        return try await TestCertificateAuthority.openssl(["x509", "-noout", "-serial"], input: session.output).output.trimmingWhitespace()
    }

    /// A browser-like client (Node's WebSocket, no SDK) over wss, and a publish over https with
    /// `tickwire publish --ca-file`: both on the one port.
    @Test func wssAndHTTPSShareThePort() async throws {
        let server = try await start(try await authority.issue("server"))
        #expect(server.stdout.contains("listening on wss://"))
        let script = """
            const ws = new WebSocket(process.argv[1]);
            ws.onopen = () => ws.send(JSON.stringify({action: "subscribe", channel: "notifications", user_id: "alice"}));
            ws.onmessage = ({data}) => { console.log(data); if (JSON.parse(data).event === "notification") process.exit(0); };
            ws.onerror = () => { console.error("websocket error"); process.exit(1); };
            """
        let client = try TestProcess.launch(
            ["--experimental-websocket", "-e", script, "wss://localhost:\(server.port)/ws?token=\(Tokens.make(subject: "alice"))"],
            environment: ["NODE_EXTRA_CA_CERTS": authority.certificatePath], program: "node")
        try await eventually(timeout: .seconds(10), "the node client subscribed over wss") {
            client.stdout.contains(#""event":"subscribed""#)
        }
        let publish = try await TestProcess.run(nil, [
            "publish", "--url", "https://localhost:\(server.port)", "--ca-file", authority.certificatePath,
            "--api-key", TestServer.apiKey, "--user", "alice", "--event", "notification", "--data", JSONText.sampleNotification.text,
        ])
        #expect(publish.status == 0, "\(publish.stderr)")
        let id = publish.stdout.trimmingWhitespace()
        #expect(try await client.waitForExit(timeout: .seconds(10)) == 0, "\(client.stderr)")
        #expect(client.stdout.contains(#""id":"\#(id)""#))

        let untrusted = try await TestProcess.run(nil, [
            "publish", "--url", "https://localhost:\(server.port)", "--api-key", TestServer.apiKey, "--user", "alice",
            "--event", "notification", "--data", JSONText.sampleNotification.text,
        ])
        #expect(untrusted.status != 0, "a certificate from an unknown CA is refused")
    }

    @Test func onlyTLS12And13AndSessionsResume() async throws {
        let server = try await start(try await authority.issue("server"))
        #expect(try await handshake(port: server.port, ["-tls1_1"]).status != 0)
        #expect(try await handshake(port: server.port, ["-tls1_2"]).output.contains("TLSv1.2"))
        #expect(try await handshake(port: server.port, ["-tls1_3"]).output.contains("TLSv1.3"))
        let session = authority.directory + "/session.pem"
        let first = try await handshake(port: server.port, ["-tls1_2", "-sess_out", session])
        #expect(first.output.contains("New, TLSv1.2"), "\(first.output)")
        let second = try await handshake(port: server.port, ["-tls1_2", "-sess_in", session])
        #expect(second.output.contains("Reused, TLSv1.2"), "a ticket resumes the session: \(second.output)")
    }

    /// Certificate rotation: SIGHUP reads the files again; connections opened before keep going.
    @Test func sighupReloadsTheCertificateWithoutDroppingConnections() async throws {
        let first = try await authority.issue("first", serial: 1)
        let live = TestCertificateAuthority.Issued(
            certificatePath: authority.directory + "/live.pem", keyPath: authority.directory + "/live.key")
        try FileManager.default.copyItem(atPath: first.certificatePath, toPath: live.certificatePath)
        try FileManager.default.copyItem(atPath: first.keyPath, toPath: live.keyPath)
        let server = try await start(live)
        #expect(try await servedSerial(port: server.port) == "serial=01")
        let before = try await TestWebSocket.connect(port: server.port, token: Tokens.make(subject: "alice"), tls: try trustingContext())
        #expect(try await before.nextEvent().name == "connected")

        let second = try await authority.issue("second", serial: 2)
        for (source, target) in [(second.certificatePath, live.certificatePath), (second.keyPath, live.keyPath)] {
            try FileManager.default.removeItem(atPath: target)
            try FileManager.default.copyItem(atPath: source, toPath: target)
        }
        server.signal(SIGHUP)
        try await eventually("new handshakes get the new certificate") { try await servedSerial(port: server.port) == "serial=02" }
        #expect(server.stderr.contains("TLS certificate reloaded"))

        try await before.send(#"{"action":"ping"}"#)
        #expect(try await before.nextEvent().name == "pong", "the connection from before the reload is still up")
        let after = try await TestWebSocket.connect(port: server.port, token: Tokens.make(subject: "bob"), tls: try trustingContext())
        #expect(try await after.nextEvent().name == "connected")
    }

    @Test func anExpiredCertificateIsRefusedByClientsAndLogged() async throws {
        let server = try await start(try await authority.issue("expired", validDays: -1))
        try await eventually("the gateway warns") { server.stderr.contains("TLS certificate has expired") }
        let curl = try await TestProcess.run("curl", [
            "-sS", "--cacert", authority.certificatePath, "https://localhost:\(server.port)/healthz",
        ])
        #expect(curl.status != 0)
        #expect(curl.stderr.contains("expired"), "\(curl.stderr)")
        await #expect(throws: (any Error).self) {
            _ = try await TestWebSocket.connect(port: server.port, token: Tokens.make(subject: "alice"), tls: try trustingContext())
        }
    }

    @Test func certificateFilesThatCannotBeUsedStopTheStartWithOneLine() async throws {
        let issued = try await authority.issue("server")
        let other = try await authority.issue("other")
        for (certificate, key, expected) in [
            ("/does/not/exist.pem", issued.keyPath, "cannot read the certificate chain"),
            (issued.certificatePath, "/does/not/exist.key", "cannot read the private key"),
            (issued.certificatePath, other.keyPath, "does not go with"),
        ] {
            let result = try await TestProcess.run(nil, [
                "serve", "--port", "0", "--jwt-secret", TestServer.jwtSecret, "--api-key", TestServer.apiKey,
                "--tls-cert", certificate, "--tls-key", key,
            ])
            #expect(result.status != 0)
            let lines = result.stderr.split(separator: "\n").filter { $0.hasPrefix("tickwire: error: ") }
            #expect(lines.count == 1 && lines.first?.contains(expected) == true, "\(result.stderr)")
        }
    }
}
