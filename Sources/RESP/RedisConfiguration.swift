/// Where and how to connect, read from a URL:
/// - `redis[s]://[[user]:password@]host[:port][/db][?tls_ca_file=PATH&tls_verify=none]`: one server;
/// - `redis[s]+sentinel://[[user]:password@]host1:26379,host2:26379/MASTER_NAME[/db][?sentinel_password=P]`:
///   whichever server the sentinels name master of `MASTER_NAME` (`host`/`port` are then the first sentinel's,
///   and the credentials, database and TLS settings are the master's);
/// - `redis[s]+cluster://[[user]:password@]host1:7000,host2:7001`: a Redis Cluster, its topology read from
///   the first of these seed nodes that answers.
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
    /// Set for a `+sentinel` URL: the master is looked up, not fixed.
    public var sentinel: Sentinel?
    /// Set for a `+cluster` URL: the nodes to read the cluster's topology from.
    public var clusterSeeds: [Address]?

    /// The sentinels to ask and the name of the master they watch.
    public struct Sentinel: Sendable, Equatable {
        public var addresses: [Address]
        public var masterName: String
        /// AUTH for the sentinels (`sentinel_password`), which Redis configures apart from the master's.
        public var password: String?

        public init(addresses: [Address], masterName: String, password: String? = nil) {
            self.addresses = addresses
            self.masterName = masterName
            self.password = password
        }
    }

    public struct Address: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    public init(host: String = "127.0.0.1", port: Int = 6379, password: String? = nil, database: Int = 0) {
        self.host = host
        self.port = port
        self.username = nil
        self.password = password
        self.database = database
        self.tls = false
        self.tlsCAFile = nil
        self.tlsVerify = true
        self.sentinel = nil
        self.clusterSeeds = nil
    }

    public struct InvalidURL: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public init(url: String) throws(InvalidURL) {
        func invalid(_ reason: String) -> InvalidURL { InvalidURL(description: "invalid Redis URL: \(reason)") }
        var rest = Substring(url)
        // scheme: redis or rediss (TLS), then +sentinel or +cluster for the topologies.
        guard let separator = rest.firstRange(of: "://") else { throw invalid("expected redis://, rediss://, redis+sentinel://, redis+cluster:// (or rediss+...)") }
        let scheme = rest[..<separator.lowerBound].split(separator: "+", maxSplits: 1)
        guard let base = scheme.first, base == "redis" || base == "rediss",
            scheme.count == 1 || scheme[1] == "sentinel" || scheme[1] == "cluster"
        else { throw invalid("expected redis://, rediss://, redis+sentinel://, redis+cluster:// (or rediss+...)") }
        tls = base == "rediss"
        let isSentinel = scheme.count == 2 && scheme[1] == "sentinel"
        let isCluster = scheme.count == 2 && scheme[1] == "cluster"
        rest = rest[separator.upperBound...]
        tlsCAFile = nil
        tlsVerify = true
        sentinel = nil
        clusterSeeds = nil
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
        if isCluster {
            var seeds: [Address] = []
            for entry in rest.split(separator: ",", omittingEmptySubsequences: false) {
                seeds.append(try Self.address(entry, defaultPort: 6379))
            }
            guard path.isEmpty else { throw invalid("a cluster has no databases: no path after the nodes") }
            clusterSeeds = seeds
            host = seeds[0].host
            port = seeds[0].port
        } else if isSentinel {
            var addresses: [Address] = []
            for entry in rest.split(separator: ",", omittingEmptySubsequences: false) {
                addresses.append(try Self.address(entry, defaultPort: 26379))
            }
            let parts = path.split(separator: "/", omittingEmptySubsequences: false)
            guard let name = parts.first, !name.isEmpty else { throw invalid("a sentinel URL names the master: /MASTER_NAME") }
            guard parts.count <= 2 else { throw invalid("the path is /MASTER_NAME[/db]") }
            path = parts.count == 2 ? parts[1] : ""
            sentinel = Sentinel(addresses: addresses, masterName: Self.percentDecoded(name))
            host = addresses[0].host
            port = addresses[0].port
        } else {
            let address = try Self.address(rest, defaultPort: 6379)
            host = address.host
            port = address.port
        }
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
            case "sentinel_password" where sentinel != nil:
                sentinel?.password = value
            default: throw invalid("unknown parameter \(key)")
            }
        }
    }

    /// The URL without credentials, for logs.
    public var redacted: String {
        let scheme = tls ? "rediss" : "redis"
        if let sentinel {
            let hosts = sentinel.addresses.map(\.description).joined(separator: ",")
            return "\(scheme)+sentinel://\(hosts)/\(sentinel.masterName)/\(database)"
        }
        if let clusterSeeds {
            return "\(scheme)+cluster://" + clusterSeeds.map(\.description).joined(separator: ",")
        }
        return "\(scheme)://\(Address(host: host, port: port))/\(database)"
    }

    /// `host[:port]` or `[v6]:port`.
    static func address(_ text: Substring, defaultPort: Int) throws(InvalidURL) -> Address {
        func invalid(_ reason: String) -> InvalidURL { InvalidURL(description: "invalid Redis URL: \(reason)") }
        var rest = text
        let host: String
        var port = defaultPort
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw invalid("unclosed [ in host") }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            rest = rest[rest.index(after: close)...]
            if rest.hasPrefix(":") {
                guard let value = Int(rest.dropFirst()), (1...65535).contains(value) else { throw invalid("bad port") }
                port = value
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            guard let value = Int(rest[rest.index(after: colon)...]), (1...65535).contains(value) else {
                throw invalid("bad port")
            }
            port = value
        } else {
            host = String(rest)
        }
        guard !host.isEmpty else { throw invalid("no host") }
        return Address(host: host, port: port)
    }

    /// The configuration of one server: this one's credentials, database and TLS, at `address`.
    public func server(at address: Address) -> RedisConfiguration {
        var server = self
        server.host = address.host
        server.port = address.port
        server.sentinel = nil
        server.clusterSeeds = nil
        return server
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
