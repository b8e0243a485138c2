/// Where and how to connect, read from a `redis://` or `rediss://` URL:
/// `redis[s]://[[user]:password@]host[:port][/db][?tls_ca_file=PATH&tls_verify=none]`.
public struct RedisConfiguration: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var username: String?
    public var password: String?
    public var database: Int
    public var tls: Bool
    /// PEM file of the certificate authorities to trust (`tls_ca_file`); default: the system's.
    public var tlsCAFile: String?
    /// False with `tls_verify=none`: encrypt without checking the server certificate.
    public var tlsVerify: Bool
    public var connectTimeout: Duration = .seconds(3)
    public var commandTimeout: Duration = .seconds(5)

    public init(host: String = "127.0.0.1", port: Int = 6379, password: String? = nil, database: Int = 0) {
        self.host = host
        self.port = port
        self.username = nil
        self.password = password
        self.database = database
        self.tls = false
        self.tlsCAFile = nil
        self.tlsVerify = true
    }

    public struct InvalidURL: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public init(url: String) throws(InvalidURL) {
        func invalid(_ reason: String) -> InvalidURL { InvalidURL(description: "invalid Redis URL: \(reason)") }
        var rest = Substring(url)
        if rest.hasPrefix("redis://") {
            tls = false
            rest = rest.dropFirst("redis://".count)
        } else if rest.hasPrefix("rediss://") {
            tls = true
            rest = rest.dropFirst("rediss://".count)
        } else {
            throw invalid("expected redis:// or rediss://")
        }
        tlsCAFile = nil
        tlsVerify = true
        var query: Substring = ""
        if let question = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: question)...]
            rest = rest[..<question]
        }
        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        username = nil
        password = nil
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let user = Self.percentDecoded(credentials[..<colon])
                username = user.isEmpty ? nil : user
                password = Self.percentDecoded(credentials[credentials.index(after: colon)...])
            } else {
                password = Self.percentDecoded(credentials)
            }
        }
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw invalid("unclosed [ in host") }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            rest = rest[rest.index(after: close)...]
            if rest.hasPrefix(":") {
                guard let value = Int(rest.dropFirst()), (1...65535).contains(value) else { throw invalid("bad port") }
                port = value
            } else {
                port = 6379
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            guard let value = Int(rest[rest.index(after: colon)...]), (1...65535).contains(value) else {
                throw invalid("bad port")
            }
            port = value
        } else {
            host = String(rest)
            port = 6379
        }
        guard !host.isEmpty else { throw invalid("no host") }
        if path.isEmpty {
            database = 0
        } else {
            guard let db = Int(path), db >= 0 else { throw invalid("the path must be a database number") }
            database = db
        }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            let key = parts[0]
            let value = parts.count > 1 ? Self.percentDecoded(parts[1]) : ""
            switch key {
            case "tls_ca_file": tlsCAFile = value
            case "tls_verify":
                guard value == "none" || value == "full" else { throw invalid("tls_verify must be none or full") }
                tlsVerify = value != "none"
            default: throw invalid("unknown parameter \(key)")
            }
        }
    }

    /// The URL without credentials, for logs.
    public var redacted: String {
        "\(tls ? "rediss" : "redis")://\(host.contains(":") ? "[\(host)]" : host):\(port)/\(database)"
    }

    static func percentDecoded(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
