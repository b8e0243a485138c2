import NIOConcurrencyHelpers
import NIOSSL

/// The certificate the gateway serves `wss://` and `https://` with, read from PEM files
/// (a chain allowed) and reloadable: after `reload()`, new connections get the new
/// certificate while open ones keep theirs, so a rotation drops nobody.
///
/// TLS 1.2 and 1.3 only. Session resumption is BoringSSL's default for a server context:
/// tickets, keyed per context, so a reload makes the next handshake of each client a full one.
public final class ServerTLS: Sendable {
    public let certificatePath: String
    public let keyPath: String
    private let current: NIOLockedValueBox<Loaded>

    /// A context and what the logs say about its certificate.
    public struct Loaded: Sendable {
        let context: NIOSSLContext
        /// The leaf certificate's validity, seconds since 1970.
        public let notValidBefore: Int
        public let notValidAfter: Int
    }

    /// Why the files could not be used, in one line naming the file.
    public struct LoadingError: Error, CustomStringConvertible {
        public var description: String
    }

    public init(certificatePath: String, keyPath: String) throws(LoadingError) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.current = NIOLockedValueBox(try Self.load(certificatePath: certificatePath, keyPath: keyPath))
    }

    /// Reads the files again; on failure the current certificate stays in use.
    @discardableResult
    public func reload() throws(LoadingError) -> Loaded {
        let loaded = try Self.load(certificatePath: certificatePath, keyPath: keyPath)
        current.withLockedValue { $0 = loaded }
        return loaded
    }

    public var loaded: Loaded { current.withLockedValue { $0 } }

    var context: NIOSSLContext { loaded.context }

    static func load(certificatePath: String, keyPath: String) throws(LoadingError) -> Loaded {
        let chain: [NIOSSLCertificate]
        do { chain = try NIOSSLCertificate.fromPEMFile(certificatePath) } catch {
            throw LoadingError(description: "cannot read the certificate chain \(certificatePath): \(error)")
        }
        guard let leaf = chain.first else { throw LoadingError(description: "no certificate in \(certificatePath)") }
        let key: NIOSSLPrivateKey
        do { key = try NIOSSLPrivateKey(file: keyPath, format: .pem) } catch {
            throw LoadingError(description: "cannot read the private key \(keyPath): \(error)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        configuration.maximumTLSVersion = .tlsv13
        configuration.applicationProtocols = ["http/1.1"]
        do {
            return Loaded(
                context: try NIOSSLContext(configuration: configuration),
                notValidBefore: Int(leaf.notValidBefore), notValidAfter: Int(leaf.notValidAfter))
        } catch {
            throw LoadingError(description: "\(keyPath) does not go with \(certificatePath): \(error)")
        }
    }
}
