/// Which master serves which slots, read from `CLUSTER SHARDS` (Redis 7).
public struct RedisClusterTopology: Sendable, Equatable {
    public struct Shard: Sendable, Equatable {
        public var slots: [ClosedRange<Int>]
        public var master: RedisConfiguration.Address
        public var replicas: [RedisConfiguration.Address]

        public init(slots: [ClosedRange<Int>], master: RedisConfiguration.Address, replicas: [RedisConfiguration.Address] = []) {
            self.slots = slots
            self.master = master
            self.replicas = replicas
        }
    }

    /// Shards that serve slots, ordered by their first slot.
    public let shards: [Shard]
    /// Slot to index in `shards`; -1 for a slot no shard serves.
    private let owners: [Int16]

    public init(shards: [Shard]) {
        let serving = shards.filter { !$0.slots.isEmpty }.sorted { $0.slots[0].lowerBound < $1.slots[0].lowerBound }
        var owners = [Int16](repeating: -1, count: RedisClusterSlot.count)
        for (index, shard) in serving.enumerated() {
            for range in shard.slots where range.lowerBound >= 0 && range.upperBound < RedisClusterSlot.count {
                for slot in range { owners[slot] = Int16(index) }
            }
        }
        self.shards = serving
        self.owners = owners
    }

    /// Reads a `CLUSTER SHARDS` reply (RESP3 maps or RESP2 flat arrays). A shard's master is its
    /// node with role `master` (one reported healthy first); nodes marked `fail` are left out.
    public init(clusterShards reply: RESPValue) throws {
        guard let entries = reply.elements else { throw RedisError.unexpectedReply("CLUSTER SHARDS: \(reply)") }
        var shards: [Shard] = []
        for entry in entries {
            guard let fields = entry.fields, let slotValues = fields["slots"]?.elements, let nodes = fields["nodes"]?.elements
            else { throw RedisError.unexpectedReply("CLUSTER SHARDS entry: \(entry)") }
            let bounds = slotValues.compactMap { $0.int.map(Int.init) }
            guard bounds.count == slotValues.count, bounds.count % 2 == 0 else {
                throw RedisError.unexpectedReply("CLUSTER SHARDS slots: \(slotValues)")
            }
            let slots = stride(from: 0, to: bounds.count, by: 2).map { bounds[$0]...bounds[$0 + 1] }
            var masters: [(address: RedisConfiguration.Address, online: Bool)] = []
            var replicas: [RedisConfiguration.Address] = []
            for node in nodes {
                guard let node = node.fields, let address = Self.address(of: node) else { continue }
                let health = node["health"]?.string ?? "online"
                guard health != "fail" else { continue }
                if node["role"]?.string == "master" {
                    masters.append((address, health == "online"))
                } else {
                    replicas.append(address)
                }
            }
            guard let master = masters.first(where: \.online) ?? masters.first else { continue }
            shards.append(Shard(slots: slots, master: master.address, replicas: replicas))
        }
        self.init(shards: shards)
    }

    private static func address(of node: [String: RESPValue]) -> RedisConfiguration.Address? {
        let endpoint = node["endpoint"]?.string
        let host = endpoint.flatMap { $0.isEmpty || $0 == "?" ? nil : $0 } ?? node["ip"]?.string
        guard let host, let port = (node["port"] ?? node["tls-port"])?.int else { return nil }
        return RedisConfiguration.Address(host: host, port: Int(port))
    }

    public func shardIndex(forSlot slot: Int) -> Int? {
        let owner = owners[slot]
        return owner < 0 ? nil : Int(owner)
    }

    public func master(forSlot slot: Int) -> RedisConfiguration.Address? {
        shardIndex(forSlot: slot).map { shards[$0].master }
    }

    /// Whether every slot has a master.
    public var coversEverySlot: Bool { !owners.contains(-1) }

    public var masters: [RedisConfiguration.Address] { shards.map(\.master) }
}

extension RESPValue {
    /// A map with string keys (RESP3 map or RESP2 flat array).
    var fields: [String: RESPValue]? {
        guard let pairs else { return nil }
        var fields: [String: RESPValue] = [:]
        for pair in pairs { if let key = pair.key.string { fields[key] = pair.value } }
        return fields
    }
}
