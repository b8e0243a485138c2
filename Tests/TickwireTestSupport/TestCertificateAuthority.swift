import Foundation

/// A private certificate authority made for one test with the `openssl` CLI, issuing server
/// certificates for `localhost` and `127.0.0.1`.
public final class TestCertificateAuthority: Sendable {
    public let directory: String
    /// The CA certificate, for a client's trust store.
    public var certificatePath: String { directory + "/ca.pem" }

    /// A certificate and its key, as files.
    public struct Issued: Sendable {
        public var certificatePath: String
        public var keyPath: String

        public init(certificatePath: String, keyPath: String) {
            self.certificatePath = certificatePath
            self.keyPath = keyPath
        }
    }

    public init() async throws {
        directory = NSTemporaryDirectory() + "tickwire-ca-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try await Self.openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", directory + "/ca.key", "-out", certificatePath, "-days", "2", "-subj", "/CN=Tickwire Test CA",
        ])
    }

    /// A server certificate signed by this CA. `validDays: -1` makes one that has already expired.
    public func issue(_ name: String, validDays: Int = 1, serial: Int = 1) async throws -> Issued {
        let issued = Issued(certificatePath: "\(directory)/\(name).pem", keyPath: "\(directory)/\(name).key")
        let request = "\(directory)/\(name).csr"
        let extensions = "\(directory)/\(name).ext"
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n".write(
            toFile: extensions, atomically: true, encoding: .utf8)
        try await Self.openssl([
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", issued.keyPath,
            "-out", request, "-subj", "/CN=localhost",
        ])
        try await Self.openssl([
            "x509", "-req", "-in", request, "-CA", certificatePath, "-CAkey", directory + "/ca.key",
            "-set_serial", String(serial), "-days", String(validDays), "-extfile", extensions, "-out", issued.certificatePath,
        ])
        return issued
    }

    /// Runs `openssl` with `arguments` (off the cooperative pool); fails with its output if it does
    /// not exit 0, unless given `input` (then the caller judges the status).
    @discardableResult
    public static func openssl(_ arguments: [String], input: String? = nil, timeout: Duration = .seconds(20)) async throws -> (status: Int32, output: String) {
        try await offThePool { try runOpenSSL(arguments, input: input, timeout: timeout) }
    }

    static func runOpenSSL(_ arguments: [String], input: String?, timeout: Duration) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Executables.find("openssl") ?? "/usr/bin/openssl")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        let stdin = Pipe()
        process.standardInput = stdin
        try process.run()
        if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
        try stdin.fileHandleForWriting.close()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let status = try ChildProcess.waitForExitBlocking(process, timeout: timeout)
        if input == nil, status != 0 { throw SupportFailure("openssl \(arguments.joined(separator: " ")) failed: \(text)") }
        return (status, text)
    }
}
