import Foundation

/// A Redis Cluster on loopback: `masters` masters with one replica each, made with
/// `redis-cli --cluster create`, nodes calling a peer failed after two seconds (one second made loaded CI machines fail over by themselves).
/// Ports are below 55536: a node's cluster bus listens on its port + 10000.
public final class RedisClusterNodes: @unchecked Sendable {
    public let nodes: [RedisServer]

    public static func start(masters: Int = 3) async throws -> RedisClusterNodes {
        var nodes: [RedisServer] = []
        for _ in 0..<(masters * 2) {
            let port = try FreePort.findWithBusPort()
            nodes.append(try await RedisServer.start(port: port, arguments: [
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes-\(port).conf", "--cluster-node-timeout", "2000",
                "--cluster-require-full-coverage", "no", "--cluster-allow-pubsubshard-when-down", "yes",
            ]))
        }
        let create = try RedisServer.cli(port: nodes[0].port, [
            "--cluster", "create",
        ] + nodes.map { "127.0.0.1:\($0.port)" } + ["--cluster-replicas", "1", "--cluster-yes"])
        guard create.contains("All 16384 slots covered") else { throw SupportFailure("redis-cli --cluster create: \(create)") }
        let cluster = RedisClusterNodes(nodes: nodes)
        try await eventually(timeout: .seconds(20), "every node sees the cluster ok and every replica in sync") {
            for node in nodes {
                guard try node.cli("CLUSTER", "INFO").contains("cluster_state:ok") else { return false }
                let replication = try node.cli("INFO", "replication")
                if replication.contains("role:slave"), !replication.contains("master_link_status:up") { return false }
            }
            return try cluster.masters().count == masters
        }
        return cluster
    }

    private init(nodes: [RedisServer]) {
        self.nodes = nodes
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2` (two seeds: one may be down).
    public var url: String { "redis+cluster://127.0.0.1:\(nodes[0].port),127.0.0.1:\(nodes[1].port)" }

    /// The nodes that are masters now, as some live node sees it.
    public func masters() throws -> [RedisServer] {
        let live = nodes.filter(\.isRunning)
        guard let observer = live.first else { return [] }
        let lines = try observer.cli("CLUSTER", "NODES").split(separator: "\n")
        let ports = lines.filter { $0.contains("master") && !$0.contains("fail") }.compactMap { line -> Int? in
            let address = line.split(separator: " ")[1]  // 127.0.0.1:7000@17000
            return Int(address.split(separator: "@")[0].split(separator: ":").last ?? "")
        }
        return live.filter { ports.contains($0.port) }
    }

    /// The node serving `slot` now, as each master says of itself (`CLUSTER NODES`, slots from field 9 on).
    public func owner(ofSlot slot: Int) throws -> RedisServer? {
        for master in try masters() {
            let myself = try master.cli("CLUSTER", "NODES").split(separator: "\n").first { $0.contains("myself") } ?? ""
            for range in myself.split(separator: " ").dropFirst(8) {
                let bounds = range.split(separator: "-").compactMap { Int($0) }
                if bounds.count == 2, (bounds[0]...bounds[1]).contains(slot) { return master }
                if bounds.count == 1, bounds[0] == slot { return master }
            }
        }
        return nil
    }

    public func nodeID(_ node: RedisServer) throws -> String {
        try node.cli("CLUSTER", "MYID")
    }

    /// Moves `slot` from its owner to `destination` the way `redis-cli --cluster reshard` does:
    /// IMPORTING and MIGRATING, MIGRATE of every key, then the slot assigned on every master.
    /// `beforeAssigning` runs once the keys moved but the slot is still the source's (clients
    /// then get ASK for the keys that left).
    public func migrate(slot: Int, to destination: RedisServer, beforeAssigning: () async throws -> Void = {}) async throws {
        guard let source = try owner(ofSlot: slot) else { throw SupportFailure("no owner of slot \(slot)") }
        let sourceID = try nodeID(source)
        let destinationID = try nodeID(destination)
        try expectOK(destination.cli("CLUSTER", "SETSLOT", String(slot), "IMPORTING", sourceID))
        try expectOK(source.cli("CLUSTER", "SETSLOT", String(slot), "MIGRATING", destinationID))
        while true {
            let keys = try source.cli("CLUSTER", "GETKEYSINSLOT", String(slot), "100").split(separator: "\n").map(String.init)
            if keys.isEmpty { break }
            let moved = try RedisServer.cli(port: source.port, ["MIGRATE", "127.0.0.1", String(destination.port), "", "0", "5000", "KEYS"] + keys)
            guard moved == "OK" else { throw SupportFailure("MIGRATE: \(moved)") }
        }
        try await beforeAssigning()
        for master in try masters() {
            try expectOK(master.cli("CLUSTER", "SETSLOT", String(slot), "NODE", destinationID))
        }
    }

    private func expectOK(_ reply: String) throws {
        guard reply == "OK" else { throw SupportFailure("expected OK, got \(reply)") }
    }
}

extension FreePort {
    /// A free loopback port below 55536 whose port + 10000 is free too (a cluster node's bus).
    public static func findWithBusPort() throws -> Int {
        for _ in 0..<200 {
            let port = Int.random(in: 20000..<45000)
            if !accepts(port), !accepts(port + 10000), canBind(port), canBind(port + 10000) { return port }
        }
        throw SupportFailure("no free port pair found")
    }
}
